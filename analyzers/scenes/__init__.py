"""Scenes: one file each; the registry maps catalogue keys to implementations."""

from __future__ import annotations

from analyzers.scenes.base import Scene
from analyzers.scenes.catalogue import CATALOGUE, SceneInfo
from analyzers.scenes.crowd import Crowd
from analyzers.scenes.intrusion import Intrusion
from analyzers.scenes.settings import FeatureTags, RegionConfig, SceneConfig, TimeWindow

IMPLEMENTED: dict[str, type[Scene]] = {cls.key: cls for cls in (Intrusion, Crowd)}


class SceneError(ValueError):
    """A scene key or its parameters are not usable."""


def scene_class(key: str) -> type[Scene]:
    if key not in CATALOGUE:
        raise SceneError(f"unknown scene {key!r}; known scenes: {', '.join(CATALOGUE)}")
    if key not in IMPLEMENTED:
        raise SceneError(
            f"scene {key!r} is in the catalogue but not implemented in this version; "
            f"available now: {', '.join(IMPLEMENTED)}"
        )
    return IMPLEMENTED[key]


def build_scene(camera_id: str, config: SceneConfig) -> Scene:
    return scene_class(config.scene)(camera_id, config)


__all__ = [
    "CATALOGUE",
    "FeatureTags",
    "IMPLEMENTED",
    "RegionConfig",
    "Scene",
    "SceneConfig",
    "SceneError",
    "SceneInfo",
    "TimeWindow",
    "build_scene",
    "scene_class",
]
