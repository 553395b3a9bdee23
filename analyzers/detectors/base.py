"""What every ONNX model family shares: the detector interface, load-time shape checks against the
card, letterboxing, tensor layout and frame checks.

Bad-frame contract, the same for every detector, classifier and pose estimator here: a frame of the
wrong kind (not an HxWx3 uint8 array: a 2-D grayscale frame, 4 channels, float pixels) raises
``ValueError``; a frame of the right kind that holds nothing useful (empty, tiny, black, any size)
gives no detections or poses rather than an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np

from analyzers.records import Detection
from analyzers.runtime.card import InputSpec, ModelCard, ModelCardError
from analyzers.runtime.session import open_session

Dim = int | str | None  # onnxruntime reports a dynamic dimension as a symbol name or None

ONNX_TYPES = {"float32": "tensor(float)", "int32": "tensor(int32)", "uint8": "tensor(uint8)"}
NUMPY_TYPES: dict[str, type[np.generic]] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(uint8)": np.uint8,
}
DEFAULT_MAX_BATCH = 16  # for models with a dynamic batch dimension


@runtime_checkable
class Detector(Protocol):
    """An object detector over whole frames; every family's detector satisfies this."""

    card: ModelCard
    max_batch: int

    @property
    def provider(self) -> str: ...

    def detect(
        self,
        images: Sequence[np.ndarray],
        conf: float = 0.3,
        nms_iou: float = 0.45,
        classes: set[int] | None = None,
    ) -> list[list[Detection]]: ...


@dataclass(frozen=True, slots=True)
class TensorInfo:
    """An ONNX graph input or output as onnxruntime describes it."""

    name: str
    shape: tuple[Dim, ...]
    type: str = "tensor(float)"


def fixed(dim: Dim) -> bool:
    return isinstance(dim, int) and dim >= 0


def fmt_shape(shape: Sequence[Dim]) -> str:
    return "[" + ",".join(str(d) if fixed(d) else "?" for d in shape) + "]"


def dims_match(found: Sequence[Dim], expected: Sequence[Dim]) -> bool:
    """Same rank, and every dimension fixed on both sides is equal (dynamic ones match anything)."""
    if len(found) != len(expected):
        return False
    return all(not (fixed(f) and fixed(e)) or f == e for f, e in zip(found, expected, strict=True))


def session_io(session: Any) -> tuple[list[TensorInfo], list[TensorInfo]]:
    """The inputs and outputs of an onnxruntime session (or anything shaped like one)."""

    def info(nodes: Any) -> list[TensorInfo]:
        return [TensorInfo(n.name, tuple(n.shape), n.type) for n in nodes]

    return info(session.get_inputs()), info(session.get_outputs())


def check_input(file: str, inputs: Sequence[TensorInfo], spec: InputSpec) -> TensorInfo:
    """The image input named by the card, checked for rank, layout, size and type; raises
    ModelCardError naming the file and what was expected vs found."""
    found = next((t for t in inputs if t.name == spec.name), None)
    if found is None:
        names = [t.name for t in inputs]
        raise ModelCardError(f"{file}: no input named {spec.name!r}; the model's inputs are {names}")
    width, height = spec.size
    expected: tuple[Dim, ...] = (
        (None, 3, height, width) if spec.layout == "NCHW" else (None, height, width, 3)
    )
    if not dims_match(found.shape, expected):
        raise ModelCardError(
            f"{file}: input {spec.name!r} is {fmt_shape(found.shape)}, the card says {width}x{height} "
            f"{spec.layout} (expected {fmt_shape(expected)})"
        )
    want = ONNX_TYPES[spec.dtype]
    if found.type != want:
        raise ModelCardError(f"{file}: input {spec.name!r} is {found.type}, the card says {spec.dtype}")
    return found


