"""YOLOX (Megvii) detector: letterbox to the top-left, grid decode, class-aware NMS.

Input size: the card's ``input.size``, a fixed (width, height), or ``"auto"``: per frame, the card's
size when the frame's shape is close to it, else an aspect-matched size (a 16:9 camera runs at
640x352 rather than 416x416) on cards whose network takes any multiple of its largest stride
(``dynamic_size``).
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from analyzers.detectors.base import check_image, check_input, dims_match, fmt_shape, letterbox, session_io
from analyzers.records import Detection
from analyzers.runtime.card import ModelCard, ModelCardError
from analyzers.runtime.families import ModelFamily, register_family
from analyzers.runtime.session import open_session

# What a caller may ask for: None = the card's size, (width, height), or "auto" (per frame).
InputSize = tuple[int, int] | Literal["auto"] | None

AUTO_LONG_SIDE = 640  # "auto": the longer side of an aspect-matched input
AUTO_TOLERANCE = 0.10  # "auto": a frame's aspect within 10% of the card's runs at the card's size


def auto_size(card_size: tuple[int, int], frame_w: int, frame_h: int, stride: int) -> tuple[int, int]:
    """The input (width, height) "auto" picks for a frame: the card's size when the frame's aspect is
    within 10% of the card input's, else aspect-matched with the longer side 640 (or the frame's own
    longer side where that is smaller, never below the card's: a small photo is not blown up) and the
    shorter side to the same scale, each rounded to the nearest multiple of ``stride``.

    1280x704 -> 640x352, 768x576 -> 640x480, 640x640 on a 416x416 card -> 416x416,
    416x312 on a 416x416 card -> 416x320.
    """
    card_w, card_h = card_size
    if frame_w <= 0 or frame_h <= 0 or stride <= 0:
        return card_size
    ratio = (frame_w / frame_h) / (card_w / card_h)
    if max(ratio, 1 / ratio) <= 1 + AUTO_TOLERANCE:
        return card_size

    def nearest(pixels: int) -> int:
        return max(stride, (pixels + stride // 2) // stride * stride)

    target = min(AUTO_LONG_SIDE, max(max(card_size), max(frame_w, frame_h)))
    long_side = nearest(target)
    short_side = nearest(round(target * min(frame_w, frame_h) / max(frame_w, frame_h)))
    return (long_side, short_side) if frame_w >= frame_h else (short_side, long_side)


def check_input_size(card: ModelCard, input_size: object) -> InputSize:
    """``input_size`` as a detector of this card accepts it; ValueError saying why not."""
    if input_size is None:
        return None
    if isinstance(input_size, str):
        if input_size == "auto":
            return "auto"
        raise ValueError(
            f"model {card.name}: input size {input_size!r} is not one; use 'auto', [width, height] or "
            "leave it out for the card's size"
        )
    if (
        not isinstance(input_size, tuple | list)
        or len(input_size) != 2
        or not all(isinstance(v, Integral) and not isinstance(v, bool) for v in input_size)
    ):
        raise ValueError(
            f"model {card.name}: input size {input_size!r} is not [width, height] in whole pixels"
        )
    width, height = (int(v) for v in input_size)
    size = (width, height)
    if size == card.input.size:
        return size
    if not card.dynamic_size:
        card_w, card_h = card.input.size
        raise ValueError(
            f"model {card.name}: input size {width}x{height} asked for, but the card's network takes "
            f"only {card_w}x{card_h} (dynamic_size is false); run it at the card's size (scene input_size "
            "'card' or 'auto'), or use a model exported with dynamic height and width"
        )
    stride = max(card.strides)
    if width <= 0 or height <= 0 or width % stride or height % stride:
        raise ValueError(
            f"model {card.name}: input size {width}x{height} is not a positive multiple of the "
            f"model's largest stride {stride} in both directions (for example "
            f"{max(stride, round(width / stride) * stride)}x{max(stride, round(height / stride) * stride)})"
        )
    return size


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
    """Runs a YOLOX ONNX model described by its card. Thread-safe: onnxruntime sessions are.

    ``input_size``: None = the card's ``input.size``; (width, height), each a multiple of the card's
    largest stride (a card without ``dynamic_size`` takes only its own size); or "auto": per frame,
    see :func:`auto_size` (on a fixed-size card "auto" is the card's size).
    """

    def __init__(
        self, card: ModelCard, model_dir: Path, threads: int = 0, input_size: InputSize = None
    ) -> None:
        if card.family != "yolox":
            raise ValueError(f"model {card.name} is a {card.family} model, not yolox")
        self.card = card
        self.input_size = check_input_size(card, input_size)
        self.session = open_session(model_dir / card.file, threads)
        self.input_name = card.input.name
        # The size every frame runs at, or None when it is chosen per frame ("auto" on a dynamic card).
        fixed = self.input_size if isinstance(self.input_size, tuple) else None
        self.size: tuple[int, int] = fixed or card.input.size
        self.auto = self.input_size == "auto" and card.dynamic_size
        if (self.auto or self.size != card.input.size) and not self._onnx_takes_any_size():
            raise ModelCardError(
                f"{card.file}: the card says dynamic_size, but the ONNX input "
                f"{self.session.get_inputs()[0].shape} has a fixed height and width; export it with "
                "dynamic axes or set dynamic_size: false"
            )
        self._grids: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        self.grid, self.strides = self.grid_for(self.size)
        batch_dim = self.session.get_inputs()[0].shape[0]
        # A fixed batch of 1 means frames from several cameras go through one at a time.
        self.max_batch = batch_dim if isinstance(batch_dim, int) else 16

    def _onnx_takes_any_size(self) -> bool:
        shape = self.session.get_inputs()[0].shape
        hw = shape[2:4] if self.card.input.layout == "NCHW" else shape[1:3]
        return not all(isinstance(d, int) and d > 0 for d in hw)

    @property
    def provider(self) -> str:
        return str(self.session.get_providers()[0])

    @property
    def size_label(self) -> str:
        """What the detector runs at, for status lines: "auto" or "WxH"."""
        return "auto" if self.auto else f"{self.size[0]}x{self.size[1]}"

    def grid_for(self, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """The decode grid of an input size, computed once per size."""
        found = self._grids.get(size)
        if found is None:
            found = self._grids[size] = make_grid(size, self.card.strides)
        return found

    def size_for(self, image: np.ndarray) -> tuple[int, int]:
        """The input (width, height) this frame runs at."""
        if not self.auto:
            return self.size
        height, width = image.shape[:2]
        return auto_size(self.card.input.size, width, height, max(self.card.strides))

    def preprocess(self, image: np.ndarray, size: tuple[int, int] | None = None) -> tuple[np.ndarray, float]:
        canvas, placement = letterbox(
            image, size or self.size_for(image), "top_left", self.card.input.pad_value
        )
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
        # Frames of different input sizes (cameras of different shapes, on "auto") run in groups.
        groups: dict[tuple[int, int], list[int]] = {}
        for i, img in enumerate(images):
            groups.setdefault(self.size_for(img), []).append(i)
        results: list[list[Detection]] = [[] for _ in images]
        for size, members in groups.items():
            grid, strides = self.grid_for(size)
            for start in range(0, len(members), self.max_batch):
                chunk = members[start : start + self.max_batch]
                prepared = [self.preprocess(images[i], size) for i in chunk]
                batch = np.stack([t for t, _ in prepared])
                (raw,) = self.session.run(None, {self.input_name: batch})
                for i, out, (_, ratio) in zip(chunk, raw, prepared, strict=True):
                    results[i] = decode(out, grid, strides, ratio, self.card.classes, conf, nms_iou, classes)
        return results


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


def load_yolox(
    card: ModelCard, model_dir: Path, threads: int = 0, input_size: InputSize = None
) -> YoloxDetector:
    """A YOLOX detector whose ONNX input and output were checked against its card."""
    detector = YoloxDetector(card, model_dir, threads, input_size)
    inputs, outputs = session_io(detector.session)
    check_input(card.file, inputs, card.input)
    check_yolox_output(card, outputs[0].shape if outputs else ())
    return detector


FAMILY = register_family(ModelFamily("yolox", "detector", load_yolox, sized=True))
