"""Storing alarms: evidence files, the alarm row, its first revision and outbox rows, in one transaction,
unless the camera-scene's repeat rules (repeats.py) merge the event into an alarm already raised."""

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
from gateway.alarms.repeats import FLOOD_KEY, Arrival, centre_of, judge, merge, with_merged_key
from gateway.alarms.writer import EvidenceFile, NewAlarm, write_alarm
from gateway.config.alarm_policy import AlarmPolicy
from gateway.db import Database
from gateway.db.files import EvidenceStore
from gateway.db.schema import Alarm, utcnow
from gateway.delivery.outbox import Outbox
from gateway.i18n.caption import Caption

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


def annotate(
    image: np.ndarray, event: AlarmEvent, regions: Sequence[Region], caption: Caption | None = None
) -> np.ndarray:
    """Draw the regions and the boxes that caused the alarm onto a copy of the frame, and the caption
    (scene, region, time) in the site's language and zone (UTC in English without one)."""
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
    if caption is not None:
        caption.draw(out, event.scene, event.region, event.raised_at)
        return out
    stamp = f"{event.scene} {event.region} {utc(event.raised_at):%Y-%m-%d %H:%M:%S}Z"
    cv2.putText(out, stamp, (8, height - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return bytes(buf.tobytes())


class AlarmRecorder:
    """Turns analyzer events into stored alarms under the repeat rules (repeats.py). Thread-safe;
    called from camera threads."""

    def __init__(
        self,
        db: Database,
        store: EvidenceStore,
        retention_days: int,
        outbox: Outbox | None = None,
        policy: AlarmPolicy | None = None,
    ) -> None:
        self.db = db
        self.store = store
        self.retention = dt.timedelta(days=retention_days)
        self.outbox = outbox or Outbox()
        # None: no repeat rules (tools storing events as they come); the gateway passes config.alarms.
        self.policy = policy or AlarmPolicy.none()
        self.caption: Caption | None = None  # the site's (gateway.app sets it); None: English, UTC

    def wants_clip(self, scene: str) -> bool:
        """Whether the scene's alarms keep a video clip (``alarms.scenes.<scene>.clip``)."""
        return self.policy.for_scene(scene).clip

    def open_event_keys(self) -> set[str]:
        with self.db.session() as s:
            return set(s.scalars(select(Alarm.event_key).where(Alarm.status.in_(OPEN_STATUSES))))

    def record(self, event: AlarmEvent, image: np.ndarray, ctx: SceneContext) -> str | None:
        """Store one alarm; returns its id, or None when the event joins an alarm already raised (an
        open alarm of the same event key, or a repeat merged under the camera-scene's rules): then it
        is counted on that alarm."""
        raw_jpeg = jpeg(image)
        annotated_jpeg = jpeg(annotate(image, event, ctx.regions, self.caption))
        now = utcnow()
        height, width = image.shape[:2]
        video = ctx.video
        event_key = event.key if video is None else f"video:{video.job}/{event.key}"
        centre = (
            centre_of(event.detections[0].box, width, height)
            if event.target is not None and event.detections
            else None
        )
        arrival = Arrival(
            camera_id=event.camera_id,
            scene=event.scene,
            at=utc(event.raised_at),
            centre=centre,
            aspect=width / max(height, 1),
            video_job_id=video.job if video is not None else None,
            target=event.target,
            event_key=event.key,
        )
        policy = self.policy.for_scene(event.scene)
        with self.db.session() as s:
            existing = s.scalar(
                select(Alarm).where(Alarm.event_key == event_key, Alarm.status.in_(OPEN_STATUSES)).limit(1)
            )
            if existing is not None:  # the same event again (its scene re-armed) while its alarm is open
                merge(s, existing, arrival, "same_target", now)
                return None
            verdict = judge(s, policy, arrival)
            if verdict.action == "merge" and verdict.into is not None and verdict.reason is not None:
                merge(s, verdict.into, arrival, verdict.reason, now)
                log.debug("alarm %s: %s merged (%s)", verdict.into.id, event.key, verdict.reason)
                return None
            # Files (atomic, content-addressed) before the commit: a crash leaves only an orphan file.
            files = [
                EvidenceFile(kind, *self.store.put(data, "jpg")[:2], len(data))
                for kind, data in (("snapshot_raw", raw_jpeg), ("snapshot", annotated_jpeg))
            ]
            details: dict[str, Any] = {
                **event.details,
                **({"target": event.target} if event.target is not None else {}),
                **({"centre": [round(v, 4) for v in centre]} if centre is not None else {}),
                "boxes": [
                    {"label": d.label, "score": round(d.score, 4), "box": [round(v, 1) for v in d.box]}
                    for d in event.detections
                ],
            }
            message = event.message
            if verdict.flood:
                details["flood"] = {"alarms": verdict.recent, "minutes": policy.flood_minutes}
                message = (
                    f"alarm flood: {verdict.recent} {event.scene} alarms in {policy.flood_minutes:g} min; "
                    f"further ones are merged into this alarm ({event.message})"
                )
                details = with_merged_key(details, event.key)  # its scene holds the event's own key
                flood_key = f"{event.camera_id}/{event.scene}/{FLOOD_KEY}"
                event_key = flood_key if video is None else f"video:{video.job}/{flood_key}"
            new = NewAlarm(
                scene=event.scene,
                event_key=event_key,
                message=message,
                actor="analyzer",
                occurred_at=utc(event.occurred_at),
                raised_at=utc(event.raised_at),
                camera_id=event.camera_id,
                camera_scene_id=ctx.camera_scene_id,
                region=event.region,
                priority=ctx.priority,
                score=event.score,
                details=details,
                tags={**ctx.tags, **({"scene_tag": ctx.scene_tag} if ctx.scene_tag else {})},
                video_ts=round(event.occurred_at - video.start, 3) if video is not None else None,
                changes={"score": event.score},
                evidence=files,
                retain_until=now + self.retention,
                uplink=video is None,  # offline analysis and replay are not pushed upstream
                video_job_id=video.job if video is not None else None,
                kind="flood" if verdict.flood else "event",
            )
            alarm = write_alarm(s, self.outbox, new, now)
        self.outbox.notify()
        log.info("alarm %s raised: %s on %s (%s)", alarm.id, event.scene, event.camera_id, message)
        return alarm.id
