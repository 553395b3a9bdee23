"""Tracks across frames with ByteTrack (Roboflow's trackers package, on supervision's Detections).

Frames arrive at the scene's sampling rate (often 1 frame/s); the tracker runs in fixed-rate mode at
that rate (its timestamp mode assigned no ids in trackers 2.6) and keeps a lost track a few seconds.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence

import numpy as np
import supervision as sv
from trackers import ByteTrackTracker

from analyzers.records import Detection
from analyzers.zones import to_sv


class Tracker:
    """Assigns stable ``track_id``s to one camera's detections of one model."""

    def __init__(
        self, fps: float = 1.0, lost_after_s: float = 5.0, min_iou: float = 0.1, activation: float = 0.4
    ) -> None:
        self._tracker = ByteTrackTracker(
            lost_track_buffer=max(1, int(round(lost_after_s * fps))),
            frame_rate=fps,
            track_activation_threshold=activation,
            minimum_consecutive_frames=1,
            minimum_iou_threshold=min_iou,
            high_conf_det_threshold=activation,
        )

    def update(self, detections: Sequence[Detection]) -> list[Detection]:
        """The same detections with track ids; a detection seen only once so far keeps None."""
        tracked = self._step(detections)
        if not detections:
            return []
        ids = tracked.tracker_id if tracked.tracker_id is not None else np.full(len(tracked), -1)
        # The tracker may reorder: match its boxes back to ours (identical coordinates).
        by_box = {tuple(np.round(box, 3)): int(tid) for box, tid in zip(tracked.xyxy, ids, strict=True)}
        out = []
        for det in detections:
            tid = by_box.get(tuple(np.round(np.asarray(det.box, dtype=np.float32), 3)), -1)
            out.append(dataclasses.replace(det, track_id=tid if tid >= 0 else None))
        return out

    def _step(self, detections: Sequence[Detection]) -> sv.Detections:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self._tracker.update(to_sv(detections))
