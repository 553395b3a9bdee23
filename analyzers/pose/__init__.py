"""Body pose: keypoints of people in COCO-17 order, whatever the model family."""

from __future__ import annotations

from pathlib import Path

from analyzers.pose.blazepose import BlazePoseLandmarks
from analyzers.pose.movenet import MoveNetMultiPose
from analyzers.runtime.card import ModelCard, ModelCardError

__all__ = ["BlazePoseLandmarks", "MoveNetMultiPose", "load_pose"]


def load_pose(card: ModelCard, model_dir: Path, threads: int = 0) -> MoveNetMultiPose | BlazePoseLandmarks:
    """The pose estimator for the card's family. MoveNet works on whole frames
    (``estimate(image)``), BlazePose on person boxes (``estimate(image, boxes)``)."""
    if card.family == "movenet":
        return MoveNetMultiPose(card, model_dir, threads)
    if card.family == "blazepose":
        return BlazePoseLandmarks(card, model_dir, threads)
    raise ModelCardError(f"model {card.name} is a {card.family} model, not a pose model (movenet, blazepose)")
