"""Scenes: one file each (shared bases in base, targets, roles, fire); the registry maps keys to them."""

from __future__ import annotations

from analyzers.scenes.base import Frame, Hold, Observation, RegionScene, Scene
from analyzers.scenes.catalogue import CATALOGUE, SceneInfo
from analyzers.scenes.crowd import Crowd
from analyzers.scenes.custom import Custom
from analyzers.scenes.extinguisher import Extinguisher
from analyzers.scenes.flame import Flame
from analyzers.scenes.helmet import Helmet
from analyzers.scenes.intrusion import Intrusion
from analyzers.scenes.lifting_zone import LiftingZone
from analyzers.scenes.off_post import OffPost
from analyzers.scenes.phone import Phone
from analyzers.scenes.rigger_on_post import RiggerOnPost
from analyzers.scenes.settings import FeatureTags, RegionConfig, SceneConfig, TimeWindow
from analyzers.scenes.sleeping import Sleeping
from analyzers.scenes.smoke import Smoke
from analyzers.scenes.smoking import Smoking
from analyzers.scenes.supervisor_present import SupervisorPresent
from analyzers.scenes.workwear import Workwear

IMPLEMENTED: dict[str, type[Scene]] = {
    cls.key: cls
    for cls in (
        Helmet,
        Workwear,
        Flame,
        Smoke,
        Extinguisher,
        LiftingZone,
        RiggerOnPost,
        SupervisorPresent,
        Intrusion,
        OffPost,
        Sleeping,
        Crowd,
        Phone,
        Smoking,
        Custom,
    )
}


class SceneError(ValueError):
    """A scene key or its parameters are not usable."""


def scene_class(key: str) -> type[Scene]:
    if key not in IMPLEMENTED:
        raise SceneError(f"unknown scene {key!r}; known scenes: {', '.join(CATALOGUE)}")
    return IMPLEMENTED[key]


def build_scene(camera_id: str, config: SceneConfig) -> Scene:
    return scene_class(config.scene)(camera_id, config)


__all__ = [
    "CATALOGUE",
    "FeatureTags",
    "Frame",
    "Hold",
    "IMPLEMENTED",
    "Observation",
    "RegionConfig",
    "RegionScene",
    "Scene",
    "SceneConfig",
    "SceneError",
    "SceneInfo",
    "TimeWindow",
    "build_scene",
    "scene_class",
]
