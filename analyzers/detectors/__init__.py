"""Object detectors and classifiers: pre-processing, decoding and NMS per model family."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from analyzers.detectors.base import (
    Detector,
    check_image,
    check_input,
    dims_match,
    fmt_shape,
    letterbox,
    session_io,
)
from analyzers.detectors.classifier import ImageClassifier
from analyzers.detectors.rtdetr import RtDetrDetector
from analyzers.detectors.yolov8 import YoloV8Detector
from analyzers.detectors.yolox import YoloxDetector
from analyzers.records import Detection
from analyzers.runtime.card import ModelCard, ModelCardError

__all__ = [
    "CheckedYoloxDetector",
    "Detector",
    "ImageClassifier",
    "RtDetrDetector",
    "YoloV8Detector",
    "YoloxDetector",
    "load_detector",
]


def load_detector(card: ModelCard, model_dir: Path, threads: int = 0) -> Detector:
    """The detector for the card's family; raises ModelCardError for a family that is not one, or
    for an ONNX file whose inputs/outputs do not match the card."""
    if card.family == "yolox":
        detector = CheckedYoloxDetector(card, model_dir, threads)
        # YoloxDetector predates the shared checks; run them so every family fails the same way.
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
    """YOLOX gives [B, cells, 5+C], with one cell per grid point of every stride."""
    width, height = card.input.size
    cells = sum((width // s) * (height // s) for s in card.strides)
    want = (None, cells, 5 + len(card.classes)) if card.classes else (None, cells, None)
    if not dims_match(shape, want):
        raise ModelCardError(
            f"{card.file}: output is {fmt_shape(shape)}, the card ({width}x{height}, strides "
            f"{card.strides}, {len(card.classes)} classes) says {fmt_shape(want)}"
        )


class CheckedYoloxDetector(YoloxDetector):
    """YoloxDetector under the shared bad-frame contract of analyzers.detectors.base: ValueError for
    a frame that is not HxWx3 uint8, no detections for an empty one, any size of frame letterboxed."""

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        canvas, placement = letterbox(image, self.size, "top_left", self.card.input.pad_value)
        if self.card.input.colour == "RGB":
            canvas = canvas[:, :, ::-1]
        tensor = canvas.transpose(2, 0, 1).astype(np.float32) * self.card.input.scale
        # YOLOX decodes with one ratio; the axes differ only by rounding (or for 1-pixel strips).
        return tensor, placement.scale_x

    def detect(
        self,
        images: Sequence[np.ndarray],
        conf: float = 0.3,
        nms_iou: float = 0.45,
        classes: set[int] | None = None,
    ) -> list[list[Detection]]:
        usable = [check_image(img, f"image {i}") for i, img in enumerate(images)]
        found = iter(
            super().detect(
                [img for img, ok in zip(images, usable, strict=True) if ok], conf, nms_iou, classes
            )
        )
        return [next(found) if ok else [] for ok in usable]
