"""The alarm's human lifecycle: confirm, reject, dispose, clear (销警), update, close.

raised ─┬─ confirm ─> confirmed ── dispose ─> disposed ─┐
        ├─ reject (reason) ─> rejected ───────────────────┼─ close ─> closed
        └─ clear (time, picture) ─> cleared ──────────────┘

A cleared alarm can still be confirmed or rejected and disposed (the violation may stop before a
person looks); closing needs a verdict, and a true alarm needs a disposal record. Every change is a
revision (who, when, what) and is routed to the uplink targets in the same transaction. A request
that carries an idempotency key already applied, or asks for the state the alarm is already in,
changes nothing and answers with the alarm as it is.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from sqlalchemy.orm import Session

from gateway.alarms.recorder import OPEN_STATUSES
from gateway.alarms.repeats import FLOOD_KEY
from gateway.db import Database
from gateway.db.files import EvidenceStore
from gateway.db.schema import Alarm, AlarmRevision, Disposal, Evidence, utcnow
from gateway.delivery.outbox import Outbox

log = logging.getLogger(__name__)

MAX_PHOTO_BYTES = 1 << 20  # per photo, decoded
MAX_PHOTOS = 4


class AlarmNotFound(LookupError):
    def __init__(self, message: str, key: str | None = None, **params: object) -> None:
        super().__init__(message)
        self.key, self.params = key, params  # the message in gateway.i18n's tables (the API words it)


class TransitionRefused(ValueError):
    """The alarm's state does not allow this action (HTTP 409); the message says what would."""

    def __init__(self, message: str, key: str | None = None, **params: object) -> None:
        super().__init__(message)
        self.key, self.params = key, params  # the message in gateway.i18n's tables (the API words it)


class BadEvidence(ValueError):
    """A photo or picture that is not a JPEG/PNG image or is too large (HTTP 413/422)."""

    def __init__(self, message: str, too_large: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large


@dataclass(frozen=True)
class Picture:
    data: bytes
    media_type: str  # image/jpeg | image/png


def decode_picture(b64: str, what: str) -> Picture:
    """Base64 JPEG/PNG from a request, checked to be a real image no larger than MAX_PHOTO_BYTES."""
    if len(b64) > MAX_PHOTO_BYTES * 4 // 3 + 8:
        raise BadEvidence(f"{what} is larger than {MAX_PHOTO_BYTES // 1024} KiB; send a smaller JPEG", True)
    try:
        data = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadEvidence(f"{what} is not valid base64 ({exc})") from exc
    if data.startswith(b"\xff\xd8\xff"):
        media_type = "image/jpeg"
    elif data.startswith(b"\x89PNG\r\n\x1a\n"):
        media_type = "image/png"
    else:
        raise BadEvidence(f"{what} must be a JPEG or PNG image")
    if cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) is None:
        raise BadEvidence(f"{what} is a damaged image that cannot be decoded")
    return Picture(data, media_type)


@dataclass
class Change:
    """One requested lifecycle action with its inputs."""

    action: str  # confirm | reject | dispose | clear | update | close
    actor: str
    note: str | None = None
    request_key: str | None = None
    reason: str | None = None  # reject
    handler: str | None = None  # dispose
    handled_at: dt.datetime | None = None
    result: str | None = None
    measures: str | None = None
    photos: list[Picture] = field(default_factory=list)
    picture: Picture | None = None  # clear: the picture at clear, when the caller has one
    cleared_at: dt.datetime | None = None
    priority: int | None = None  # update


