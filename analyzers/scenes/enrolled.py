"""Scenes that match crops against the plant's enrolment (work clothes, extinguishers, role markers).

``EnrolledLook`` asks the process's enrolment source (analyzers.enrolment.source, installed by the
gateway, by ``vigil eval`` and by tests) for the scene's set on its camera, and says what is missing
when there is none (shown as the camera's scene status). ``match_boxes`` cuts the boxes as the
enrolment's examples were cut (the part's expand), embeds them in one batch and matches them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from analyzers.detectors.classifier import crop_box
from analyzers.enrolment import EmbedderMissing, Enrolled, Match, current_source, match_crops
from analyzers.enrolment.embedding import Embedder

Box = tuple[float, float, float, float]
MIN_SIDE = 12  # pixels: a smaller crop is not judged (no call either way)


class EnrolledLook:
    """The enrolment one scene on one camera matches against."""

    def __init__(self, scene: str, camera_id: str, missing: str) -> None:
        self.scene = scene
        self.camera_id = camera_id
        self.missing_text = missing
        self.missing: str | None = None  # why the scene cannot judge now

    def get(self) -> tuple[Enrolled, Embedder] | None:
        source = current_source()
        found = source.enrolled(self.scene, self.camera_id) if source is not None else None
        if found is None:
            self.missing = self.missing_text
            return None
        try:
            embedder = source.embedder() if source is not None else None
        except EmbedderMissing as exc:
            self.missing = f"enrolment model missing: {exc}"
            return None
        if embedder is None:
            return None
        self.missing = None
        return found, embedder

    def match_boxes(self, image: np.ndarray, boxes: Sequence[Box], expand: float) -> list[Match] | None:
        """One match per box (None: nothing enrolled); boxes too small to judge give unknown matches."""
        got = self.get()
        if got is None:
            return None
        enrolled, embedder = got
        crops = [crop_box(image, b, expand) for b in boxes]
        crops = [c if min(c.shape[:2], default=0) >= MIN_SIDE else c[:0] for c in crops]
        return match_crops(enrolled, embedder, crops)
