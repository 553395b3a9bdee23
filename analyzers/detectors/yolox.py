"""YOLOX (Megvii) detector: letterbox to the top-left, grid decode, class-aware NMS."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from analyzers.detectors.base import check_image, letterbox
from analyzers.records import Detection
from analyzers.runtime.card import ModelCard
from analyzers.runtime.session import open_session


def make_grid(size: tuple[int, int], strides: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Grid cell offsets and their strides, in the order YOLOX flattens its heads."""
    width, height = size
    grids, expanded = [], []
    for stride in strides:
        hs, ws = height // stride, width // stride
        xv, yv = np.meshgrid(np.arange(ws), np.arange(hs))
        grid = np.stack((xv, yv), 2).reshape(-1, 2)
        grids.append(grid)
        expanded.append(np.full((grid.shape[0], 1), stride))
    return np.concatenate(grids).astype(np.float32), np.concatenate(expanded).astype(np.float32)


def decode(
    raw: np.ndarray,
    grid: np.ndarray,
    strides: np.ndarray,
    ratio: float,
    labels: Sequence[str],
    conf: float,
    nms_iou: float,
    classes: set[int] | None = None,
) -> list[Detection]:
    """Turn one image's [N, 5+C] head output into detections in original-image pixels."""
    # score = objectness x class score <= objectness: drop the (many) cells below the threshold first.
    cells = raw[:, 4] >= conf
    if not cells.any():
        return []
    raw, grid, strides = raw[cells], grid[cells], strides[cells]
    xy = (raw[:, :2] + grid) * strides
    wh = np.exp(raw[:, 2:4]) * strides
    scores = raw[:, 4:5] * raw[:, 5:]
    class_ids = scores.argmax(1)
    best = scores[np.arange(len(scores)), class_ids]
    keep = best >= conf
    if classes is not None:
        keep &= np.isin(class_ids, list(classes))
    if not keep.any():
        return []
    xy, wh, best, class_ids = xy[keep], wh[keep], best[keep], class_ids[keep]
    boxes = np.concatenate([xy - wh / 2, xy + wh / 2], 1) / ratio
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)
    picked = cv2.dnn.NMSBoxesBatched(xywh.tolist(), best.tolist(), class_ids.tolist(), conf, nms_iou)
    result = []
    for i in np.asarray(picked, dtype=int).reshape(-1):
        cid = int(class_ids[i])
        x1, y1, x2, y2 = (float(v) for v in boxes[i])
        label = labels[cid] if cid < len(labels) else str(cid)
        result.append(Detection((x1, y1, x2, y2), float(best[i]), cid, label))
    return result


class YoloxDetector:
    """Runs a YOLOX ONNX model described by its card. Thread-safe: onnxruntime sessions are."""

    def __init__(self, card: ModelCard, model_dir: Path, threads: int = 0) -> None:
        if card.family != "yolox":
            raise ValueError(f"model {card.name} is a {card.family} model, not yolox")
        self.card = card
        self.session = open_session(model_dir / card.file, threads)
        self.input_name = card.input.name
        self.size = card.input.size
        self.grid, self.strides = make_grid(self.size, card.strides)
        batch_dim = self.session.get_inputs()[0].shape[0]
        # A fixed batch of 1 means frames from several cameras go through one at a time.
        self.max_batch = batch_dim if isinstance(batch_dim, int) else 16

    @property
    def provider(self) -> str:
        return str(self.session.get_providers()[0])

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        canvas, placement = letterbox(image, self.size, "top_left", self.card.input.pad_value)
        if self.card.input.colour == "RGB":
            canvas = canvas[:, :, ::-1]
        tensor = canvas.transpose(2, 0, 1).astype(np.float32)
        if self.card.input.scale != 1.0:
            tensor *= np.float32(self.card.input.scale)
        # YOLOX decodes with one ratio; the axes differ only by rounding (or for 1-pixel strips).
        return tensor, placement.scale_x

    def detect(
        self,
        images: Sequence[np.ndarray],
        conf: float = 0.3,
        nms_iou: float = 0.45,
        classes: set[int] | None = None,
    ) -> list[list[Detection]]:
        """Detect in a batch of BGR images; the batch is split to what the model accepts.

        A frame that is not HxWx3 uint8 raises ValueError; an empty frame has no detections.
        """
        usable = [check_image(img, f"image {i}") for i, img in enumerate(images)]
        found = iter(
            self._detect([img for img, ok in zip(images, usable, strict=True) if ok], conf, nms_iou, classes)
        )
        return [next(found) if ok else [] for ok in usable]

    def _detect(
        self, images: Sequence[np.ndarray], conf: float, nms_iou: float, classes: set[int] | None
    ) -> list[list[Detection]]:
        results: list[list[Detection]] = []
        for start in range(0, len(images), self.max_batch):
            chunk = images[start : start + self.max_batch]
            prepared = [self.preprocess(img) for img in chunk]
            batch = np.stack([t for t, _ in prepared])
            (raw,) = self.session.run(None, {self.input_name: batch})
            for out, (_, ratio) in zip(raw, prepared, strict=True):
                results.append(
                    decode(out, self.grid, self.strides, ratio, self.card.classes, conf, nms_iou, classes)
                )
        return results
