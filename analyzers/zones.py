"""Polygon regions in 0..1 image coordinates, evaluated with supervision's PolygonZone."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import supervision as sv

from analyzers.records import Detection

Point = tuple[float, float]


def to_sv(detections: Sequence[Detection]) -> sv.Detections:
    if not detections:
        return sv.Detections.empty()
    return sv.Detections(
        xyxy=np.array([d.box for d in detections], dtype=np.float32),
        confidence=np.array([d.score for d in detections], dtype=np.float32),
        class_id=np.array([d.class_id for d in detections], dtype=int),
    )


class Region:
    """A named polygon; people count as inside when their feet (bottom-centre) are."""

    def __init__(self, name: str, polygon: Sequence[Point]) -> None:
        self.name = name
        self.polygon = np.asarray(polygon, dtype=np.float64)
        self._zones: dict[tuple[int, int], sv.PolygonZone] = {}

    def _zone(self, width: int, height: int) -> sv.PolygonZone:
        zone = self._zones.get((width, height))
        if zone is None:
            # supervision tests anchors against a pixel mask; clip so edge points stay inside it.
            scale = np.array([width - 1, height - 1], dtype=np.float64)
            pixels = np.round(self.polygon * scale).astype(int)
            zone = sv.PolygonZone(pixels, triggering_anchors=(sv.Position.BOTTOM_CENTER,))
            self._zones[(width, height)] = zone
        return zone

    def inside(self, detections: Sequence[Detection], width: int, height: int) -> list[Detection]:
        if not detections:
            return []
        mask = self._zone(width, height).trigger(to_sv(detections))
        return [d for d, hit in zip(detections, mask, strict=True) if hit]

    def pixels(self, width: int, height: int) -> np.ndarray:
        return np.round(self.polygon * np.array([width - 1, height - 1])).astype(np.int32)
