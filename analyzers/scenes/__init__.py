"""Scenes: one file each (shared bases in base, targets, roles, fire), each registering itself into
the registry (catalogue.py) when this package imports every module in it."""

from __future__ import annotations

import importlib
import pkgutil

from analyzers.scenes.base import Frame, Hold, Observation, RegionScene, Scene
from analyzers.scenes.catalogue import CATALOGUE, IMPLEMENTED, SceneInfo
from analyzers.scenes.settings import FeatureTags, RegionConfig, SceneConfig, TimeWindow

# Every module of this package is imported once, so each scene class in it registers itself.
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")


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
