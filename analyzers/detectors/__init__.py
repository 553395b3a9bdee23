"""Object detectors and classifiers: pre-processing, decoding and NMS per model family."""

from __future__ import annotations

from pathlib import Path

from analyzers.detectors.base import (
    Detector,
    check_input,
    dims_match,
    fmt_shape,
    session_io,
)
from analyzers.detectors.classifier import ImageClassifier
from analyzers.detectors.rtdetr import RtDetrDetector
from analyzers.detectors.yolov8 import YoloV8Detector
from analyzers.detectors.yolox import InputSize, YoloxDetector, auto_size
from analyzers.runtime.card import ModelCard, ModelCardError

__all__ = [
    "Detector",
    "ImageClassifier",
    "RtDetrDetector",
    "YoloV8Detector",
    "InputSize",
    "YoloxDetector",
    "auto_size",
    "load_detector",
]


def load_detector(
    card: ModelCard, model_dir: Path, threads: int = 0, input_size: InputSize = None
) -> Detector:
    """The detector for the card's family; raises ModelCardError for a family that is not one, or
    for an ONNX file whose inputs/outputs do not match the card.

    ``input_size`` (YOLOX only; other families run at their card's size): None = the card's size,
    (width, height), or "auto" (aspect-matched per frame on a ``dynamic_size`` card); one the model
    cannot take raises ValueError (ModelCardError)."""
    if input_size is not None and card.family != "yolox":
        raise ModelCardError(
            f"model {card.name}: input size {input_size!r} asked for, but {card.family} models run at "
            f"their card's size only ({card.input.size[0]}x{card.input.size[1]}); leave input_size "
            "out (scene input_size 'card')"
        )
    if card.family == "yolox":
        detector = YoloxDetector(card, model_dir, threads, input_size)
        inputs, outputs = session_io(detector.session)
        check_input(card.file, inputs, card.input)
        check_yolox_output(card, outputs[0].shape if outputs else ())
        return detector
    if card.family == "yolov8":
        return YoloV8Detector(card, model_dir, threads)
    if card.family == "rtdetr":
        return RtDetrDetector(card, model_dir, threads)
    raise ModelCardError(
        f"model {card.name} is a {card.family} model, not a detector (yolox, yolov8, rtdetr)"
    )


def check_yolox_output(card: ModelCard, shape: tuple[int | str | None, ...]) -> None:
    """YOLOX gives [B, cells, 5+C], with one cell per grid point of every stride (checked at the
    card's size; a dynamic-size export reports cells as a symbol, which matches any count)."""
    width, height = card.input.size
    cells = sum((width // s) * (height // s) for s in card.strides)
    want = (None, cells, 5 + len(card.classes)) if card.classes else (None, cells, None)
    if not dims_match(shape, want):
        raise ModelCardError(
            f"{card.file}: output is {fmt_shape(shape)}, the card ({width}x{height}, strides "
            f"{card.strides}, {len(card.classes)} classes) says {fmt_shape(want)}"
        )
