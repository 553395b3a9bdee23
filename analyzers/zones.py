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
    """A named polygon in 0..1 coordinates, tested against detections' anchor points."""

    def __init__(self, name: str, polygon: Sequence[Point]) -> None:
        self.name = name
        self.polygon = np.asarray(polygon, dtype=np.float64)
        self._zones: dict[tuple[int, int], sv.PolygonZone] = {}

    def _mask(self, width: int, height: int) -> np.ndarray:
        zone = self._zones.get((width, height))
        if zone is None:
            # supervision tests anchors against a pixel mask; clip so edge points stay inside it.
            scale = np.array([width - 1, height - 1], dtype=np.float64)
            pixels = np.round(self.polygon * scale).astype(int)
            zone = sv.PolygonZone(pixels)
            self._zones[(width, height)] = zone
        return zone.mask

    def inside(
        self,
        detections: Sequence[Detection],
        width: int,
        height: int,
        anchor: sv.Position = sv.Position.BOTTOM_CENTER,
    ) -> list[Detection]:
        """Detections whose anchor point (people: their feet; objects: the centre) lies in the polygon."""
        if not detections:
            return []
        # supervision rasterises the polygon; the anchor lookup is done here on plain arrays, which
        # is several times cheaper per frame than building a Detections object for every region.
        mask = self._mask(width, height)
        boxes = np.array([d.box for d in detections], dtype=np.float64)
        xs = (boxes[:, 0] + boxes[:, 2]) / 2
        ys = boxes[:, 3] if anchor == sv.Position.BOTTOM_CENTER else (boxes[:, 1] + boxes[:, 3]) / 2
        x, y = np.rint(xs).astype(int), np.rint(ys).astype(int)
        mask_h, mask_w = mask.shape
        ok = (x >= 0) & (y >= 0) & (x < mask_w) & (y < mask_h)
        hits = ok & (mask[np.clip(y, 0, mask_h - 1), np.clip(x, 0, mask_w - 1)] > 0)
        return [d for d, hit in zip(detections, hits, strict=True) if hit]

    def pixels(self, width: int, height: int) -> np.ndarray:
        return np.round(self.polygon * np.array([width - 1, height - 1])).astype(np.int32)


class Line:
    """A counting line in 0..1 coordinates: people crossing it, in each direction (supervision's LineZone)."""

    def __init__(self, name: str, start: Point, end: Point) -> None:
        self.name = name
        self.start, self.end = start, end
        self._zones: dict[tuple[int, int], sv.LineZone] = {}

    def crossings(self, tracked: Sequence[Detection], width: int, height: int) -> tuple[int, int]:
        """(in, out) crossings in this frame; needs detections with track ids."""
        zone = self._zones.get((width, height))
        if zone is None:
            scale = (width - 1, height - 1)
            zone = sv.LineZone(
                sv.Point(self.start[0] * scale[0], self.start[1] * scale[1]),
                sv.Point(self.end[0] * scale[0], self.end[1] * scale[1]),
                triggering_anchors=(sv.Position.BOTTOM_CENTER,),
            )
            self._zones[(width, height)] = zone
        with_ids = [d for d in tracked if d.track_id is not None]
        if not with_ids:
            return 0, 0
        dets = to_sv(with_ids)
        dets.tracker_id = np.array([d.track_id for d in with_ids], dtype=int)
        crossed_in, crossed_out = zone.trigger(dets)
        return int(np.sum(crossed_in)), int(np.sum(crossed_out))
