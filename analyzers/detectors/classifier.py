"""Image classifiers over crops (card family ``classifier``): helmet, workwear and similar attributes
of a detected person, one probability per class of the card."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from analyzers.detectors.base import (
    OnnxModel,
    TensorInfo,
    check_image,
    dims_match,
    fmt_shape,
    sigmoid,
)
from analyzers.runtime.card import ModelCard, ModelCardError
from analyzers.runtime.families import ModelFamily, register_family


def check_output(file: str, outputs: Sequence[TensorInfo], num_classes: int) -> TensorInfo:
    """The first output must be [B, C], with C the card's class count when the card lists classes."""
    if not outputs:
        raise ModelCardError(f"{file}: the model has no outputs")
    out = outputs[0]
    want = (None, num_classes if num_classes > 0 else None)
    if not dims_match(out.shape, want):
        says = f"{num_classes} classes" if num_classes > 0 else "no classes"
        raise ModelCardError(
            f"{file}: output {out.name!r} is {fmt_shape(out.shape)}, the card lists {says} "
            f"(expected {fmt_shape(want)})"
        )
    return out


def activate(raw: np.ndarray, activation: str | None = None) -> np.ndarray:
    """[N, C] model outputs -> probabilities. ``None`` means softmax, unless every row already is a
    probability distribution (a softmax inside the graph), which is then kept as it is."""
    raw = raw.astype(np.float32)
    if activation == "sigmoid":
        return sigmoid(raw)
    if activation == "none":
        return raw
    if activation is None and raw.size and raw.min() >= 0 and raw.max() <= 1:
        if np.allclose(raw.sum(1), 1.0, atol=1e-3):
            return raw
    shifted = np.exp(raw - raw.max(1, keepdims=True))
    return np.asarray(shifted / shifted.sum(1, keepdims=True), dtype=np.float32)


def crop_box(image: np.ndarray, box: Sequence[float], expand: float = 1.0) -> np.ndarray:
    """The part of ``image`` under an xyxy box grown ``expand`` times about its centre, clipped to
    the frame (possibly empty, which ``classify`` accepts)."""
    x1, y1, x2, y2 = box
    cx, cy, hw, hh = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) * expand / 2, (y2 - y1) * expand / 2
    height, width = image.shape[:2]
    left, top = max(0, int(np.floor(cx - hw))), max(0, int(np.floor(cy - hh)))
    right, bottom = min(width, int(np.ceil(cx + hw))), min(height, int(np.ceil(cy + hh)))
    return image[top : max(top, bottom), left : max(left, right)]


class ImageClassifier(OnnxModel):
    """Runs a classifier ONNX model on crops; ``labels`` names the probability columns."""

    family = ("classifier",)

    def __init__(self, card: ModelCard, model_dir: Path, threads: int = 0, session: Any = None) -> None:
        super().__init__(card, model_dir, threads, session)
        out = check_output(self.file, self.outputs, len(card.classes))
        dim = out.shape[1]
        self.num_classes = len(card.classes) or (dim if isinstance(dim, int) and dim > 0 else 0)
        self.labels = list(card.classes) or [str(i) for i in range(self.num_classes)]
        self.activation: str | None = getattr(card, "activation", None)

    def classify(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """[len(crops), C] class probabilities. A crop of the wrong kind (not HxWx3 uint8) raises
        ValueError; an empty crop gets a row of zeros instead of failing the others."""
        usable = [check_image(c, f"crop {i}") for i, c in enumerate(crops)]
        todo = [i for i, ok in enumerate(usable) if ok]
        rows: dict[int, np.ndarray] = {}
        for start in range(0, len(todo), self.max_batch):
            chunk = todo[start : start + self.max_batch]
            batch = np.stack([self.prepare(crops[i])[0] for i in chunk])
            raw = np.asarray(self.session.run(None, {self.image_input.name: batch})[0])
            if raw.ndim != 2:
                raise ModelCardError(f"{self.file}: output is {list(raw.shape)}, expected [B,C]")
            rows.update(zip(chunk, activate(raw, self.activation), strict=True))
        width = self.num_classes or (next(iter(rows.values())).shape[0] if rows else 0)
        probs = np.zeros((len(crops), width), dtype=np.float32)
        for i, row in rows.items():
            probs[i] = row
        return probs


def _load(card: ModelCard, model_dir: Path, threads: int = 0, _input_size: object = None) -> ImageClassifier:
    return ImageClassifier(card, model_dir, threads)


FAMILY = register_family(ModelFamily("classifier", "classifier", _load))
