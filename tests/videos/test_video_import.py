"""Offline video analysis: vtest.avi through the demo scenes as fast as it decodes, alarms with video times,
the `vigil video import` command and the upload API with its jobs and size limit."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import av
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from gateway.api import create_app
from gateway.app import Gateway
from gateway.auth import issue_token
from gateway.cli import main
from gateway.config.schema import load_config
from gateway.db import upgrade
from gateway.db.schema import Alarm, Evidence
from gateway.models.pack import import_pack
from gateway.videos.importer import VideoImportError, analyse_video
from tests.conftest import DEMO_SCENES, ROOT, write_config

Client = TestClient
START = dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.UTC)
UPLOAD_LIMIT_MB = 2


def utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


@pytest.fixture
def config_path(tmp_path: Path, models_dir: Path) -> Path:
    path = write_config(
        tmp_path,
        server={"host": "127.0.0.1", "port": 18080, "max_upload_mb": UPLOAD_LIMIT_MB},
        # The camera's stream is never opened here: the video comes from a file.
        cameras=[
            {"id": "walkway", "name": "Walkway", "url": "rtsp://127.0.0.1:9/none", "scenes": DEMO_SCENES}
        ],
    )
    config = load_config(path, environ={})
    from gateway.db import Database

    db = Database(config.database.url)
    upgrade(db.engine)
    results = import_pack(db, config.storage.root, models_dir, ROOT / "config" / "models")
    assert [r.status for r in results if r.name == "yolox_nano"] == ["imported"]
    db.dispose()
    return path


@pytest.fixture
def gateway(config_path: Path) -> Iterator[Gateway]:
    gw = Gateway(load_config(config_path, environ={}), config_path, analyse=False)
    yield gw
    gw.stop()


def alarms_of(gw: Gateway) -> list[tuple[Alarm, set[str]]]:
    with gw.db.session() as s:
        out = []
        for a in s.scalars(select(Alarm).order_by(Alarm.occurred_at)):
            kinds = set(s.scalars(select(Evidence.kind).where(Evidence.alarm_id == a.id)))
            s.expunge(a)
            out.append((a, kinds))
        return out


def test_offline_vtest_gives_the_rtsp_paths_alarms_with_video_times(gateway: Gateway, vtest: Path) -> None:
    calls: list[tuple[int, int | None]] = []
    result = analyse_video(
        gateway, vtest, "walkway", START, progress=lambda done, total: calls.append((done, total))
    )
    print(f"vtest.avi offline: {result.frames} frames, {result.elapsed_s:.1f} s, {result.fps:.0f} frames/s")
    # All of it, once: 79.5 s at 10 frames/s, one frame a second to the scenes (both share it).
    assert result.frames == result.total == 795 and calls[-1] == (795, 795)
    assert 78 <= result.analysed <= 81 and result.errors == 0
    assert result.scene_status == {"intrusion": "running", "crowd": "running"}
    stored = alarms_of(gateway)
    assert sorted(a.id for a, _ in stored) == sorted(result.alarm_ids)
    by_scene = {a.scene: a for a, _ in stored}
    assert set(by_scene) == {"intrusion", "crowd"}  # the kinds the RTSP path raises on this video
    assert by_scene["intrusion"].region == "lawn-east"
    assert by_scene["crowd"].region == "walkway" and "crowd of up to" in by_scene["crowd"].message
    for alarm, kinds in stored:
        assert alarm.video_ts is not None and 0 <= alarm.video_ts <= 79.5
        assert abs((utc(alarm.occurred_at) - START).total_seconds() - alarm.video_ts) < 0.01
        held = (utc(alarm.raised_at) - utc(alarm.occurred_at)).total_seconds()
        assert held >= (3 if alarm.scene == "intrusion" else 5) - 1.01
        assert kinds == {"snapshot", "snapshot_raw"}
        assert alarm.event_key.startswith(f"video:{result.job_id}/walkway/")

    # The same video again (first 10 s only): alarms of its own, not held back by the first run's.
    again = analyse_video(gateway, vtest, "walkway", START, max_seconds=10)
    assert again.frames == 100 and again.total == 100
    new = [a for a, _ in alarms_of(gateway) if a.id in again.alarm_ids]
    assert sorted(a.scene for a in new) == ["crowd", "intrusion"]
    assert all(a.video_ts is not None and a.video_ts < 10 for a in new)


def test_not_a_video_stores_nothing(gateway: Gateway, tmp_path: Path, vtest: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("shift log: nothing to report\n" * 50, encoding="utf-8")
    with pytest.raises(VideoImportError, match="not a video"):
        analyse_video(gateway, text, "walkway", START)
    with pytest.raises(VideoImportError, match="unknown camera 'nowhere'"):
        analyse_video(gateway, vtest, "nowhere", START)
    assert alarms_of(gateway) == []


def test_cli_video_import(config_path: Path, vtest: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = ["--config", str(config_path)]
    start = "2026-11-20T16:00:00+08:00"
    assert main([*cfg, "video", "import", str(vtest), "--camera", "walkway", "--start", start]) == 0
    out, err = capsys.readouterr()
    assert "795/795" in err  # the progress bar
    assert "vtest.avi on camera walkway: 795 frames (79.5 s of video)" in out
    lines = [line.split() for line in out.splitlines()[2:]]
    assert {(line[3], line[4]) for line in lines} == {("intrusion", "lawn-east"), ("crowd", "walkway")}
    for _id, video_time, occurred, _scene, _region in lines:
        h, m, s = video_time.split(":")
        offset = dt.timedelta(hours=int(h), minutes=int(m), seconds=round(float(s)))
        assert dt.datetime.fromisoformat(occurred) == START + offset

    # Only the chosen scene; the file's start time without zone is UTC.
    args = ["video", "import", str(vtest), "--camera", "walkway", "--start", "2026-11-21T08:00:00"]
    assert main([*cfg, *args, "--scene", "crowd", "--max-seconds", "20", "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert "crowd" in out and "intrusion" not in out and "2026-11-21T08:00:0" in out and err == ""

    video = ["video", "import", str(vtest)]
    for argv, message in [
        (["video", "import", "missing.avi", "--camera", "walkway", "--start", start], "video file not found"),
        ([*video, "--camera", "nowhere", "--start", start], "unknown camera 'nowhere'"),
        ([*video, "--camera", "walkway", "--start", "yesterday"], "not an ISO 8601"),
        ([*args, "--scene", "helmet"], "has no scene helmet; it has: intrusion, crowd"),
    ]:
        assert main([*cfg, *argv]) == 2, argv
        assert message in capsys.readouterr().err
    not_video = config_path.parent / "notes.avi"
    not_video.write_bytes(b"\x00garbage" * 1000)
    assert main([*cfg, "video", "import", str(not_video), "--camera", "walkway", "--start", start]) == 1
    assert "video import failed" in capsys.readouterr().err


def cut(src: Path, dst: Path, seconds: float) -> Path:
    """The first seconds of a video, remuxed (no re-encode)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = inp.streams.video[0]
        target = out.add_stream_from_template(stream)
        for packet in inp.demux(stream):
            if packet.pts is None or stream.time_base is None:
                continue
            if packet.pts * stream.time_base >= seconds:
                break
            packet.stream = target
            out.mux(packet)
    return dst


