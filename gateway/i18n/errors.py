"""Errors a user causes through the API, in words: ``error.*``."""

TEXT: dict[str, dict[str, str]] = {
    "error.body_invalid": {"zh": "提交的内容有误", "en": "the request body is not valid"},
    "error.unknown_field": {
        "zh": "未知字段（请检查拼写）",
        "en": "unknown field",
    },
    "error.no_camera": {"zh": "摄像机 {camera} 不存在", "en": "no camera {camera}"},
    "error.camera_exists": {
        "zh": "摄像机编号 {camera} 已存在，请换一个编号",
        "en": "camera {camera!r} exists already; choose another id",
    },
    "error.onvif_probe": {
        "zh": "设备 {host}:{port} 未按 ONVIF 应答（请检查地址、端口、用户名和密码）：{detail}",
        "en": "the device at {host}:{port} did not answer as ONVIF (check address, port, user and password): "
        "{detail}",
    },
}
