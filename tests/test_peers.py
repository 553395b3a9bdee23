"""The test peers themselves: the sample RTSP camera (GStreamer) and the PostgreSQL helper."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import av
import av.error
import pytest
import sqlalchemy as sa

from adapters.rtsp.sample_camera import SampleRtspServer
from tests.peers.postgres import PostgresServer

ROOT = Path(__file__).resolve().parent.parent
VTEST = Path(os.environ.get("VIGIL_MEDIA_DIR", ROOT.parent / "shared" / "media")) / "vtest.avi"
FPS = 10  # vtest.avi
GOP = FPS  # the server's default: a 1 s GOP
# Encode only 12 s: startup ~1 s instead of ~7 s, and 12 whole GOPs, so the loop seam keeps the GOP.
CLIP_SECONDS = 12
AV_OPTIONS = {"rtsp_transport": "tcp"}


@dataclass(frozen=True)
class Seen:
    key: bool
    width: int
    height: int
    corrupt: bool
    time: float | None  # stream time, s


def read_frames(url: str, count: int) -> tuple[list[Seen], float]:
    """Decode ``count`` frames; returns them and the seconds from opening to the last one."""
    t0 = time.monotonic()
    with av.open(url, options=AV_OPTIONS, timeout=(10.0, 5.0)) as container:
        seen: list[Seen] = []
        for frame in container.decode(video=0):
            seen.append(Seen(frame.key_frame, frame.width, frame.height, frame.is_corrupt, frame.time))
            if len(seen) >= count:
                break
    return seen, time.monotonic() - t0


def check_stream(seen: list[Seen], count: int) -> None:
    assert len(seen) >= count, f"stream ended after {len(seen)} frames"
    assert {(f.width, f.height) for f in seen} == {(768, 576)}
    assert not any(f.corrupt for f in seen)
    # A joiner starts at a keyframe (FFmpeg drops what precedes it), then one every GOP frames.
    assert seen[0].key
    keys = [i for i, f in enumerate(seen) if f.key]
    assert all(abs(b - a - GOP) <= 1 for a, b in zip(keys, keys[1:], strict=False)), keys
    # Timestamps advance one frame duration per frame, across the loop seam too. (FFmpeg may leave the
    # very first RTSP frame without one, before it has an RTCP sender report to map RTP time.)
    times = [f.time for f in seen[1:]]
    assert None not in times
    steps = [b - a for a, b in zip(times, times[1:], strict=False)]  # type: ignore[operator]
    assert all(abs(s - 1 / FPS) < 0.01 for s in steps), steps


@pytest.fixture(scope="module")
def camera() -> Iterator[SampleRtspServer]:
    if not VTEST.is_file():
        pytest.skip(f"sample video not found at {VTEST}; set VIGIL_MEDIA_DIR to the folder with vtest.avi")
    with SampleRtspServer({"vtest": VTEST}, max_seconds=CLIP_SECONDS) as server:
        yield server


def test_camera_streams_in_real_time_and_serves_a_late_joiner(camera: SampleRtspServer) -> None:
    url = camera.url("vtest")
    assert url == f"rtsp://127.0.0.1:{camera.port}/vtest"
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(read_frames, url, 4 * GOP)
        time.sleep(3.0)  # the shared media is mid-GOP by now
        second = pool.submit(read_frames, url, 15)
        (seen1, took1), (seen2, _took2) = first.result(), second.result()
    check_stream(seen1, 4 * GOP)
    check_stream(seen2, 15)
    assert len([f for f in seen1 if f.key]) >= 3
    # Paced, not dumped: 40 frames at 10 fps cannot all be there within 3.9 s of the first PLAY.
    assert took1 > 0.9 * (4 * GOP - 1) / FPS


def test_restart_drops_clients_and_serves_again_on_the_same_port(camera: SampleRtspServer) -> None:
    port, pid = camera.port, camera.pid
    with av.open(camera.url("vtest"), options=AV_OPTIONS, timeout=(10.0, 5.0)) as container:
        frames = container.decode(video=0)
        for _ in range(5):
            next(frames)
        camera.restart()
        # The old connection is gone: the client drains what it buffered, then the stream ends or errors.
        drained = 0
        with pytest.raises((StopIteration, av.error.FFmpegError)):
            while drained < 1000:
                next(frames)
                drained += 1
        assert drained < 1000
    assert camera.port == port and camera.pid != pid
    seen, _ = read_frames(camera.url("vtest"), 15)
    check_stream(seen, 15)


@pytest.mark.postgres
@pytest.mark.parametrize("probe_existing", [True, False], ids=["first-available", "temp-cluster"])
def test_postgres_server(probe_existing: bool) -> None:
    # probe_existing=False forces the initdb branch even where a server already runs on 5432.
    server = PostgresServer(use_env=probe_existing, probe_existing=probe_existing)
    url = server.start()
    mode = server.mode
    assert url.startswith("postgresql+psycopg://")
    if not probe_existing:
        assert mode == "temp" and server.port != 5432
    try:
        engine = sa.create_engine(url, connect_args={"connect_timeout": 5})
        with engine.connect() as conn:
            assert "PostgreSQL" in conn.execute(sa.text("select version()")).scalar_one()
        engine.dispose()
    finally:
        server.stop()
    if mode != "env":
        # Its own database (existing server) or the whole cluster (temp) is gone again.
        engine = sa.create_engine(url, connect_args={"connect_timeout": 5})
        with pytest.raises(sa.exc.OperationalError):
            engine.connect().close()
        engine.dispose()
