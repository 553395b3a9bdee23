"""Enrolment: the errors a user can cause when enrolling (``enrolment.<code>`` of
analyzers.enrolment.EnrolmentError), in zh and en."""

TEXT: dict[str, dict[str, str]] = {
    "enrolment.too_few": {
        "zh": "样例太少：{counts}；每类至少登记 {needed} 个，越多越准（见 README 中实测的样例数与 F1 曲线）",
        "en": "too few examples: {counts}; enrol at least {needed} per class, more for accuracy "
        "(the README's measured curve: examples per class against F1)",
    },
    "enrolment.no_scene": {
        "zh": "场景“{scene}”不支持样本登记；支持的场景：{known}",
        "en": "scene {scene!r} takes no enrolment; scenes that do: {known}",
    },
    "enrolment.bad_name": {
        "zh": "类别名称请用 1 到 {most} 个字符，不含“/”和控制字符",
        "en": "class name: give 1 to {most} characters, no '/' or control characters",
    },
    "enrolment.positive_first": {
        "zh": "该场景还没有正样例：请先登记合格的样子（如本厂工服），再登记负样例",
        "en": "nothing enrolled as a positive class yet: enrol the accepted look first (e.g. the plant's "
        "uniform), then the negatives",
    },
    "enrolment.not_enrolled": {
        "zh": "没有名为“{name}”的登记类别",
        "en": "nothing enrolled as {name!r}",
    },
    "enrolment.not_base64": {
        "zh": "{what}：不是 base64 编码；请以 base64 的 JPEG 或 PNG 发送图片",
        "en": "{what}: not base64; send each picture as base64 JPEG or PNG",
    },
    "enrolment.too_large": {"zh": "{what}：超过 {most} MB", "en": "{what}: larger than {most} MB"},
    "enrolment.not_picture": {
        "zh": "{what}：无法解码为图片；请发送 JPEG 或 PNG",
        "en": "{what}: does not decode as a picture; send JPEG or PNG",
    },
    "enrolment.box_order": {
        "zh": "第 {frame} 张画面的第 {box} 个框：坐标应为 0 到 1 的比例，且 x1 < x2、y1 < y2",
        "en": "frame {frame} box {box}: give x1 < x2 and y1 < y2 as fractions 0..1",
    },
    "enrolment.box_small": {
        "zh": "第 {frame} 张画面的第 {box} 个框小于 {most} 像素：请框大一些",
        "en": "frame {frame} box {box}: smaller than {most} pixels; draw it larger",
    },
    "enrolment.no_examples": {
        "zh": "没有样例：请上传图片，或在画面上框选样例",
        "en": "no examples: send pictures (images) or boxes drawn on frames (frames)",
    },
    "enrolment.no_embedder": {
        "zh": "样本比对模型缺失：请把模型包的 efficientnet_lite0 目录放到 models.pack_dir "
        "或 VIGIL_MODELS_DIR（{detail}）",
        "en": "the enrolment's embedding model is missing ({detail})",
    },
}