def batch_limit(info: TensorInfo) -> int:
    """A fixed batch of 1 means frames from several cameras go through one at a time."""
    dim = info.shape[0] if info.shape else None
    return dim if isinstance(dim, int) and dim > 0 else DEFAULT_MAX_BATCH


def check_image(image: np.ndarray, what: str = "image") -> bool:
    """Raise ValueError unless ``image`` is an HxWx3 uint8 array; False when it has no pixels."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"{what} must be a numpy array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{what} must be HxWx3 (BGR), got shape {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"{what} must be uint8, got {image.dtype}")
    return image.shape[0] > 0 and image.shape[1] > 0


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a frame sits in the network input: input = frame * scale + pad, per axis."""

    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float
    frame_w: int
    frame_h: int

    def boxes_to_frame(self, boxes: np.ndarray) -> np.ndarray:
        """[N, 4] xyxy in input pixels -> frame pixels, clipped to the frame."""
        out = np.empty_like(boxes, dtype=np.float32)
        out[:, 0::2] = (boxes[:, 0::2] - self.pad_x) / self.scale_x
        out[:, 1::2] = (boxes[:, 1::2] - self.pad_y) / self.scale_y
        out[:, 0::2] = out[:, 0::2].clip(0, self.frame_w)
        out[:, 1::2] = out[:, 1::2].clip(0, self.frame_h)
        return out

    def points_to_frame(self, xy: np.ndarray) -> np.ndarray:
        """[N, 2] x, y in input pixels -> frame pixels (not clipped: keypoints may lie outside)."""
        out = np.empty_like(xy, dtype=np.float32)
        out[:, 0] = (xy[:, 0] - self.pad_x) / self.scale_x
        out[:, 1] = (xy[:, 1] - self.pad_y) / self.scale_y
        return out


def letterbox(
    image: np.ndarray, size: tuple[int, int], mode: str, pad_value: int
) -> tuple[np.ndarray, Placement]:
    """Fit ``image`` into ``size`` (width, height): ``top_left`` or ``centre`` keep the aspect ratio
    and pad, ``none`` stretches."""
    width, height = size
    src_h, src_w = image.shape[:2]
    if mode == "none":
        canvas = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
        return canvas, Placement(width / src_w, height / src_h, 0.0, 0.0, src_w, src_h)
    ratio = min(width / src_w, height / src_h)
    # At least one pixel each way, so a 1-pixel-high strip still resizes.
    new_w = min(width, max(1, int(round(src_w * ratio))))
    new_h = min(height, max(1, int(round(src_h * ratio))))
    left, top = ((width - new_w) // 2, (height - new_h) // 2) if mode == "centre" else (0, 0)
    canvas = np.full((height, width, 3), pad_value, dtype=np.uint8)
    canvas[top : top + new_h, left : left + new_w] = cv2.resize(
        image, (new_w, new_h), interpolation=cv2.INTER_LINEAR
    )
    return canvas, Placement(new_w / src_w, new_h / src_h, float(left), float(top), src_w, src_h)


def to_tensor(canvas: np.ndarray, spec: InputSpec) -> np.ndarray:
    """A BGR uint8 canvas as one network input item (no batch axis), per the card."""
    pixels = canvas[:, :, ::-1] if spec.colour == "RGB" else canvas
    if spec.dtype == "float32":
        tensor = pixels.astype(np.float32) * np.float32(spec.scale)
        # Optional per-channel normalisation, for cards that carry it (ImageNet-style classifiers).
        mean, std = getattr(spec, "mean", None), getattr(spec, "std", None)
        if mean is not None:
            tensor -= np.asarray(mean, dtype=np.float32)
        if std is not None:
            tensor /= np.asarray(std, dtype=np.float32)
    else:
        tensor = pixels.astype(np.int32 if spec.dtype == "int32" else np.uint8)
    if spec.layout == "NCHW":
        tensor = tensor.transpose(2, 0, 1)
    return np.ascontiguousarray(tensor)


def nms(
    boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, conf: float, nms_iou: float
) -> np.ndarray:
    """Indices kept by class-aware NMS over xyxy boxes."""
    if len(boxes) == 0:
        return np.zeros(0, dtype=int)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)
    picked = cv2.dnn.NMSBoxesBatched(xywh.tolist(), scores.tolist(), class_ids.tolist(), conf, nms_iou)
    return np.asarray(picked, dtype=int).reshape(-1)


