"""The control node's side of the event path: events from analysis nodes become alarms through the one
recorder (the same repeat rules as local cameras), each delivery key once.

The ledger of delivery keys lives beside the evidence (one small file per key, written atomically):
a key is marked ``recording`` before the recorder runs and ``done`` with the alarm id after, so a
replay is answered "duplicate" with the alarm it made. Should the control node die between the two,
the alarm is looked up by camera, scene and raise time before anything is written again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from sqlalchemy import select

from gateway.alarms.clips import ClipRecorder
from gateway.alarms.recorder import AlarmRecorder, utc
from gateway.cluster.events import Envelope
from gateway.db.schema import Alarm

log = logging.getLogger(__name__)

LEDGER_DAYS = 30  # a spool never holds an event longer than this


class DeliveryLedger:
    """Delivery keys seen by this control node: ``folder/<hash[:2]>/<hash>.json``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        digest = hashlib.sha256(key.encode()).hexdigest()
        return self.folder / digest[:2] / f"{digest}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            data = json.loads(self._path(key).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return data if isinstance(data, dict) else None

    def put(self, key: str, entry: dict[str, Any]) -> None:
        path = self._path(key)
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump({"key": key, "at": time.time(), **entry}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)

    def prune(self, max_age_s: float = LEDGER_DAYS * 86400.0) -> int:
        """Forget keys older than ``max_age_s``; returns how many."""
        cutoff, gone = time.time() - max_age_s, 0
        for path in self.folder.glob("*/*.json"):
            if path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                gone += 1
        return gone


class EventIngest:
    """Records envelopes from analysis nodes; one at a time (the ledger check and the write belong
    together)."""

    def __init__(self, recorder: AlarmRecorder, clips: ClipRecorder, ledger: DeliveryLedger) -> None:
        self.recorder = recorder
        self.clips = clips
        self.ledger = ledger
        self._lock = threading.Lock()
        self.received = 0

    def accept(self, envelope: Envelope) -> dict[str, Any]:
        """Record one envelope; the answer says what became of it:
        ``alarm`` (a new alarm), ``joined`` (an alarm already raised took it: repeat rules),
        ``duplicate`` (this key was recorded before), ``clip`` (stored with its alarm) or
        ``no_alarm`` (a clip of an event that made no alarm of its own). Bad content: ValueError."""
        with self._lock:
            self.received += 1
            if envelope.kind == "alarm":
                return self._alarm(envelope)
            return self._clip(envelope)

    def _alarm(self, envelope: Envelope) -> dict[str, Any]:
        key = envelope.key
        event = envelope.alarm_event()
        entry = self.ledger.get(key)
        if entry is not None and entry.get("state") == "done":
            return {"outcome": "duplicate", "alarm_id": entry.get("alarm_id")}
        if entry is not None:  # died while recording it: did the alarm get written?
            found = self._find(event.camera_id, event.scene, event.raised_at)
            if found is not None:
                self.ledger.put(key, {"state": "done", "alarm_id": found})
                return {"outcome": "duplicate", "alarm_id": found}
        image = cv2.imdecode(np.frombuffer(envelope.jpeg_bytes(), np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError("the event's picture is not a JPEG image")
        self.ledger.put(key, {"state": "recording"})
        alarm_id = self.recorder.record(event, image, envelope.scene_context())
        self.ledger.put(key, {"state": "done", "alarm_id": alarm_id})
        return {"outcome": "alarm" if alarm_id is not None else "joined", "alarm_id": alarm_id}

    def _clip(self, envelope: Envelope) -> dict[str, Any]:
        alarm = self.ledger.get(envelope.key)
        alarm_id = alarm.get("alarm_id") if alarm is not None else None
        if not alarm_id:
            return {"outcome": "no_alarm", "alarm_id": None}
        clip_key = f"clip:{envelope.key}"
        if self.ledger.get(clip_key) is not None:
            return {"outcome": "duplicate", "alarm_id": alarm_id}
        self.clips.store_clip(alarm_id, envelope.clip_bytes())
        self.ledger.put(clip_key, {"state": "done", "alarm_id": alarm_id})
        return {"outcome": "clip", "alarm_id": alarm_id}

    def _find(self, camera_id: str, scene: str, raised_at: float) -> str | None:
        at = utc(raised_at)
        slack = dt.timedelta(milliseconds=1)
        with self.recorder.db.session() as s:
            rows = s.execute(
                select(Alarm.id, Alarm.raised_at).where(
                    Alarm.camera_id == camera_id,
                    Alarm.scene == scene,
                    Alarm.raised_at >= at - slack,
                    Alarm.raised_at <= at + slack,
                )
            ).all()
        return str(rows[0][0]) if rows else None
