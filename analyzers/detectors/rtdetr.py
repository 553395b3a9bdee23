"""RT-DETR / D-FINE style end-to-end detectors (card family ``rtdetr``): one box per query, no NMS.

Two ONNX export forms are recognised from the graph at load time:

* ``postprocessed`` (RT-DETR / D-FINE ``export_onnx.py``): outputs ``labels`` [B,Q], ``boxes`` [B,Q,4]
  xyxy in pixels of ``orig_target_sizes`` and ``scores`` [B,Q]; the size input, when the graph
  declares one, is fed the network input size (width, height) so boxes come out in input pixels.
* ``raw`` (a single [B,Q,4+C] output): cx, cy, w, h normalised to the input, then C class scores.
  These are logits in most exports and probabilities in Ultralytics ones; the card's ``activation``
  says which, and without it logits are recognised by values outside 0..1.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from analyzers.detectors.base import (
    NUMPY_TYPES,
    OnnxModel,
    Placement,
    TensorInfo,
    best_class,
    dims_match,
    fixed,
    fmt_shape,
    make_detections,
    sigmoid,
)
from analyzers.records import Detection
from analyzers.runtime.card import ModelCard, ModelCardError
from analyzers.runtime.families import ModelFamily, register_family

Form = Literal["postprocessed", "raw"]
INT_TYPES = ("tensor(int64)", "tensor(int32)")


def _named(outputs: Sequence[TensorInfo], name: str) -> TensorInfo | None:
    return next((o for o in outputs if o.name.lower() == name), None)


def detect_form(file: str, outputs: Sequence[TensorInfo], num_classes: int) -> tuple[Form, list[int]]:
    """The export form and the indices of its outputs ([labels, boxes, scores] or [raw]); raises
    ModelCardError listing what was found when the outputs fit neither form."""
    found = ", ".join(f"{o.name} {fmt_shape(o.shape)}" for o in outputs) or "none"
    boxes = _named(outputs, "boxes") or next(
        (o for o in outputs if len(o.shape) == 3 and o.shape[2] == 4), None
    )
    if boxes is not None and len(outputs) >= 2:
        rank2 = [o for o in outputs if len(o.shape) == 2]
        labels = _named(outputs, "labels") or next((o for o in rank2 if o.type in INT_TYPES), None)
        scores = _named(outputs, "scores") or next(
            (o for o in rank2 if o.type not in INT_TYPES and o is not labels), None
        )
        if labels is None or scores is None or labels is scores:
            raise ModelCardError(
                f"{file}: outputs are {found}; an RT-DETR export with a boxes output also needs "
                "labels [B,Q] and scores [B,Q]"
            )
        queries = boxes.shape[1] if len(boxes.shape) == 3 else None
        for o, want in ((boxes, (None, queries, 4)), (labels, (None, queries)), (scores, (None, queries))):
            if not dims_match(o.shape, want):
                raise ModelCardError(
                    f"{file}: output {o.name!r} is {fmt_shape(o.shape)}, expected {fmt_shape(want)} "
                    "(labels [B,Q], boxes [B,Q,4], scores [B,Q])"
                )
        return "postprocessed", [outputs.index(labels), outputs.index(boxes), outputs.index(scores)]
    if len(outputs) >= 1 and len(outputs[0].shape) == 3:
        if num_classes <= 0:
            raise ModelCardError(f"{file}: the card lists no classes; a raw RT-DETR head needs them")
        last = outputs[0].shape[2]
        if not fixed(last) or last == 4 + num_classes:
            return "raw", [0]
        raise ModelCardError(
            f"{file}: output {outputs[0].name!r} is {fmt_shape(outputs[0].shape)}; with {num_classes} "
            f"classes on the card a raw RT-DETR head is [B,Q,{4 + num_classes}]"
        )
    raise ModelCardError(
        f"{file}: outputs are {found}; expected labels [B,Q] + boxes [B,Q,4] + scores [B,Q], "
        f"or one [B,Q,{4 + num_classes}] output"
    )


def size_input(file: str, inputs: Sequence[TensorInfo], image_input: str) -> TensorInfo | None:
    """The ``orig_target_sizes``-style [B,2] input when the graph declares one."""
    extra = [t for t in inputs if t.name != image_input]
    if not extra:
        return None
    if len(extra) > 1 or not dims_match(extra[0].shape, (None, 2)) or extra[0].type not in NUMPY_TYPES:
        listed = ", ".join(f"{t.name} {fmt_shape(t.shape)} {t.type}" for t in extra)
        raise ModelCardError(f"{file}: unexpected inputs {listed}; only a [B,2] target-size input is known")
    return extra[0]


def decode_postprocessed(
    labels: np.ndarray,
    boxes: np.ndarray,
    scores: np.ndarray,
    placement: Placement,
    names: Sequence[str],
    conf: float,
    classes: set[int] | None = None,
) -> list[Detection]:
    """One image's labels [Q], boxes [Q,4] xyxy in input pixels, scores [Q] -> detections."""
    class_ids = labels.astype(np.int64).reshape(-1)
    scores = scores.astype(np.float32).reshape(-1)
    keep = scores >= conf
    if classes is not None:
        keep &= np.isin(class_ids, list(classes))
    if not keep.any():
        return []
    frame_boxes = placement.boxes_to_frame(boxes.reshape(-1, 4)[keep].astype(np.float32))
    order = np.argsort(-scores[keep], kind="stable")
    return make_detections(frame_boxes[order], scores[keep][order], class_ids[keep][order], names)


