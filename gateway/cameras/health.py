"""Video diagnosis (视频诊断) as alarms: each running camera's ``VideoDiagnosis`` (analyzers.health) is
ticked once a second on one thread; an episode that starts raises one alarm through the alarm writer
(snapshot, "raised" revision, outbox), and its end clears that alarm through the alarm lifecycle (a
"cleared" revision by ``gateway:diagnosis``, pushed like any change).

Event keys are ``<camera>/<code>/diagnosis``: a gateway restarted during an episode adopts the alarm
still open instead of raising a second one. The reference picture of a camera (what its regions were
drawn on) is kept at ``<storage>/references/<camera>.jpg``; the first good picture becomes it when
there is none, and ``set_reference`` replaces it.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from sqlalchemy import select

from analyzers.health import CODES, OFFLINE, HealthChange, Reference, VideoDiagnosis
from gateway.alarms.lifecycle import AlarmLifecycle, Change, TransitionRefused
from gateway.alarms.recorder import OPEN_STATUSES, jpeg
from gateway.alarms.writer import EvidenceFile, NewAlarm, write_alarm
from gateway.config.schema import CameraConfig
from gateway.db import Database
from gateway.db.files import EvidenceStore
from gateway.db.schema import Alarm, utcnow
from gateway.delivery.outbox import Outbox

log = logging.getLogger(__name__)

ACTOR = "gateway:diagnosis"
PRIORITY = {OFFLINE: 3}  # others: 2


def event_key(camera_id: str, code: str) -> str:
    return f"{camera_id}/{code}/diagnosis"


@dataclass
class _Watched:
    camera: CameraConfig
    diagnosis: VideoDiagnosis
    open: dict[str, str]  # code -> id of its open alarm


class CameraHealth:
    """The video diagnosis of every running camera, raising and clearing its alarms."""

    def __init__(
        self,
        db: Database,
        store: EvidenceStore,
        outbox: Outbox,
        lifecycle: AlarmLifecycle,
        storage_root: Path,
        retention_days: int,
        tick_s: float = 1.0,
    ) -> None:
        self.db = db
        self.store = store
        self.outbox = outbox
        self.lifecycle = lifecycle
        self.references = storage_root / "references"
        self.retention = dt.timedelta(days=retention_days)
        self.tick_s = tick_s
        self._watched: dict[str, _Watched] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- cameras ---------------------------------------------------------------------------------------

    def attach(self, camera: CameraConfig) -> VideoDiagnosis | None:
        """Start diagnosing a camera (None when its diagnosis is off); adopts its open alarms."""
        if not camera.diagnosis.enabled:
            self.detach(camera.id)
            return None
        diagnosis = VideoDiagnosis(camera.id, camera.diagnosis, self._load_reference(camera.id))
        opened: dict[str, str] = {}
        with self.db.session() as s:
            for code in CODES:
                alarm_id = s.scalar(
                    select(Alarm.id)
                    .where(Alarm.event_key == event_key(camera.id, code), Alarm.status.in_(OPEN_STATUSES))
                    .limit(1)
                )
                if alarm_id is not None:
                    opened[code] = alarm_id
                    diagnosis.adopt(code)
        with self._lock:
            self._watched[camera.id] = _Watched(camera, diagnosis, opened)
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="camera-health", daemon=True)
                self._thread.start()
        return diagnosis

    def detach(self, camera_id: str) -> None:
        """Stop diagnosing a camera (stopped or removed); its open alarms stay open."""
        with self._lock:
            self._watched.pop(camera_id, None)

    def faults(self, camera_id: str) -> list[str] | None:
        """The diagnosis codes raised now on a camera; None when it is not diagnosed."""
        watched = self._watched.get(camera_id)
        return watched.diagnosis.active() if watched is not None else None

    def diagnosis(self, camera_id: str) -> VideoDiagnosis | None:
        watched = self._watched.get(camera_id)
        return watched.diagnosis if watched is not None else None

    def set_reference(self, camera_id: str, image: np.ndarray) -> None:
        """The picture the camera's regions are drawn on from now on."""
        self._save_reference(camera_id, image)
        watched = self._watched.get(camera_id)
        if watched is not None:
            watched.diagnosis.reference = Reference.of(image)

    # -- the thread ------------------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(self.tick_s):
            try:
                self.tick(time.time())
            except Exception:  # one bad write (a full disk) must not end the diagnosis
                log.exception("video diagnosis tick failed")

    def tick(self, now: float) -> None:
        """Judge every camera once; raise and clear what changed."""
        with self._lock:
            watched = list(self._watched.values())
        for w in watched:
            for change in w.diagnosis.tick(now):
                if change.kind == "raise":
                    self._raise(w, change)
                else:
                    self._clear(w, change)
            if w.diagnosis.new_reference is not None:
                image, w.diagnosis.new_reference = w.diagnosis.new_reference, None
                self._save_reference(w.camera.id, image)

    def _raise(self, w: _Watched, change: HealthChange) -> None:
        camera, code = w.camera, change.code
        key = event_key(camera.id, code)
        evidence = []
        image = w.diagnosis.latest
        if image is not None:
            for kind, data in (
                ("snapshot", jpeg(_stamp(image, change.message))),
                ("snapshot_raw", jpeg(image)),
            ):
                digest, rel, _ = self.store.put(data, "jpg")
                evidence.append(EvidenceFile(kind, digest, rel, len(data)))
        now = utcnow()
        at = dt.datetime.fromtimestamp(change.at, dt.UTC)
        with self.db.session() as s:
            existing = s.scalar(
                select(Alarm.id).where(Alarm.event_key == key, Alarm.status.in_(OPEN_STATUSES)).limit(1)
            )
            if existing is not None:
                w.open[code] = existing
                return
            new = NewAlarm(
                scene=code,
                event_key=key,
                message=f"{camera.name}: {change.message}",
                actor=ACTOR,
                occurred_at=at,
                raised_at=at,
                camera_id=camera.id,
                priority=PRIORITY.get(code, 2),
                details={"diagnosis": {k: round(v, 4) for k, v in change.details.items()}},
                evidence=evidence,
                retain_until=now + self.retention,
            )
            alarm_id = write_alarm(s, self.outbox, new, now).id
        self.outbox.notify()
        w.open[code] = alarm_id
        log.warning("camera %s: %s (alarm %s)", camera.id, change.message, alarm_id)

    def _clear(self, w: _Watched, change: HealthChange) -> None:
        alarm_id = w.open.pop(change.code, None)
        if alarm_id is None:
            return
        note = f"recovered: {change.code} ended"
        try:
            self.lifecycle.apply(alarm_id, Change("clear", ACTOR, note=note))
        except TransitionRefused as exc:  # a person closed or rejected it meanwhile
            log.info("camera %s: %s not cleared (%s)", w.camera.id, alarm_id, exc)
        else:
            log.info("camera %s: %s recovered, alarm %s cleared", w.camera.id, change.code, alarm_id)

    # -- reference pictures ----------------------------------------------------------------------------

    def _reference_path(self, camera_id: str) -> Path:
        return self.references / f"{camera_id}.jpg"

    def _load_reference(self, camera_id: str) -> Reference | None:
        path = self._reference_path(camera_id)
        if not path.is_file():
            return None
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            log.warning("camera %s: reference picture %s is damaged; taking a new one", camera_id, path)
            return None
        return Reference.of(image)

    def _save_reference(self, camera_id: str, image: np.ndarray) -> None:
        self.references.mkdir(parents=True, exist_ok=True)
        path = self._reference_path(camera_id)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(jpeg(image))
        tmp.replace(path)

    def state(self, camera_id: str) -> dict[str, Any] | None:
        """What the camera list shows: the faults raised now and the last measure."""
        d = self.diagnosis(camera_id)
        if d is None:
            return None
        m = d.last
        return {
            "faults": d.active(),
            "reference": d.reference is not None,
            "measure": None
            if m is None
            else {
                "brightness": round(m.brightness, 1),
                "sharpness": round(m.sharpness, 4),
                "flat": round(m.flat, 3),
                "similarity": None if m.similarity is None else round(m.similarity, 3),
            },
        }


def _stamp(image: np.ndarray, text: str) -> np.ndarray:
    out = image.copy()
    height = out.shape[0]
    cv2.putText(out, text[:90], (8, height - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 255), 1, cv2.LINE_AA)
    return out