def best_class(scores: np.ndarray, classes: set[int] | None) -> tuple[np.ndarray, np.ndarray]:
    """Per row of an [N, C] score matrix the best class id and its score, among ``classes`` if given."""
    if classes is not None:
        allowed = np.zeros(scores.shape[1], dtype=bool)
        allowed[[c for c in classes if 0 <= c < scores.shape[1]]] = True
        scores = np.where(allowed, scores, -np.inf)
    ids = scores.argmax(1) if scores.shape[1] else np.zeros(len(scores), dtype=int)
    best = scores[np.arange(len(scores)), ids] if scores.shape[1] else np.full(len(scores), -np.inf)
    return ids, best


def make_detections(
    boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, labels: Sequence[str]
) -> list[Detection]:
    """Detections from frame-pixel boxes; boxes that clipping left with no area are dropped."""
    result = []
    for box, score, cid in zip(boxes, scores, class_ids, strict=True):
        x1, y1, x2, y2 = (float(v) for v in box)
        if x2 <= x1 or y2 <= y1:
            continue
        c = int(cid)
        result.append(Detection((x1, y1, x2, y2), float(score), c, labels[c] if c < len(labels) else str(c)))
    return result


def sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(x, -80, 80))), dtype=np.float32)


class OnnxModel:
    """A card plus an onnxruntime session whose image input was checked against the card.

    ``session`` lets a caller pass one already open (shared, or a stand-in in tests).
    """

    family: tuple[str, ...] = ()

    def __init__(self, card: ModelCard, model_dir: Path, threads: int = 0, session: Any = None) -> None:
        if self.family and card.family not in self.family:
            raise ValueError(f"model {card.name} is a {card.family} model, not {'/'.join(self.family)}")
        self.card = card
        self.file = card.file
        self.session = session if session is not None else open_session(model_dir / card.file, threads)
        self.inputs, self.outputs = session_io(self.session)
        self.image_input = check_input(self.file, self.inputs, card.input)
        self.max_batch = batch_limit(self.image_input)

    @property
    def provider(self) -> str:
        return str(self.session.get_providers()[0])

    def prepare(self, image: np.ndarray) -> tuple[np.ndarray, Placement]:
        spec = self.card.input
        canvas, placement = letterbox(image, spec.size, spec.letterbox, spec.pad_value)
        return to_tensor(canvas, spec), placement

    def run_batches(
        self, images: Sequence[np.ndarray], feeds: Any = None
    ) -> list[tuple[list[np.ndarray], Placement] | None]:
        """Check every image first (a bad one raises before any inference), then run the usable ones
        in chunks of ``max_batch``. Per image: (its slice of each output, placement), or None for an
        image with no pixels. ``feeds(placements)`` may add inputs besides the image."""
        usable = [check_image(img, f"image {i}") for i, img in enumerate(images)]
        results: list[tuple[list[np.ndarray], Placement] | None] = [None] * len(images)
        todo = [i for i, ok in enumerate(usable) if ok]
        for start in range(0, len(todo), self.max_batch):
            chunk = todo[start : start + self.max_batch]
            prepared = [self.prepare(images[i]) for i in chunk]
            inputs = {self.image_input.name: np.stack([t for t, _ in prepared])}
            if feeds is not None:
                inputs.update(feeds([p for _, p in prepared]))
            outs = self.session.run(None, inputs)
            for k, (i, (_, placement)) in enumerate(zip(chunk, prepared, strict=True)):
                results[i] = ([np.asarray(o)[k] for o in outs], placement)
        return results
