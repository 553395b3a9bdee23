"""Scenes: one file each (or one family per file); the registry maps catalogue keys to them."""

from __future__ import annotations

from analyzers.scenes.base import Frame, Hold, Observation, RegionScene, Scene
from analyzers.scenes.behaviour import Phone, Sleeping, Smoking
from analyzers.scenes.catalogue import CATALOGUE, SceneInfo
from analyzers.scenes.crowd import Crowd
from analyzers.scenes.custom import Custom
from analyzers.scenes.extinguisher import Extinguisher
from analyzers.scenes.fire import Flame, Smoke
from analyzers.scenes.intrusion import Intrusion
from analyzers.scenes.lifting_zone import LiftingZone
from analyzers.scenes.off_post import OffPost
from analyzers.scenes.ppe import Helmet, Workwear
from analyzers.scenes.roles import RiggerOnPost, SupervisorPresent
from analyzers.scenes.settings import FeatureTags, RegionConfig, SceneConfig, TimeWindow

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
