"""Errors a user causes through the API, in words: ``error.*``."""

TEXT: dict[str, dict[str, str]] = {
    "error.body_invalid": {"zh": "提交的内容有误", "en": "the request body is not valid"},
    "error.unknown_field": {
        "zh": "未知字段（请检查拼写）",
        "en": "unknown field",
    },
    "error.no_camera": {"zh": "摄像机 {camera} 不存在", "en": "no camera {camera}"},
}
