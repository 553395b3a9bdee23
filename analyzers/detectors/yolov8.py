"""YOLOv5- and YOLOv8-style heads (card family ``yolov8``), told apart by the output shape.

YOLOv5 exports give [B, N, 5+C]: cx, cy, w, h, objectness, C class scores; YOLOv8 (and later
anchor-free Ultralytics heads) give [B, 4+C, N] with no objectness. Boxes are in input pixels and
scores already went through a sigmoid in both.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from analyzers.detectors.base import (
    OnnxModel,
    Placement,
    TensorInfo,
    best_class,
    fixed,
    fmt_shape,
    make_detections,
    nms,
)
from analyzers.records import Detection
from analyzers.runtime.card import ModelCard, ModelCardError
from analyzers.runtime.families import ModelFamily, register_family

Layout = Literal["v5", "v8"]


def head_layout(file: str, output: TensorInfo, num_classes: int) -> Layout | None:
    """Which head an output shape is, given the card's class count; None while dynamic dimensions
    leave it open (decided on the first run). Raises ModelCardError when it can be neither."""
    if num_classes <= 0:
        raise ModelCardError(f"{file}: the card lists no classes; a yolov8-family card needs them")
    shape = output.shape
    v5_shape, v8_shape = f"[B,N,{5 + num_classes}]", f"[B,{4 + num_classes},N]"
    if len(shape) != 3:
        raise ModelCardError(
            f"{file}: output {output.name!r} is {fmt_shape(shape)}; with {num_classes} classes on the "
            f"card a YOLOv5 head is {v5_shape} and a YOLOv8 head {v8_shape}"
        )
    d1, d2 = shape[1], shape[2]
    v5 = d2 == 5 + num_classes
    v8 = d1 == 4 + num_classes
    if v5 and not v8:  # both only for a [B,4+C,5+C] toy head, read as the more common YOLOv8
        return "v5"
    if v8:
        return "v8"
    if not (fixed(d1) and fixed(d2)):
        return None  # a dynamic dimension might still be the class one
    raise ModelCardError(
        f"{file}: output {output.name!r} is {fmt_shape(shape)}; with {num_classes} classes on the card "
        f"a YOLOv5 head is {v5_shape} and a YOLOv8 head {v8_shape}"
    )


def decode(
    raw: np.ndarray,
    layout: Layout,
    placement: Placement,
    labels: Sequence[str],
    conf: float,
    nms_iou: float,
    classes: set[int] | None = None,
) -> list[Detection]:
    """One image's head output ([N, 5+C] for v5, [4+C, N] for v8) -> detections in frame pixels."""
    rows = raw if layout == "v5" else raw.T
    if layout == "v5":
        scores = rows[:, 4:5] * rows[:, 5:]
    else:
        scores = rows[:, 4:]
    class_ids, best = best_class(scores, classes)
    keep = best >= conf
    if not keep.any():
        return []
    cxcywh, best, class_ids = rows[keep, :4].astype(np.float32), best[keep], class_ids[keep]
    half = cxcywh[:, 2:4] / 2
    boxes = placement.boxes_to_frame(np.concatenate([cxcywh[:, :2] - half, cxcywh[:, :2] + half], 1))
    picked = nms(boxes, best, class_ids, conf, nms_iou)
    return make_detections(boxes[picked], best[picked], class_ids[picked], labels)


class YoloV8Detector(OnnxModel):
    """Runs a YOLOv5/YOLOv8-style ONNX model described by its card."""

    family = ("yolov8",)

    def __init__(self, card: ModelCard, model_dir: Path, threads: int = 0, session: Any = None) -> None:
        super().__init__(card, model_dir, threads, session)
        if len(self.outputs) < 1:
            raise ModelCardError(f"{self.file}: the model has no outputs")
        # Exports with a segmentation or extra head list the detection output first.
        self.layout = head_layout(self.file, self.outputs[0], len(card.classes))

    def detect(
        self,
        images: Sequence[np.ndarray],
        conf: float = 0.3,
        nms_iou: float = 0.45,
        classes: set[int] | None = None,
    ) -> list[list[Detection]]:
        """Detect in a batch of BGR frames; see analyzers.detectors.base for the bad-frame contract."""
        results: list[list[Detection]] = []
        for item in self.run_batches(images):
            if item is None:
                results.append([])
                continue
            outs, placement = item
            raw = outs[0]
            if self.layout is None:
                info = TensorInfo(self.outputs[0].name, (1, *raw.shape))
                self.layout = head_layout(self.file, info, len(self.card.classes))
                if self.layout is None:  # cannot happen with concrete dimensions
                    raise ModelCardError(f"{self.file}: cannot tell the head layout from {raw.shape}")
            results.append(decode(raw, self.layout, placement, self.card.classes, conf, nms_iou, classes))
        return results


def _load(card: ModelCard, model_dir: Path, threads: int = 0, _input_size: object = None) -> YoloV8Detector:
    return YoloV8Detector(card, model_dir, threads)


FAMILY = register_family(ModelFamily("yolov8", "detector", _load))
