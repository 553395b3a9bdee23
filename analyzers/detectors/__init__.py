"""Object detectors and classifiers: pre-processing, decoding and NMS per model family, one file each,
registered by name in analyzers.runtime.families."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from analyzers.detectors.base import Detector
from analyzers.detectors.classifier import ImageClassifier
from analyzers.detectors.rtdetr import RtDetrDetector
from analyzers.detectors.yolov8 import YoloV8Detector
from analyzers.detectors.yolox import InputSize, YoloxDetector, auto_size, check_yolox_output
from analyzers.runtime.card import ModelCard, ModelCardError
from analyzers.runtime.families import FAMILIES, family_names

# Every module here is imported once, so each family in it registers itself (runtime.families).
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "Detector",
    "ImageClassifier",
    "RtDetrDetector",
    "YoloV8Detector",
    "InputSize",
    "YoloxDetector",
    "auto_size",
    "check_yolox_output",
    "load_detector",
]


def load_detector(
    card: ModelCard, model_dir: Path, threads: int = 0, input_size: InputSize = None
) -> Detector:
    """The detector for the card's family (through the family registry); raises ModelCardError for a
    family that is not a detector, or for an ONNX file whose inputs/outputs do not match the card.

    ``input_size`` (families that declare ``sized``, YOLOX; others run at their card's size): None =
    the card's size, (width, height), or "auto" (aspect-matched per frame on a ``dynamic_size`` card);
    one the model cannot take raises ValueError (ModelCardError)."""
    family = FAMILIES.get(card.family)
    if family is None or family.role != "detector":
        raise ModelCardError(
            f"model {card.name} is a {card.family} model, "
            f"not a detector ({', '.join(family_names('detector'))})"
        )
    if input_size is not None and not family.sized:
        raise ModelCardError(
            f"model {card.name}: input size {input_size!r} asked for, but {card.family} models run at "
            f"their card's size only ({card.input.size[0]}x{card.input.size[1]}); leave input_size "
            "out (scene input_size 'card')"
        )
    detector: Detector = family.load(card, model_dir, threads, input_size)
    return detector
