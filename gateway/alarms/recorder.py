"""Storing alarms: evidence files, the alarm row, its first revision and outbox rows, in one transaction."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from sqlalchemy import select

from analyzers import AlarmEvent, Region
from gateway.db import Database
from gateway.db.files import EvidenceStore
from gateway.db.schema import Alarm, AlarmRevision, Evidence, utcnow
from gateway.delivery.outbox import Outbox
from gateway.ids import new_ulid

log = logging.getLogger(__name__)

OPEN_STATUSES = ("raised", "confirmed", "disposed")


@dataclass(frozen=True)
class VideoOrigin:
    """Where an offline video's alarms come from: the analysis job and the video's start (epoch s)."""

    job: str
    start: float


@dataclass(frozen=True)
class SceneContext:
    """What the gateway knows about the camera-scene an event came from."""

    camera_scene_id: int | None
    tags: dict[str, Any]
    scene_tag: str | None
    regions: Sequence[Region]
    priority: int = 2
    # Set for offline video: alarms get ``video_ts`` and an event key of their own job, so that they
    # neither block nor are blocked by the live camera's open alarms (or an earlier import's).
    video: VideoOrigin | None = None


def utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)


def annotate(image: np.ndarray, event: AlarmEvent, regions: Sequence[Region]) -> np.ndarray:
    """Draw the regions and the boxes that caused the alarm onto a copy of the frame."""
    out = image.copy()
    height, width = out.shape[:2]
    for region in regions:
        colour = (0, 0, 255) if region.name == event.region else (0, 200, 255)
        cv2.polylines(out, [region.pixels(width, height)], True, colour, 2)
    for det in event.detections:
        x1, y1, x2, y2 = (int(v) for v in det.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), (0, 0, 255), 2)
        cv2.putText(
            out,
            f"{det.label} {det.score:.2f}",
            (x1, max(12, y1 - 4)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.45,
            (0, 0, 255),
            1,
            cv2.LINE_AA,
        )
    stamp = f"{event.scene} {event.region} {utc(event.raised_at):%Y-%m-%d %H:%M:%S}Z"
    cv2.putText(out, stamp, (8, height - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return bytes(buf.tobytes())


class AlarmRecorder:
    """Turns analyzer events into stored alarms. Thread-safe; called from camera threads."""

    def __init__(
        self, db: Database, store: EvidenceStore, retention_days: int, outbox: Outbox | None = None
    ) -> None:
        self.db = db
        self.store = store
        self.retention = dt.timedelta(days=retention_days)
        self.outbox = outbox or Outbox()

    def open_event_keys(self) -> set[str]:
        with self.db.session() as s:
            return set(s.scalars(select(Alarm.event_key).where(Alarm.status.in_(OPEN_STATUSES))))

    def record(self, event: AlarmEvent, image: np.ndarray, ctx: SceneContext) -> str | None:
        """Store one alarm; returns its id, or None when an alarm for the same event is still open."""
        raw_jpeg = jpeg(image)
        annotated_jpeg = jpeg(annotate(image, event, ctx.regions))
        # Files first (atomic, content-addressed): a crash before the commit leaves only an orphan file.
        files = [
            ("snapshot_raw", *self.store.put(raw_jpeg, "jpg")[:2], len(raw_jpeg)),
            ("snapshot", *self.store.put(annotated_jpeg, "jpg")[:2], len(annotated_jpeg)),
        ]
        now = utcnow()
        event_key = event.key if ctx.video is None else f"video:{ctx.video.job}/{event.key}"
        with self.db.session() as s:
            existing = s.scalar(
                select(Alarm.id).where(Alarm.event_key == event_key, Alarm.status.in_(OPEN_STATUSES)).limit(1)
            )
            if existing is not None:
                return None
            alarm = Alarm(
                id=new_ulid(),
                camera_id=event.camera_id,
                camera_scene_id=ctx.camera_scene_id,
                scene=event.scene,
                region=event.region,
                event_key=event_key,
                status="raised",
                priority=ctx.priority,
                score=event.score,
                message=event.message,
                details={
                    **event.details,
                    **({"target": event.target} if event.target is not None else {}),
                    "boxes": [
                        {"label": d.label, "score": round(d.score, 4), "box": [round(v, 1) for v in d.box]}
                        for d in event.detections
                    ],
                },
                tags={**ctx.tags, **({"scene_tag": ctx.scene_tag} if ctx.scene_tag else {})},
                occurred_at=utc(event.occurred_at),
                raised_at=utc(event.raised_at),
                video_ts=round(event.occurred_at - ctx.video.start, 3) if ctx.video is not None else None,
                revision=1,
            )
            s.add(alarm)
            s.add(
                AlarmRevision(
                    alarm=alarm,
                    revision=1,
                    action="raised",
                    actor="analyzer",
                    at=now,
                    changes={"status": [None, "raised"], "score": event.score},
                )
            )
            for kind, digest, rel, size in files:
                s.add(
                    Evidence(
                        alarm=alarm,
                        kind=kind,
                        sha256=digest,
                        path=rel,
                        media_type="image/jpeg",
                        size=size,
                        created_at=now,
                        retain_until=now + self.retention,
                    )
                )
            if ctx.video is None:  # offline analysis and replay are not pushed upstream
                self.outbox.enqueue(s, alarm, "raised")
        self.outbox.notify()
        log.info("alarm %s raised: %s on %s (%s)", alarm.id, event.scene, event.camera_id, event.message)
        return alarm.id