def decode_raw(
    raw: np.ndarray,
    size: tuple[int, int],
    placement: Placement,
    names: Sequence[str],
    conf: float,
    classes: set[int] | None = None,
    activation: str | None = None,
) -> list[Detection]:
    """One image's [Q, 4+C] head (normalised cxcywh + class scores) -> detections."""
    logits = raw[:, 4:].astype(np.float32)
    if activation == "sigmoid" or (activation is None and (logits.min() < 0 or logits.max() > 1)):
        probs = sigmoid(logits)
    else:
        probs = logits
    class_ids, best = best_class(probs, classes)
    keep = best >= conf
    if not keep.any():
        return []
    width, height = size
    cxcywh = raw[keep, :4].astype(np.float32) * np.array([width, height, width, height], np.float32)
    half = cxcywh[:, 2:] / 2
    boxes = placement.boxes_to_frame(np.concatenate([cxcywh[:, :2] - half, cxcywh[:, :2] + half], 1))
    order = np.argsort(-best[keep], kind="stable")
    return make_detections(boxes[order], best[keep][order], class_ids[keep][order], names)


class RtDetrDetector(OnnxModel):
    """Runs an RT-DETR / D-FINE ONNX export described by its card. ``nms_iou`` is accepted for the
    common Detector interface and ignored: these heads emit one box per object."""

    family = ("rtdetr",)

    def __init__(self, card: ModelCard, model_dir: Path, threads: int = 0, session: Any = None) -> None:
        super().__init__(card, model_dir, threads, session)
        self.form, self.picks = detect_form(self.file, self.outputs, len(card.classes))
        self.size_input = size_input(self.file, self.inputs, self.image_input.name)
        self.activation: str | None = getattr(card, "activation", None)

    def _size_feed(self, placements: list[Placement]) -> dict[str, np.ndarray]:
        if self.size_input is None:
            return {}
        dtype = NUMPY_TYPES[self.size_input.type]
        return {self.size_input.name: np.array([self.card.input.size] * len(placements), dtype=dtype)}

    def detect(
        self,
        images: Sequence[np.ndarray],
        conf: float = 0.3,
        nms_iou: float = 0.45,
        classes: set[int] | None = None,
    ) -> list[list[Detection]]:
        """Detect in a batch of BGR frames; see analyzers.detectors.base for the bad-frame contract."""
        results: list[list[Detection]] = []
        names = self.card.classes
        for item in self.run_batches(images, self._size_feed):
            if item is None:
                results.append([])
                continue
            outs, placement = item
            if self.form == "postprocessed":
                labels, boxes, scores = (outs[i] for i in self.picks)
                results.append(decode_postprocessed(labels, boxes, scores, placement, names, conf, classes))
            else:
                raw = outs[self.picks[0]]
                if raw.ndim != 2 or raw.shape[1] != 4 + len(names):
                    raise ModelCardError(
                        f"{self.file}: output is {list(raw.shape)} per image, expected [Q,{4 + len(names)}]"
                    )
                size = self.card.input.size
                results.append(decode_raw(raw, size, placement, names, conf, classes, self.activation))
        return results


def _load(card: ModelCard, model_dir: Path, threads: int = 0, _input_size: object = None) -> RtDetrDetector:
    return RtDetrDetector(card, model_dir, threads)


FAMILY = register_family(ModelFamily("rtdetr", "detector", _load))
