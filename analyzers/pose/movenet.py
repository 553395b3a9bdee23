"""MoveNet MultiPose: up to six people with 17 COCO keypoints each, from one whole-frame pass."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from analyzers.detectors.base import OnnxModel, TensorInfo, check_image, dims_match, fmt_shape
from analyzers.records import Pose
from analyzers.runtime.card import ModelCard, ModelCardError
from analyzers.runtime.families import ModelFamily, register_family

PERSON_VALUES = 56  # 17 x (y, x, score) + (ymin, xmin, ymax, xmax, score), all normalised


def check_movenet_size(file: str, size: tuple[int, int]) -> None:
    """MoveNet's backbone needs both sides of the input a multiple of 32."""
    width, height = size
    if width % 32 or height % 32:
        raise ModelCardError(f"{file}: the card says {width}x{height}; MoveNet needs multiples of 32")


def check_movenet_output(file: str, outputs: Sequence[TensorInfo]) -> None:
    """MoveNet MultiPose gives [B, people, 56]."""
    if not outputs or not dims_match(outputs[0].shape, (None, None, PERSON_VALUES)):
        found = fmt_shape(outputs[0].shape) if outputs else "no output"
        raise ModelCardError(f"{file}: output is {found}, MoveNet MultiPose gives [B,people,{PERSON_VALUES}]")


class MoveNetMultiPose(OnnxModel):
    """Whole-frame multi-person pose. The card's input size sets the resolution (256x256 nominal; a
    larger one such as 512x384 finds the small, far people of CCTV views at several times the cost)."""

    family = ("movenet",)

    def __init__(self, card: ModelCard, model_dir: Path, threads: int = 0, session: Any = None) -> None:
        check_movenet_size(card.file, card.input.size)  # before the session opens: the card is wrong
        super().__init__(card, model_dir, threads, session)
        check_movenet_output(self.file, self.outputs)

    def estimate(self, image: np.ndarray, min_score: float = 0.2) -> list[Pose]:
        """People in a BGR frame scoring at least ``min_score``, best first, in frame pixels.
        Bad-frame contract as in analyzers.detectors.base: ValueError for a frame that is not
        HxWx3 uint8, no poses for an empty one."""
        if not check_image(image):
            return []
        tensor, placement = self.prepare(image)
        raw = np.asarray(self.session.run(None, {self.image_input.name: tensor[None]})[0])[0]
        width, height = self.card.input.size
        poses = []
        for person in raw.reshape(-1, PERSON_VALUES):
            score = float(person[55])
            if not score >= min_score:  # also drops NaN
                continue
            kps = person[:51].reshape(17, 3)
            xy = placement.points_to_frame(np.stack([kps[:, 1] * width, kps[:, 0] * height], 1))
            keypoints = np.concatenate([xy, kps[:, 2:3]], 1).astype(np.float32)
            ymin, xmin, ymax, xmax = person[51:55]
            x1, y1, x2, y2 = placement.boxes_to_frame(
                np.array([[xmin * width, ymin * height, xmax * width, ymax * height]], np.float32)
            )[0].tolist()
            poses.append(Pose((x1, y1, x2, y2), score, keypoints))
        poses.sort(key=lambda p: -p.score)
        return poses


def _load(card: ModelCard, model_dir: Path, threads: int = 0, _input_size: object = None) -> MoveNetMultiPose:
    return MoveNetMultiPose(card, model_dir, threads)


FAMILY = register_family(ModelFamily("movenet", "pose", _load))
