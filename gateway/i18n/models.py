"""Model descriptions of the models the project ships cards for (config/models/*.yaml), by model name:
``model.<name>``. A model without an entry (a plant's own) keeps its card's description."""

TEXT: dict[str, dict[str, str]] = {
    "model.yolox_nano": {
        "zh": "YOLOX-Nano（COCO 80 类训练）：人员检测，用于区域类场景（入侵、聚集、离岗等）",
        "en": "YOLOX-Nano trained on COCO-80 (person = 0, cell phone = 67); person detector for zone scenes.",
    },
    "model.ppe": {
        "zh": "YOLOX-Nano（基于 COCO 微调）：人员、未戴安全帽的头部、戴安全帽的头部",
        "en": "YOLOX-Nano fine-tuned from COCO: person, head (bare head), helmet (helmeted head)",
    },
    "model.cigarette": {
        "zh": "YOLOX-Nano（基于 COCO 微调）：香烟（手持、叼在嘴里、掉在地上）",
        "en": "YOLOX-Nano fine-tuned from COCO: cigarette (held, in the mouth, on the ground)",
    },
    "model.phone": {
        "zh": "YOLOX-Nano（基于 COCO 微调，由手机类别初始化）：手机",
        "en": "YOLOX-Nano fine-tuned from COCO (its cell phone class seeds phone): mobile phones",
    },
    "model.helmet": {
        "zh": "头部裁剪（框放大 1.5 倍）→ 戴/未戴安全帽；颜色由场景按 HSV 规则判断",
        "en": "head crop (box x1.5, letterboxed) -> helmet / no_helmet; colour: HSV rule in the scene",
    },
    "model.workwear": {
        "zh": "躯干裁剪（框放大 1.2 倍）→ 穿/未穿工作服（反光背心）",
        "en": "torso crop (box x1.2, letterboxed) -> workwear (safety vest) / no_workwear",
    },
    "model.fire": {
        "zh": "全画面 → 明火、烟雾（两个独立概率，均低则为无）",
        "en": "whole frame -> fire, smoke (independent sigmoids; both low = neither)",
    },
    "model.smoking": {
        "zh": "上半身裁剪 → 吸烟/未吸烟（场景另加手到嘴的姿态线索）",
        "en": "upper-body crop -> not_smoking / smoking (the scene adds the hand-to-mouth cue)",
    },
    "model.movenet_multipose": {
        "zh": "MoveNet MultiPose Lightning 多人姿态：每帧最多 6 人，每人 17 个关键点",
        "en": "MoveNet MultiPose Lightning: up to 6 people, 17 keypoints each",
    },
    "model.blazepose_landmark": {
        "zh": "BlazePose 关键点（lite）：以人员框为中心的方形裁剪，边长为框长边的 1.25 倍",
        "en": "BlazePose landmark lite; square crop centred on a person box, side 1.25 x max(w, h)",
    },
}


def model_description(name: str, stored: str | None, lang: str | None) -> str | None:
    """The description of model ``name`` in ``lang``: the table's Chinese for zh, else the card's."""
    entry = TEXT.get(f"model.{name}")
    if lang == "zh" and entry is not None:
        return entry["zh"]
    return stored
