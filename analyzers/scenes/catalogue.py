"""Every scene of DESIGN.md's table, with its names and default sampling rate."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SceneInfo:
    key: str
    name_zh: str
    name_en: str
    sample_fps: float


CATALOGUE: dict[str, SceneInfo] = {
    s.key: s
    for s in (
        SceneInfo("helmet", "未戴安全帽", "no safety helmet", 1.0),
        SceneInfo("workwear", "未穿工作服", "no work clothes", 1.0),
        SceneInfo("flame", "火焰", "flame", 1.0),
        SceneInfo("smoke", "烟雾", "smoke", 1.0),
        SceneInfo("extinguisher", "动火作业未配灭火器", "hot-work fire extinguisher missing", 1 / 60),
        SceneInfo("lifting_zone", "吊装区域有人", "people in a lifting zone", 1.0),
        SceneInfo("rigger_on_post", "司索指挥人员不在岗", "rigger/signaller absent", 1.0),
        SceneInfo("supervisor_present", "现场监护人不在岗", "site supervisor absent", 1.0),
        SceneInfo("intrusion", "区域入侵", "zone intrusion", 1.0),
        SceneInfo("off_post", "离岗", "off post", 1.0),
        SceneInfo("sleeping", "睡岗", "sleeping on duty", 1.0),
        SceneInfo("crowd", "人员聚集", "crowd gathering", 1.0),
        SceneInfo("phone", "打电话", "phone call", 1.0),
        SceneInfo("smoking", "吸烟", "smoking", 1.0),
        SceneInfo("custom", "自定义模型", "custom model", 1.0),
    )
}
