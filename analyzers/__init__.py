"""What video means: model runtime, detectors, zones, scenes and their alarm rules."""

import analyzers.pose  # noqa: F401  (its families register beside the detectors')
from analyzers.detectors import YoloxDetector
from analyzers.records import AlarmEvent, Detection, FrameLike
from analyzers.runtime import ModelCard, ModelCardError, choose_providers, load_card
from analyzers.scenes import CATALOGUE, Scene, SceneConfig, SceneError, build_scene, scene_class
from analyzers.zones import Region

__all__ = [
    "CATALOGUE",
    "AlarmEvent",
    "Detection",
    "FrameLike",
    "ModelCard",
    "ModelCardError",
    "Region",
    "Scene",
    "SceneConfig",
    "SceneError",
    "YoloxDetector",
    "build_scene",
    "choose_providers",
    "load_card",
    "scene_class",
]
