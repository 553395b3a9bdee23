"""Frame capture to the sample library: interval by frame time, content-addressed atomic JPEGs, one row
per distinct image, failures counted off the camera thread, and the real RTSP path end to end."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from sqlalchemy import select, text

from adapters import Frame
from gateway.app import Gateway
from gateway.cameras.analytics import CameraRunner
from gateway.cameras.capture import FrameCapture
from gateway.config.schema import CameraConfig, load_config
from gateway.db import Database, upgrade
from gateway.db.schema import Camera, Sample
from gateway.models.pack import import_pack
from tests.conftest import DEMO_SCENES, ROOT, write_config

T0 = 1_760_000_000.0
TAGS = {"area": "tank farm", "environment": "outdoor"}


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'vigil.db'}")
    upgrade(database.engine)
    with database.session() as s:
        s.add(Camera(id="cam1", name="Cam 1", stream_url="rtsp://127.0.0.1:9/x"))
    return database


def frame(ts: float, seed: int | None = None, size: tuple[int, int] = (48, 64)) -> Frame:
    rng = np.random.default_rng(int(ts * 1000) if seed is None else seed)
    # Smooth pictures (a few random colours, interpolated), distinct per timestamp or seed.
    coarse = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    image = cv2.resize(coarse, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    return Frame("cam1", ts, image, ts - T0, True)


def rows(db: Database) -> list[Sample]:
    with db.session() as s:
        return list(s.scalars(select(Sample).order_by(Sample.id)))


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in (root / "samples").rglob("*") if p.is_file())


def test_interval_is_kept_by_frame_time(db: Database, tmp_path: Path) -> None:
    cap = FrameCapture(db, tmp_path / "storage", "cam1", 2.0, TAGS)
    taken = []
    # A 2 fps sample over 10 s of frame time, arriving as fast as the test can offer them.
    for i in range(21):
        if cap.offer(frame(T0 + i * 0.5)):
            taken.append(i * 0.5)
        cap.drain()
    assert taken == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    # A 1 fps sample with jitter in its timestamps: every second frame, no drift, none skipped.
    taken = []
    for i in range(1, 9):
        jitter = -0.04 if i % 2 else 0.03
        if cap.offer(frame(T0 + 10 + i + jitter)):
            taken.append(i)
        cap.drain()
    assert taken == [2, 4, 6, 8]
    # The clock going back (a camera reset) starts again rather than waiting for the old time.
    assert cap.offer(frame(T0 - 3600))
    assert not cap.offer(frame(T0 - 3599))
    cap.close()
    assert (cap.captured, cap.dropped, cap.errors) == (11, 0, 0)
    assert len(rows(db)) == 11


def test_files_are_content_addressed_and_rows_catalogued(db: Database, tmp_path: Path) -> None:
    root = tmp_path / "storage"
    cap = FrameCapture(db, root, "cam1", 1.0, TAGS)
    frames = [frame(T0 + i, size=(120, 160)) for i in range(3)]
    for f in frames:
        assert cap.offer(f)
    cap.close()
    assert (cap.captured, cap.errors, cap.last_error) == (3, 0, None)
    files = stored_files(root)
    assert len(files) == 3 and not any(p.name.startswith(".tmp-") for p in files)
    for path in files:
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        assert data[:3] == b"\xff\xd8\xff"
        assert path.relative_to(root).as_posix() == f"samples/{digest[:2]}/{digest[2:4]}/{digest}.jpg"
    samples = rows(db)
    for sample, f in zip(samples, frames, strict=True):
        assert (sample.origin, sample.camera_id, sample.width, sample.height) == ("capture", "cam1", 160, 120)
        assert (sample.tags, sample.labels, sample.scene) == (TAGS, [], None)
        data = (root / sample.path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == sample.sha256
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        assert decoded is not None and decoded.shape == (120, 160, 3)
        # JPEG quality 90 of the same picture: close, not identical.
        assert float(np.abs(decoded.astype(int) - f.image.astype(int)).mean()) < 4
        created = sample.created_at.replace(tzinfo=sample.created_at.tzinfo or dt.UTC)
        assert abs(created.timestamp() - f.ts) < 1e-3


def test_same_image_twice_is_one_file_and_one_row(db: Database, tmp_path: Path) -> None:
    """A frozen stream repeats its bytes: the library keeps the picture once and counts the repeats."""
    root = tmp_path / "storage"
    cap = FrameCapture(db, root, "cam1", 1.0)
    assert cap.offer(frame(T0, seed=7))
    assert cap.offer(frame(T0 + 1, seed=7))
    assert cap.offer(frame(T0 + 2, seed=8))
    cap.close()
    assert (cap.captured, cap.duplicates, cap.errors) == (2, 1, 0)
    assert len(stored_files(root)) == 2
    assert [s.tags for s in rows(db)] == [{}, {}]


def test_a_failed_write_leaves_no_file(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "storage"
    cap = FrameCapture(db, root, "cam1", 1.0)

    def crash(src: Any, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    assert cap.offer(frame(T0))
    cap.drain()
    monkeypatch.undo()
    assert (cap.captured, cap.errors) == (0, 1) and "No space left" in (cap.last_error or "")
    assert stored_files(root) == [] and rows(db) == []
    assert cap.offer(frame(T0 + 1))  # the next one works again
    cap.close()
    assert (cap.captured, cap.last_error) == (1, None) and len(stored_files(root)) == 1


def test_broken_database_is_counted_not_raised(db: Database, tmp_path: Path) -> None:
    root = tmp_path / "storage"
    with db.session() as s:
        s.execute(text("DROP TABLE dataset_samples"))
        s.execute(text("DROP TABLE samples"))
    cap = FrameCapture(db, root, "cam1", 1.0)
    for i in range(3):
        assert cap.offer(frame(T0 + i))
        cap.drain()
    cap.close()
    assert (cap.captured, cap.errors) == (0, 3)
    assert "samples" in (cap.last_error or "")
    assert stored_files(root) == []  # no row names them, so the files are removed again


def test_slow_disk_drops_frames_without_blocking(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cap = FrameCapture(db, tmp_path / "storage", "cam1", 1.0)
    release = threading.Event()
    put = cap.store.put

    def slow_put(data: bytes, ext: str) -> tuple[str, str, bool]:
        release.wait(10)
        return put(data, ext)

    monkeypatch.setattr(cap.store, "put", slow_put)
    started = time.perf_counter()
    offered = 20
    for i in range(offered):
        cap.offer(frame(T0 + i))
    assert time.perf_counter() - started < 0.5  # the camera thread never waits for the disk
    release.set()
    cap.close()
    assert cap.dropped >= offered - cap.QUEUE - 1 and cap.captured + cap.dropped == offered
    assert len(rows(db)) == cap.captured


def test_runner_samples_often_enough_for_capture(db: Database, tmp_path: Path) -> None:
    camera = CameraConfig(id="cam1", name="Cam 1", url="rtsp://127.0.0.1:9/x", capture_interval_s=0.25)
    cap = FrameCapture(db, tmp_path / "storage", "cam1", 0.25)
    runner = CameraRunner(camera, [], recorder=None, capture=cap)  # type: ignore[arg-type]
    assert runner.source.sample_fps == 4.0
    runner.analyse(frame(T0))
    runner.stop()
    assert cap.captured == 1 and len(rows(db)) == 1


def test_rtsp_camera_fills_the_sample_library(tmp_path: Path, rtsp: Any, models_dir: Path) -> None:
    scene = {**DEMO_SCENES[0], "tags": TAGS}
    cam = {
        "id": "walkway",
        "name": "Walkway",
        "url": rtsp.url("vtest"),
        "capture_interval_s": 2,
        "scenes": [scene],
    }
    config = load_config(write_config(tmp_path, cameras=[cam]), environ={})
    gw = Gateway(config)
    upgrade(gw.db.engine)
    import_pack(gw.db, config.storage.root, models_dir, ROOT / "config" / "models")
    gw.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(rows(gw.db)) < 3:
            time.sleep(0.25)
        capture = gw.analytics.runners["walkway"].capture
        assert capture is not None
    finally:
        gw.stop()
    samples = rows(gw.db)
    assert len(samples) >= 3 and capture.captured == len(samples) and capture.errors == 0
    for sample in samples:
        assert (sample.origin, sample.camera_id, sample.width, sample.height) == (
            "capture",
            "walkway",
            768,
            576,
        )
        assert sample.tags == TAGS
        data = (config.storage.root / sample.path).read_bytes()
        assert data[:3] == b"\xff\xd8\xff" and hashlib.sha256(data).hexdigest() == sample.sha256
    times = [s.created_at.timestamp() for s in samples]
    assert all(b - a >= 1.5 for a, b in zip(times, times[1:], strict=False))