class AlarmLifecycle:
    def __init__(
        self,
        db: Database,
        store: EvidenceStore,
        outbox: Outbox,
        retention_days: int,
        snapshot: Callable[[str], np.ndarray | None] | None = None,
        rearm: Callable[[str, str, str], None] | None = None,
    ) -> None:
        self.db = db
        self.store = store
        self.outbox = outbox
        self.retention = dt.timedelta(days=retention_days)
        self.snapshot = snapshot  # the camera's latest frame, for the picture at clear
        self.rearm = rearm  # (camera id, scene, hold key): the rule may fire again

    def apply(self, alarm_id: str, change: Change) -> tuple[Alarm, bool]:
        """Apply one change; returns the alarm and whether a new revision was written."""
        files = self._store_files(alarm_id, change)
        with self.db.session() as s:
            alarm = s.get(Alarm, alarm_id, with_for_update=True)
            if alarm is None:
                raise AlarmNotFound(f"no alarm {alarm_id}", "api.no_alarm", alarm=alarm_id)
            key = change.request_key
            applied = [r for r in alarm.revisions if key and (r.changes or {}).get("request_key") == key]
            if applied:
                if applied[0].action != _PAST[change.action]:
                    raise TransitionRefused(
                        f"Idempotency-Key {key!r} was already used: this alarm was {applied[0].action} with "
                        f"it; send a new key to {change.action} it"
                    )
                return alarm, False
            old_status = alarm.status
            changes = self._transition(s, alarm, change, files)
            if changes is None:
                return alarm, False
            now = utcnow()
            alarm.revision += 1
            if change.request_key:
                changes["request_key"] = change.request_key
            s.add(
                AlarmRevision(
                    alarm_id=alarm.id,
                    revision=alarm.revision,
                    action=_PAST[change.action],
                    actor=change.actor,
                    at=now,
                    changes=changes,
                    note=change.note,
                )
            )
            self.outbox.enqueue(s, alarm, _PAST[change.action])
            rearm = old_status in OPEN_STATUSES and alarm.status not in OPEN_STATUSES
            camera_id, scene = alarm.camera_id, alarm.scene
            # The events merged into it (repeats.py) hold their own keys in their scene: re-arm them too.
            event_keys = [alarm.event_key, *(alarm.details or {}).get("merged_keys", [])]
        self.outbox.notify()
        log.info("alarm %s %s by %s", alarm_id, _PAST[change.action], change.actor)
        if rearm and self.rearm is not None and camera_id:
            prefix = f"{camera_id}/{scene}/"
            for key in event_keys:
                if isinstance(key, str) and key.startswith(prefix) and key != f"{prefix}{FLOOD_KEY}":
                    self.rearm(camera_id, scene, key.removeprefix(prefix))
        return alarm, True

    def _store_files(self, alarm_id: str, change: Change) -> list[tuple[str, Picture, str, str]]:
        """Write pictures before the transaction (content-addressed: a crash leaves only an orphan)."""
        pictures = [("photo", p) for p in change.photos]
        if change.action == "clear":
            picture = change.picture or self._camera_picture(alarm_id)
            if picture is not None:
                pictures.append(("clear_snapshot", picture))
        out = []
        for kind, pic in pictures:
            digest, rel, _ = self.store.put(pic.data, "png" if pic.media_type == "image/png" else "jpg")
            out.append((kind, pic, digest, rel))
        return out

    def _camera_picture(self, alarm_id: str) -> Picture | None:
        if self.snapshot is None:
            return None
        with self.db.session() as s:
            alarm = s.get(Alarm, alarm_id)
            camera_id = alarm.camera_id if alarm else None
        image = self.snapshot(camera_id) if camera_id else None
        if image is None:
            return None
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        return Picture(bytes(buf.tobytes()), "image/jpeg") if ok else None

    def _transition(
        self, s: Session, alarm: Alarm, change: Change, files: list[tuple[str, Picture, str, str]]
    ) -> dict[str, Any] | None:
        """Check and apply the state change; None when it is already in effect (a no-op)."""
        now = utcnow()
        status, action = alarm.status, change.action
        if status == "closed" and action != "close":
            raise TransitionRefused(
                f"alarm {alarm.id} is closed; nothing can change it any more", "alarm.closed", alarm=alarm.id
            )
        changes: dict[str, Any] = {}
        if action == "confirm":
            if alarm.verdict == "true_positive":
                return None
            if alarm.verdict == "false_positive":
                raise TransitionRefused(
                    f"alarm {alarm.id} was rejected as a false positive; it cannot be confirmed",
                    "alarm.rejected_no_confirm",
                    alarm=alarm.id,
                )
            alarm.verdict, alarm.confirmed_at = "true_positive", now
            changes["verdict"] = [None, "true_positive"]
            if status == "raised":
                alarm.status = "confirmed"
        elif action == "reject":
            if alarm.verdict == "false_positive":
                return None
            if alarm.verdict == "true_positive" or status not in ("raised", "cleared"):
                raise TransitionRefused(
                    f"alarm {alarm.id} is {status} (confirmed true); only a raised or cleared alarm "
                    "without a verdict can be rejected"
                )
            if not change.reason:
                raise TransitionRefused(
                    "a rejection needs a reason (why it is a false positive)", "alarm.reject_needs_reason"
                )
            alarm.verdict, alarm.verdict_reason, alarm.confirmed_at = "false_positive", change.reason, now
            alarm.status = "rejected"
            changes["verdict"] = [None, "false_positive"]
            changes["reason"] = change.reason
        elif action == "dispose":
            if alarm.verdict != "true_positive":
                raise TransitionRefused(
                    f"confirm alarm {alarm.id} before recording its disposal",
                    "alarm.confirm_first",
                    alarm=alarm.id,
                )
            if status == "rejected":
                raise TransitionRefused(
                    f"alarm {alarm.id} was rejected; a false positive is not disposed",
                    "alarm.rejected_no_disposal",
                    alarm=alarm.id,
                )
            if not change.handler or not change.result:
                raise TransitionRefused("a disposal needs a handler and a result", "alarm.disposal_fields")
            photos = [digest for kind, _, digest, _ in files if kind == "photo"]
            s.add(
                Disposal(
                    alarm_id=alarm.id,
                    handler=change.handler,
                    handled_at=change.handled_at or now,
                    result=change.result,
                    measures=change.measures,
                    photos=photos,
                )
            )
            if status in ("confirmed", "disposed"):
                alarm.status = "disposed"
            changes["disposal"] = {"handler": change.handler, "result": change.result, "photos": len(photos)}
        elif action == "clear":
            if status == "cleared":
                return None
            if status not in OPEN_STATUSES:
                raise TransitionRefused(f"alarm {alarm.id} is {status}; only an open alarm can be cleared")
            alarm.status, alarm.cleared_at = "cleared", change.cleared_at or now
            changes["cleared_at"] = alarm.cleared_at.isoformat()
        elif action == "update":
            if change.priority is None or change.priority == alarm.priority:
                if not change.note:
                    return None
            else:
                changes["priority"] = [alarm.priority, change.priority]
                alarm.priority = change.priority
        elif action == "close":
            if status == "closed":
                return None
            if status not in ("cleared", "rejected"):
                raise TransitionRefused(f"alarm {alarm.id} is {status}; clear it (销警) before closing it")
            if alarm.verdict is None:
                raise TransitionRefused(f"confirm or reject alarm {alarm.id} before closing it")
            has_disposal = s.query(Disposal.id).filter(Disposal.alarm_id == alarm.id).first() is not None
            if alarm.verdict == "true_positive" and not has_disposal:
                raise TransitionRefused(f"record the disposal of alarm {alarm.id} before closing it")
            alarm.status, alarm.closed_at = "closed", now
        else:
            raise TransitionRefused(f"unknown action {action!r}")
        if alarm.status != status:
            changes["status"] = [status, alarm.status]
        for kind, pic, digest, rel in files:
            s.add(
                Evidence(
                    alarm_id=alarm.id,
                    kind=kind,
                    sha256=digest,
                    path=rel,
                    media_type=pic.media_type,
                    size=len(pic.data),
                    created_at=now,
                    retain_until=now + self.retention,
                )
            )
        return changes


_PAST = {
    "confirm": "confirmed",
    "reject": "rejected",
    "dispose": "disposed",
    "clear": "cleared",
    "update": "updated",
    "close": "closed",
}
