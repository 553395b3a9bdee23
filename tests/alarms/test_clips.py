"""Alarm clips: the rolling packet buffer (synthetic packets), clips remuxed from the real sample RTSP camera
without re-encoding, and ClipRecorder end to end from a CameraRunner's alarm to an Evidence row."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from sqlalchemy import select

from adapters import Frame, RtspSource
from adapters.rtsp.clip_buffer import ClipBuffer, ClipError, ClipPacket, ClipParams, _timestamps, write_mp4
from adapters.rtsp.sample_camera import SampleRtspServer
from analyzers.records import AlarmEvent
from gateway.alarms.clips import ClipRecorder
from gateway.alarms.recorder import SceneContext
from gateway.cameras.analytics import CameraRunner, ModelHandle, Pending, SceneRun
from gateway.config.schema import CameraConfig
from gateway.db import Database, upgrade
from gateway.db.files import EvidenceStore
from gateway.db.schema import Alarm, Camera, Evidence


def wait_until(check: Callable[[], object], within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within_s} s waiting for {what}")
        time.sleep(0.05)


def pkt(i: int, key: bool, size: int = 100, fps: int = 10) -> ClipPacket:
    """Packet i of a synthetic 10 fps stream in a 90 kHz time base, wall time = i / fps."""
    return ClipPacket(bytes(size), i * 9000, i * 9000, key, i / fps, 9000)


def feed(buf: ClipBuffer, count: int, gop: int, size: int = 100, first: int = 0) -> None:
    for i in range(first, first + count):
        buf.add(pkt(i, i % gop == 0, size))


# --- the buffer -------------------------------------------------------------------------------------------


def test_buffer_starts_at_a_keyframe_and_keeps_at_most_max_seconds() -> None:
    buf = ClipBuffer(max_seconds=2.0)
    buf.add(pkt(0, False))  # joined mid-GOP: undecodable, not kept
    assert buf.packets() == []
    feed(buf, 50, gop=10, first=1)  # keyframes at 10, 20, 30, 40
    packets = buf.packets()
    assert packets[0].keyframe and packets[0].wall == 3.0  # whole GOPs trimmed from the front
    assert packets[-1].wall == 5.0
    assert buf.span_s <= 2.0
    assert buf.size_bytes == 100 * len(packets)


def test_buffer_is_bounded_by_bytes() -> None:
    buf = ClipBuffer(max_seconds=60.0, max_bytes=5500)
    for n in range(1, 40):
        buf.add(pkt(n, n % 3 == 0, size=1000))
        assert buf.size_bytes <= 5500
        assert not buf.packets() or buf.packets()[0].keyframe


def test_a_gop_larger_than_max_bytes_is_dropped_until_the_next_keyframe() -> None:
    buf = ClipBuffer(max_seconds=60.0, max_bytes=2500)
    for n in range(6):  # one keyframe, then a GOP that never ends
        buf.add(pkt(n, n == 0, size=1000))
    assert buf.size_bytes == 0 and buf.packets() == []
    buf.add(pkt(6, True, size=1000))
    assert [p.wall for p in buf.packets()] == [0.6]


def test_window_starts_at_the_last_keyframe_at_or_before_start() -> None:
    buf = ClipBuffer(max_seconds=60.0)
    feed(buf, 60, gop=10)  # keyframes at 0.0, 1.0, ... 5.0 s
    window = buf.window(2.5, 4.25)
    assert window[0].wall == 2.0 and window[0].keyframe
    assert window[-1].wall == 4.2
    assert buf.window(3.0, 3.05)[0].wall == 3.0  # a keyframe exactly at start
    assert buf.window(-10.0, 0.3)[0].wall == 0.0  # before the buffer: from its oldest packet
    assert buf.window(5.5, 200.0)[0].wall == 5.0  # after the newest keyframe: from that keyframe
    assert buf.window(100.0, 200.0) == []  # after the newest packet: no video of that time
    buf.reset()
    assert buf.window(0.0, 100.0) == [] and buf.params is None


def test_timestamps_are_rebased_filled_and_increasing() -> None:
    tb = Fraction(1, 90000)
    packets = [
        ClipPacket(b"k", None, None, True, 0.0),  # RTSP: the first packet often has no timestamp
        ClipPacket(b"p", 18000, 18000, False, 0.1),
        ClipPacket(b"p", 27000, 27000, False, 0.2),
        ClipPacket(b"p", 900, 900, False, 0.3),  # the camera's clock jumped back
        ClipPacket(b"p", None, 9900, False, 0.4),
    ]
    stamps = _timestamps(packets, tb)
    dts = [d for _, d, _ in stamps]
    assert dts == [0, 9000, 18000, 27000, 36000]
    assert all(pts >= d for pts, d, _ in stamps)
    assert all(dur == 9000 for *_, dur in stamps)


def test_write_mp4_refuses_what_it_cannot_write(tmp_path: Path) -> None:
    params = ClipParams("h264", 64, 48, Fraction(1, 90000))  # no template: never saw a stream
    with pytest.raises(ClipError, match="no video"):
        write_mp4([], params, tmp_path / "a.mp4")
    with pytest.raises(ClipError, match="codec parameters"):
        write_mp4([pkt(0, True)], params, tmp_path / "a.mp4")


# --- real clips from the sample RTSP camera ---------------------------------------------------------------


class LiveSource:
    """An RtspSource with a ClipBuffer tap, running in its own thread."""

    def __init__(self, source: RtspSource, buffer: ClipBuffer) -> None:
        self.source, self.buffer = source, buffer
        self.frames: list[Frame] = []
        self.thread = threading.Thread(target=source.run, args=(self.frames.append,), daemon=True)

    def wait_for_video(self, seconds: float) -> None:
        wait_until(lambda: self.buffer.span_s >= seconds, 60, f"{seconds} s of buffered video")


@pytest.fixture(scope="module")
def live(rtsp: Any) -> Iterator[LiveSource]:
    buffer = ClipBuffer(max_seconds=20.0)
    # Keyframes-only decoding: the buffer must still get every packet.
    source = RtspSource("cam", rtsp.url("vtest"), 1.0, decode="keyframes", tap=buffer)
    running = LiveSource(source, buffer)
    running.thread.start()
    try:
        yield running
    finally:
        source.stop()
        running.thread.join(15)


def nal_units(data: bytes, annexb: bool) -> list[bytes]:
    """The NAL units of an access unit: Annex-B (start codes, as RTSP delivers) or MP4 (length-prefixed)."""
    if annexb:
        return [u.rstrip(b"\0") for u in re.split(b"\0\0\1", data) if u.rstrip(b"\0")]
    units, i = [], 0
    while i < len(data):
        n = int.from_bytes(data[i : i + 4], "big")
        units.append(data[i + 4 : i + 4 + n])
        i += 4 + n
    return units


def test_rtsp_clip_is_a_remux_not_a_re_encode(live: LiveSource, tmp_path: Path) -> None:
    live.wait_for_video(5.0)
    assert live.source.health.decode_mode == "keyframes"
    end = live.buffer.newest_wall
    assert end is not None
    params, packets = live.buffer.clip(end - 4.0, end)
    assert params is not None and params.codec == "h264" and params.extradata
    assert packets[0].keyframe
    path = tmp_path / "clip.mp4"
    duration = write_mp4(packets, params, path)
    assert 3.5 <= duration <= 6.0  # four seconds, plus up to a GOP (1 s) back to the keyframe

    with av.open(str(path)) as clip:
        stream = clip.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_tag == "avc1"
        assert (stream.codec_context.width, stream.codec_context.height) == (params.width, params.height)
        assert clip.duration is not None and 3.5 <= clip.duration / 1e6 <= 6.0
        stored = [bytes(p) for p in clip.demux(stream) if p.size]
    with av.open(str(path)) as clip:
        frames = list(clip.decode(video=0))
    assert len(frames) == len(packets) == len(stored)  # every packet is there, and decodes
    assert frames[0].key_frame and frames[0].pts == 0  # rebased to start at 0
    # The very same NAL units, only re-framed from Annex-B start codes to MP4 lengths: no re-encode.
    assert [nal_units(p, False) for p in stored] == [nal_units(p.data, True) for p in packets]
    # The SPS and PPS the camera announced are the ones in the MP4's avcC box.
    with av.open(str(path)) as clip:
        avcc = clip.streams.video[0].codec_context.extradata
    assert avcc is not None and all(unit in avcc for unit in nal_units(params.extradata, True))


def test_h265_clip_is_tagged_hvc1_for_browsers(vtest: Path, tmp_path: Path) -> None:
    buffer = ClipBuffer()
    with SampleRtspServer({"cam": vtest}, codec="h265", max_seconds=3) as server:
        source = RtspSource("cam", server.url("cam"), 1.0, decode="keyframes", tap=buffer)
        running = LiveSource(source, buffer)
        running.thread.start()
        try:
            running.wait_for_video(2.5)
        finally:
            source.stop()
            running.thread.join(15)
    params, packets = buffer.clip(0.0, float("inf"))
    assert params is not None and params.codec == "hevc"
    path = tmp_path / "clip.mp4"
    write_mp4(packets, params, path)
    with av.open(str(path)) as clip:
        stream = clip.streams.video[0]
        assert stream.codec_context.name == "hevc" and stream.codec_tag == "hvc1"
        assert len(list(clip.decode(stream))) == len(packets)


class CountingTap:
    def __init__(self) -> None:
        self.resets = 0
        self.packets = 0

    def reset(self, stream: av.video.stream.VideoStream) -> None:
        self.resets += 1

    def feed(self, packet: av.Packet, wall: float) -> None:
        self.packets += 1


def test_the_tap_is_reset_on_every_reconnect(vtest: Path) -> None:
    """A file ends and is replayed: a reconnect, after which the tap starts over."""
    tap = CountingTap()
    source = RtspSource("file", str(vtest), 1.0, decode="keyframes", tap=tap, max_backoff_s=1.0)
    thread = threading.Thread(target=source.run, args=(lambda frame: None,), daemon=True)
    thread.start()
    try:
        wait_until(lambda: tap.resets >= 2, 60, "a second session")
    finally:
        source.stop()
        thread.join(15)
    assert source.health.reconnects >= 1 and tap.packets > source.health.frames  # all packets, few decoded


# --- ClipRecorder end to end --------------------------------------------------------------------------------


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'vigil.db'}")
    upgrade(database.engine)
    with database.session() as s:
        s.add(Camera(id="walkway", name="Walkway", stream_url="rtsp://127.0.0.1:9/x"))
    return database


def add_alarm(db: Database, alarm_id: str) -> None:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with db.session() as s:
        s.add(
            Alarm(
                id=alarm_id,
                camera_id="walkway",
                scene="intrusion",
                event_key=f"walkway/intrusion/{alarm_id}",
                occurred_at=now,
                raised_at=now,
            )
        )


def clips_of(db: Database) -> list[Evidence]:
    with db.session() as s:
        return list(s.scalars(select(Evidence).where(Evidence.kind == "clip").order_by(Evidence.alarm_id)))


class OneEventScene:
    """Stands in for a scene whose rule fires on the frame it is given."""

    key = "intrusion"

    def update(self, ts: float, detections: Any, width: int, height: int, **_: Any) -> list[AlarmEvent]:
        return [AlarmEvent("walkway", "intrusion", "lawn", ts - 3.0, ts, 0.9, "person in zone")]


class FixedRecorder:
    """Stands in for AlarmRecorder: the alarm row exists already, record() returns its id."""

    def __init__(self, alarm_id: str) -> None:
        self.alarm_id = alarm_id

    def record(self, event: AlarmEvent, image: np.ndarray, ctx: SceneContext) -> str:
        return self.alarm_id

    def wants_clip(self, scene: str) -> bool:  # the scene asks for clips (alarms.scenes.<scene>.clip)
        return True


def test_an_alarm_on_a_camera_gets_a_clip_evidence_row(
    db: Database, tmp_path: Path, rtsp: Any, caplog: pytest.LogCaptureFixture
) -> None:
    store = EvidenceStore(tmp_path / "storage")
    clips = ClipRecorder(db, store, retention_days=183, pre_s=2.0, post_s=1.0)
    camera = CameraConfig(id="walkway", name="Walkway", url=rtsp.url("vtest"))
    add_alarm(db, "A1")
    runner = CameraRunner(camera, [], FixedRecorder("A1"), clips=clips)  # type: ignore[arg-type]
    assert runner.source.tap is runner.clip_buffer is not None
    runner.start()
    try:
        wait_until(lambda: runner.clip_buffer is not None and runner.clip_buffer.span_s >= 4.0, 60, "video")
        # The camera's rules thread judges a frame on which a scene fires: the alarm asks for its clip.
        model = ModelHandle("det", "v1", "cpu", "detector", frozenset({"person"}), None)  # type: ignore[arg-type]
        answer: Future[Any] = Future()
        answer.set_result([])
        run = SceneRun(OneEventScene(), SceneContext(None, {}, None, []), model, None, "running")  # type: ignore[arg-type]
        frame = Frame("walkway", time.time() - 1.0, np.zeros((48, 64, 3), np.uint8), 0.0, True)
        runner._judge(Pending(frame, [run], {"det": answer}, time.perf_counter()))
        assert runner.stats.alarms == 1
        wait_until(lambda: clips.stats.written == 1, 30, "the clip")
    finally:
        runner.stop()
        clips.close()
    assert clips.stats.failed == 0 and clips.pending() == 0

    [row] = clips_of(db)
    assert (row.alarm_id, row.kind, row.media_type) == ("A1", "clip", "video/mp4")
    data = store.path(row.path).read_bytes()
    assert row.sha256 == hashlib.sha256(data).hexdigest() and row.size == len(data)
    assert row.path.endswith(f"{row.sha256}.mp4")  # content-addressed
    assert row.retain_until - row.created_at == dt.timedelta(days=183)
    with av.open(store.path(row.path)) as clip:
        assert clip.streams.video[0].codec_context.name == "h264"
        assert clip.duration is not None and 2.5 <= clip.duration / 1e6 <= 5.0  # 2 s + 1 s, + up to a GOP
        assert len(list(clip.decode(video=0))) > 0
    assert not list((tmp_path / "storage").glob(".clip-*"))  # no temp files left behind


def test_recorder_counts_what_it_skips_and_never_raises(
    db: Database, tmp_path: Path, live: LiveSource, caplog: pytest.LogCaptureFixture
) -> None:
    live.wait_for_video(5.0)
    store = EvidenceStore(tmp_path / "storage")
    clips = ClipRecorder(db, store, retention_days=183, pre_s=2.0, post_s=1.0)
    for alarm_id in ("B1", "B2", "B3", "C1", "C2"):
        add_alarm(db, alarm_id)

    assert not clips.request("B0", "nowhere", time.time())  # no buffer registered for that camera
    assert clips.stats.failed == 1
    clips.register("walkway", live.buffer)

    clips.enabled = False  # what the disk-quota policy does
    assert not clips.request("B1", "walkway", time.time())
    assert clips.stats.skipped_disabled == 1
    clips.enabled = True

    # Two alarms at the same instant, their window already past: the same video, stored once, two rows.
    newest = live.buffer.newest_wall
    assert newest is not None
    assert clips.request("B2", "walkway", newest - 2.0)
    assert clips.request("B3", "walkway", newest - 2.0)
    wait_until(lambda: clips.stats.written == 2, 30, "two clips")
    clips.close()
    rows = clips_of(db)
    assert [r.alarm_id for r in rows] == ["B2", "B3"]
    assert rows[0].sha256 == rows[1].sha256 and rows[0].path == rows[1].path
    assert len(list((tmp_path / "storage" / "evidence").rglob("*.mp4"))) == 1
    assert not clips.request("B4", "walkway", newest)  # closed: refused, counted
    assert clips.stats.failed == 2

    # Shutdown writes the clips still waiting for their post-event seconds, with the video there is.
    later = ClipRecorder(db, store, retention_days=183, pre_s=2.0, post_s=60.0)
    later.register("walkway", live.buffer)
    later.register("dark", ClipBuffer())  # its stream never opened
    assert later.request("C1", "walkway", time.time())
    assert later.request("C2", "dark", time.time())  # accepted now, fails when written
    assert later.pending() == 2
    caplog.clear()
    later.close()
    assert later.pending() == 0
    assert (later.stats.written, later.stats.failed) == (1, 1)
    assert any("C2" in r.getMessage() and "dark" in r.getMessage() for r in caplog.records)
    assert [r.alarm_id for r in clips_of(db)] == ["B2", "B3", "C1"]
