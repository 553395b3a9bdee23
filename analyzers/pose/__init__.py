"""Body pose: keypoints of people in COCO-17 order, whatever the model family."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from analyzers.pose.blazepose import BlazePoseLandmarks
from analyzers.pose.movenet import MoveNetMultiPose
from analyzers.runtime.card import ModelCard, ModelCardError
from analyzers.runtime.families import FAMILIES, family_names

# Every module here is imported once, so each pose family in it registers itself (runtime.families).
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["BlazePoseLandmarks", "MoveNetMultiPose", "load_pose"]


def load_pose(card: ModelCard, model_dir: Path, threads: int = 0) -> MoveNetMultiPose | BlazePoseLandmarks:
    """The pose estimator for the card's family. MoveNet works on whole frames
    (``estimate(image)``), BlazePose on person boxes (``estimate(image, boxes)``)."""
    family = FAMILIES.get(card.family)
    if family is None or family.role != "pose":
        raise ModelCardError(
            f"model {card.name} is a {card.family} model, "
            f"not a pose model ({', '.join(family_names('pose'))})"
        )
    estimator: MoveNetMultiPose | BlazePoseLandmarks = family.load(card, model_dir, threads, None)
    return estimator