async def test_api_upload_jobs_and_limits(
    gateway: Gateway, vtest: Path, tmp_path: Path, aiohttp_client: Callable[..., Awaitable[Client]]
) -> None:
    with gateway.db.session() as s:
        writer, _ = issue_token(s, "uploader", "machine", "operator")
        reader, _ = issue_token(s, "viewer", "machine", "viewer")
    auth, viewer = {"Authorization": f"Bearer {writer}"}, {"Authorization": f"Bearer {reader}"}
    client = await aiohttp_client(create_app(gateway))
    uploads = gateway.config.storage.root / "uploads"
    clip = cut(vtest, tmp_path / "clip.avi", 8)
    assert clip.stat().st_size < UPLOAD_LIMIT_MB * 1024 * 1024
    video = {**auth, "Content-Type": "video/x-msvideo"}
    query = "camera_id=walkway&start=2026-11-20T08:00:00Z"

    async def finished(job_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            r = await client.get(f"/api/jobs/{job_id}", headers=viewer)
            assert r.status == 200
            job = await r.json()
            assert 0 <= job["progress"] <= 1 and job["status"] in ("queued", "running", "done", "failed")
            if job["status"] in ("done", "failed"):
                return job
            await asyncio.sleep(0.2)
        raise AssertionError(f"job {job_id} did not finish")

    r = await client.post(f"/api/videos?{query}", data=clip.read_bytes(), headers=video)
    assert r.status == 202, await r.text()
    accepted = await r.json()
    assert r.headers["Location"] == accepted["url"] == f"/api/jobs/{accepted['id']}"
    job = await finished(accepted["id"])
    assert job["status"] == "done" and job["progress"] == 1.0 and job["error"] is None
    assert job["frames"] == 80 and job["camera_id"] == "walkway"
    items = (await (await client.get("/api/alarms", headers=viewer)).json())["items"]
    assert [(a["id"], a["scene"]) for a in items] == [(job["alarms"][0], "intrusion")]
    assert items[0]["occurred_at"] == "2026-11-20T08:00:00+00:00"
    assert list(uploads.iterdir()) == []  # the upload is removed once analysed

    # Past the limit: with a Content-Length, and streamed (chunked) without one.
    big = b"\x00" * (UPLOAD_LIMIT_MB * 1024 * 1024 + 1)
    r = await client.post(f"/api/videos?{query}", data=big, headers=video)
    assert r.status == 413 and f"limit is {UPLOAD_LIMIT_MB} MB" in (await r.json())["error"]["message"]

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(UPLOAD_LIMIT_MB * 4 + 1):
            yield b"\x00" * (256 * 1024)

    r = await client.post(f"/api/videos?{query}", data=chunks(), headers=video)
    assert r.status == 413 and "server.max_upload_mb" in (await r.json())["error"]["message"]
    assert list(uploads.iterdir()) == []

    # Not a video: accepted, then the job fails and says why; nothing is stored.
    r = await client.post(f"/api/videos?{query}", data=b"not a video at all\n" * 100, headers=video)
    assert r.status == 202
    job = await finished((await r.json())["id"])
    assert job["status"] == "failed" and "not a video" in job["error"] and job["alarms"] == []
    assert len(alarms_of(gateway)) == 1 and list(uploads.iterdir()) == []

    # Bad requests are refused before any byte is stored.
    for url, headers, status in [
        (f"/api/videos?{query}", viewer, 403),
        (f"/api/videos?{query}", {**auth, "Content-Type": "text/plain"}, 415),
        ("/api/videos?camera_id=nowhere&start=2026-11-20T08:00:00Z", video, 404),
        ("/api/videos?camera_id=walkway&start=noon", video, 400),
        ("/api/videos?camera_id=walkway", video, 400),
    ]:
        r = await client.post(url, data=b"x", headers=headers)
        assert r.status == status, (url, await r.text())
    assert (await client.get("/api/jobs/nope", headers=viewer)).status == 404


def test_cli_video_import_with_a_chosen_model_version(
    config_path: Path, vtest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.db import Database
    from gateway.db.schema import Model, ModelVersion

    cfg = ["--config", str(config_path)]
    with Database(load_config(config_path, environ={}).database.url).session() as s:
        version = s.scalars(select(ModelVersion.id).join(Model).where(Model.name == "yolox_nano")).first()
    assert version is not None
    args = [
        *cfg,
        "video",
        "import",
        str(vtest),
        "--camera",
        "walkway",
        "--start",
        "2026-11-21T08:00:00",
        "--max-seconds",
        "12",
        "--no-progress",
    ]
    for ref in (version, f"yolox_nano@{version}"):
        assert main([*args, "--model", ref]) == 0
        assert "intrusion" in capsys.readouterr().out
    assert main([*args, "--model", "01AAAAAAAAAAAAAAAAAAAAAAAA"]) == 1
    assert "no model version '01AAAAAAAAAAAAAAAAAAAAAAAA'" in capsys.readouterr().err
    assert main([*args, "--model", "movenet_multipose"]) == 1  # a pose model cannot drive these scenes
    assert "is a movenet model, not a detector" in capsys.readouterr().err


def test_cli_video_import_captures_samples_with_video_times(
    config_path: Path, vtest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.db import Database
    from gateway.db.schema import Sample

    cfg = ["--config", str(config_path)]
    args = [
        "video",
        "import",
        str(vtest),
        "--camera",
        "walkway",
        "--start",
        "2026-11-21T08:00:00+00:00",
        "--max-seconds",
        "25",
        "--capture-interval",
        "10",
        "--no-progress",
    ]
    assert main([*cfg, *args]) == 0
    capsys.readouterr()
    config = load_config(config_path, environ={})
    with Database(config.database.url).session() as s:
        samples = s.scalars(select(Sample).order_by(Sample.created_at)).all()
        times = [
            (
                x.created_at.replace(tzinfo=dt.UTC) - dt.datetime(2026, 11, 21, 8, tzinfo=dt.UTC)
            ).total_seconds()
            for x in samples
        ]
        assert [x.origin for x in samples] == ["capture"] * 3 and [x.camera_id for x in samples] == [
            "walkway"
        ] * 3
        paths = [config.storage.root / x.path for x in samples]
    assert [round(t) for t in times] == [0, 10, 20]  # frame times are video times
    assert all(p.read_bytes()[:3] == b"\xff\xd8\xff" for p in paths)
