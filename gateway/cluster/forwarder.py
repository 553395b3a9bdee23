"""The analysis node's side of the event path: the camera runner's alarm sink writes each event to the
camera's spool, a sender thread posts the spool's entries in order to the control node's ingest
endpoint and removes each one only once it was answered, and alarm clips are cut on the node (from the
camera's packet buffer) and spooled behind their alarm.

While the control node is unreachable the spool grows (bounded, on disk) and the sender retries with
a growing pause; when it comes back everything is replayed in order. The control node recognises each
delivery key, so an entry sent twice (answer lost, node restarted) is recorded once.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import numpy as np

from adapters.rtsp.clip_buffer import ClipError, write_mp4
from analyzers import AlarmEvent
from gateway.alarms.clips import ClipRecorder
from gateway.alarms.recorder import SceneContext, jpeg
from gateway.cluster.events import alarm_envelope, clip_envelope, delivery_key
from gateway.cluster.spool import EventSpool

log = logging.getLogger(__name__)

INGEST_PATH = "/api/cluster/events"
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 5.0


class EventForwarder:
    """The alarm sink of a camera runner on an analysis node (what ``AlarmRecorder`` is locally):
    ``record`` spools the event and returns its delivery key, which the clip request then names."""

    def __init__(self, spool: EventSpool, node: str, clip_scenes: frozenset[str]) -> None:
        self.spool = spool
        self.node = node
        self.clip_scenes = clip_scenes
        self.keys: list[str] = []  # delivery keys spooled by this process, in order (tests count them)

    def wants_clip(self, scene: str) -> bool:
        return scene in self.clip_scenes

    def open_event_keys(self) -> set[str]:
        return set()  # the control node sends them with the camera

    def record(self, event: AlarmEvent, image: np.ndarray, ctx: SceneContext) -> str | None:
        envelope = alarm_envelope(event, ctx, jpeg(image), self.node)
        self.spool.append(envelope.model_dump_json(exclude_none=True).encode())
        key = delivery_key(event)
        self.keys.append(key)
        return key


class SpoolingClips(ClipRecorder):
    """Alarm clips on an analysis node: queued like the control node's (the post-event seconds must
    arrive first), then cut and muxed here and spooled as a ``clip`` envelope behind the alarm."""

    def __init__(self, spool: EventSpool, node: str, pre_s: float, post_s: float) -> None:
        # The database and evidence store of the base class are the control node's: never used here.
        super().__init__(cast(Any, None), cast(Any, None), 1, pre_s=pre_s, post_s=post_s)
        self.spool = spool
        self.node = node

    def _write(self, job: Any) -> None:
        try:
            params, packets = job.buffer.clip(job.start_wall, job.end_wall)
            if params is None:
                raise ClipError("the camera stream never opened")
            with tempfile.TemporaryDirectory(prefix="vigil-clip-") as tmp:
                path = Path(tmp) / "clip.mp4"
                write_mp4(packets, params, path)
                data = path.read_bytes()
            envelope = clip_envelope(job.alarm_id, job.camera_id, data, self.node)
            self.spool.append(envelope.model_dump_json(exclude_none=True).encode())
        except Exception as exc:  # the alarm stands without its clip
            with self._cond:
                self.stats.failed += 1
                self.stats.last_error = f"alarm {job.alarm_id}: {exc}"
            log.warning("clip of %s on camera %s failed: %s", job.alarm_id, job.camera_id, exc)
            return
        with self._cond:
            self.stats.written += 1


@dataclass
class SenderStats:
    delivered: int = 0
    alarms: int = 0  # answered with a new alarm
    joined: int = 0  # answered "joined an alarm already raised" (repeat rules)
    duplicates: int = 0  # answered "already recorded" (a replay)
    rejected: int = 0  # refused as malformed (422): set aside, never retried
    failures: int = 0  # attempts that did not reach or were not accepted by the control node
    last_error: str | None = None
    connected: bool = False


class EventSender:
    """Posts a spool's entries in order to the control node's ingest endpoint, one at a time."""

    def __init__(
        self,
        spool: EventSpool,
        base_url: str,
        token: str,
        timeout_s: float = 10.0,
    ) -> None:
        self.spool = spool
        self.url = base_url.rstrip("/") + INGEST_PATH
        self.token = token
        self.timeout_s = timeout_s
        self.stats = SenderStats()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="event-sender", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self.spool.wake()
        self._thread.join(timeout)

    def _run(self) -> None:
        pause = RETRY_FIRST_S
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        with httpx.Client(timeout=self.timeout_s) as client:
            while not self._stop.is_set():
                entry = self.spool.peek(timeout=1.0)
                if entry is None:
                    continue
                seq, body = entry
                try:
                    response = client.post(self.url, content=body, headers=headers)
                except httpx.HTTPError as exc:
                    self._failed(f"control node unreachable: {exc}")
                    self._stop.wait(pause)
                    pause = min(RETRY_MAX_S, pause * 2)
                    continue
                if response.status_code == 422:  # malformed: retrying cannot help
                    self._set_aside(seq, body, response.text)
                    continue
                if response.status_code != 200:  # 401/403 (token), 5xx: keep it and retry
                    self._failed(f"control node answered {response.status_code}: {response.text[:200]}")
                    self._stop.wait(pause)
                    pause = min(RETRY_MAX_S, pause * 2)
                    continue
                pause = RETRY_FIRST_S
                answer = response.json()
                self.spool.ack(seq)
                self._count(answer)

    def _count(self, answer: dict[str, Any]) -> None:
        s = self.stats
        s.delivered += 1
        s.connected, s.last_error = True, None
        outcome = answer.get("outcome")
        if outcome == "alarm":
            s.alarms += 1
        elif outcome == "duplicate":
            s.duplicates += 1
        elif outcome == "joined":
            s.joined += 1

    def _failed(self, why: str) -> None:
        if self.stats.last_error is None or self.stats.connected:
            log.warning("event delivery to %s: %s (spooled, retrying)", self.url, why)
        self.stats.failures += 1
        self.stats.connected = False
        self.stats.last_error = why

    def _set_aside(self, seq: int, body: bytes, why: str) -> None:
        rejected = self.spool.folder / "rejected"
        rejected.mkdir(exist_ok=True)
        (rejected / f"{seq:016d}-{int(time.time())}.json").write_bytes(body)
        self.spool.ack(seq)
        self.stats.rejected += 1
        log.error("event %d refused by the control node (kept in %s): %s", seq, rejected, why[:300])
