"""MediaPipe BlazePose landmarks on person crops, mapped from 33 landmarks to COCO-17."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from analyzers.detectors.base import OnnxModel, TensorInfo, check_image, fmt_shape, sigmoid, to_tensor
from analyzers.records import Pose
from analyzers.runtime.card import ModelCard, ModelCardError
from analyzers.runtime.families import ModelFamily, register_family

BODY_LANDMARKS = 33
# BlazePose landmark index for each COCO-17 keypoint; both name sides from the person's view.
COCO_FROM_BLAZEPOSE = np.array([0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28])
CROP_MARGIN = 1.25  # crop side = 1.25 x the longer side of the person box, as the model was trained


def pick_outputs(file: str, outputs: Sequence[TensorInfo]) -> tuple[int, int | None]:
    """Indices of the landmark output ([B, K*5], K >= 33) and of the presence one ([B, 1]), if any."""
    landmarks = next(
        (
            i
            for i, o in enumerate(outputs)
            if len(o.shape) == 2
            and isinstance(o.shape[1], int)
            and o.shape[1] % 5 == 0
            and o.shape[1] >= BODY_LANDMARKS * 5
        ),
        None,
    )
    if landmarks is None:
        found = ", ".join(f"{o.name} {fmt_shape(o.shape)}" for o in outputs) or "none"
        raise ModelCardError(
            f"{file}: outputs are {found}; BlazePose needs a [B,{BODY_LANDMARKS * 5}] landmark output "
            "(x, y, z, visibility, presence per landmark)"
        )
    presence = next((i for i, o in enumerate(outputs) if len(o.shape) == 2 and o.shape[1] == 1), None)
    return landmarks, presence


def crop_transform(box: Sequence[float], side_px: int) -> tuple[np.ndarray, float, float, float] | None:
    """Affine map from frame to a square crop centred on ``box``: (matrix, scale, left, top), or
    None for a box with no area."""
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    if not (np.isfinite([x1, y1, x2, y2]).all() and w > 0 and h > 0):
        return None
    side = CROP_MARGIN * max(w, h)
    left, top = (x1 + x2) / 2 - side / 2, (y1 + y2) / 2 - side / 2
    scale = side_px / side
    matrix = np.array([[scale, 0, -left * scale], [0, scale, -top * scale]], dtype=np.float32)
    return matrix, scale, left, top


class BlazePoseLandmarks(OnnxModel):
    """Single-person landmarks on a square crop around each given person box."""

    family = ("blazepose",)

    def __init__(self, card: ModelCard, model_dir: Path, threads: int = 0, session: Any = None) -> None:
        super().__init__(card, model_dir, threads, session)
        width, height = card.input.size
        if width != height:
            raise ModelCardError(f"{self.file}: the card says {width}x{height}; BlazePose crops are square")
        self.landmarks_out, self.presence_out = pick_outputs(self.file, self.outputs)

    def _crop(self, image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        spec = self.card.input
        side = spec.size[0]
        crop = cv2.warpAffine(
            image,
            matrix,
            (side, side),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(spec.pad_value,) * 3,
        )
        return to_tensor(crop, spec)

    def estimate(
        self, image: np.ndarray, boxes: Sequence[Sequence[float]], min_presence: float = 0.5
    ) -> list[Pose]:
        """Poses for the person boxes (xyxy, frame pixels) where the model sees a person with at least
        ``min_presence``; keypoints in frame pixels, confidence = sigmoid(visibility). Boxes with no
        area are skipped; bad-frame contract as in analyzers.detectors.base."""
        if not check_image(image) or not boxes:
            return []
        crops = []
        for box in boxes:
            transform = crop_transform(box, self.card.input.size[0])
            if transform is not None:
                x1, y1, x2, y2 = (float(v) for v in box)
                crops.append(((x1, y1, x2, y2), transform))
        poses: list[Pose] = []
        for start in range(0, len(crops), self.max_batch):
            chunk = crops[start : start + self.max_batch]
            batch = np.stack([self._crop(image, matrix) for _, (matrix, *_rest) in chunk])
            outs = self.session.run(None, {self.image_input.name: batch})
            landmarks = np.asarray(outs[self.landmarks_out], dtype=np.float32)
            presence = None if self.presence_out is None else np.asarray(outs[self.presence_out]).reshape(-1)
            for k, (box, (_, scale, left, top)) in enumerate(chunk):
                lm = landmarks[k].reshape(-1, 5)[:BODY_LANDMARKS][COCO_FROM_BLAZEPOSE]
                # The landmark model emits visibility as a logit (MediaPipe applies a sigmoid).
                conf = sigmoid(lm[:, 3])
                if presence is None:
                    score = float(conf.mean())
                else:
                    # The pose flag is already a probability in this export; a logit would show as
                    # a value outside 0..1.
                    p = float(presence[k])
                    score = p if 0.0 <= p <= 1.0 else float(sigmoid(np.array([p]))[0])
                if not score >= min_presence:
                    continue
                xy = np.stack([lm[:, 0] / scale + left, lm[:, 1] / scale + top], 1)
                keypoints = np.concatenate([xy, conf[:, None]], 1).astype(np.float32)
                poses.append(Pose(box, score, keypoints))
        return poses


def _load(
    card: ModelCard, model_dir: Path, threads: int = 0, _input_size: object = None
) -> BlazePoseLandmarks:
    return BlazePoseLandmarks(card, model_dir, threads)


FAMILY = register_family(ModelFamily("blazepose", "pose", _load))
