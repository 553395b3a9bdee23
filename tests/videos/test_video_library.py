"""The video library and history replay: uploads kept once, jobs that outlive a restart, search by camera,
place and time, ranged playback, replay of part of a video with a chosen model version, refusals that
store nothing, roles, and retention."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from gateway.api import create_app
from gateway.app import Gateway
from gateway.auth import issue_token
from gateway.cli import main
from gateway.config.schema import load_config
from gateway.db import Database, upgrade
from gateway.db.schema import Alarm, AnalysisJob, Model, ModelVersion, Video
from gateway.models.pack import import_pack
from gateway.times import as_utc
from gateway.videos.library import INTERRUPTED, add_video
from tests.conftest import DEMO_SCENES, ROOT, write_config
from tests.videos.test_video_import import cut

Client = TestClient
START = dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.UTC)
CAMERAS = [
    {
        "id": "walkway",
        "name": "Walkway",
        "location": "East yard, walkway",
        "url": "rtsp://127.0.0.1:9/none",  # never opened: the videos come from the library
        "scenes": DEMO_SCENES,
    },
    {
        "id": "gate",
        "name": "Gate",
        "location": "North gate",
        "url": "rtsp://127.0.0.1:9/gate",
        "scenes": DEMO_SCENES[:1],
    },
    # A GB/T 28181 channel: its recordings stay on the device (GET /api/cameras/{id}/records).
    {
        "id": "gb-cam",
        "name": "Platform",
        "url": "gb28181://34020000001110000001/34020000001320000001",
        "scenes": DEMO_SCENES[:1],
    },
]


def z(value: dt.datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


@pytest.fixture
def config_path(tmp_path: Path, models_dir: Path) -> Path:
    path = write_config(tmp_path, cameras=CAMERAS)
    config = load_config(path, environ={})
    db = Database(config.database.url)
    upgrade(db.engine)
    import_pack(db, config.storage.root, models_dir, ROOT / "config" / "models")
    db.dispose()
    return path


@pytest.fixture
def gateway(config_path: Path) -> Iterator[Gateway]:
    gw = Gateway(load_config(config_path, environ={}), config_path, analyse=False)
    yield gw
    gw.stop()


def tokens(gw: Gateway) -> tuple[dict[str, str], dict[str, str]]:
    with gw.db.session() as s:
        writer, _ = issue_token(s, "operator", "machine", "operator")
        reader, _ = issue_token(s, "viewer", "machine", "viewer")
    return {"Authorization": f"Bearer {writer}"}, {"Authorization": f"Bearer {reader}"}


async def finished(client: Client, url: str, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        r = await client.get(url, headers=headers)
        assert r.status == 200, await r.text()
        job = await r.json()
        assert 0 <= job["progress"] <= 1
        if job["status"] not in ("queued", "running"):
            return job
        await asyncio.sleep(0.2)
    raise AssertionError(f"{url} did not finish")


def count(gw: Gateway, table: Any) -> int:
    with gw.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(table)) or 0)


async def test_uploads_are_kept_once_and_survive_a_restart(
    config_path: Path,
    gateway: Gateway,
    vtest: Path,
    tmp_path: Path,
    aiohttp_client: Callable[..., Awaitable[Client]],
) -> None:
    writer, viewer = tokens(gateway)
    client = await aiohttp_client(create_app(gateway))
    clip = cut(vtest, tmp_path / "clip.avi", 8)
    video = {**writer, "Content-Type": "video/x-msvideo"}
    query = f"camera_id=walkway&start={z(START)}&filename=yard%20cam.avi"

    jobs = []
    for _ in range(2):  # the same bytes, camera and start twice: one video, two analyses
        r = await client.post(f"/api/videos?{query}", data=clip.read_bytes(), headers=video)
        assert r.status == 202, await r.text()
        accepted = await r.json()
        assert accepted["kind"] == "upload" and accepted["video_id"]
        jobs.append(await finished(client, accepted["url"], viewer))
    assert [j["status"] for j in jobs] == ["done", "done"] and jobs[0]["video_id"] == jobs[1]["video_id"]
    assert all(j["frames"] == 80 and len(j["alarms"]) == 1 for j in jobs)
    # The same bytes at another start are another video, stored in the same file.
    later = START + dt.timedelta(hours=2)
    r = await client.post(
        f"/api/videos?camera_id=walkway&start={z(later)}", data=clip.read_bytes(), headers=video
    )
    other = await finished(client, (await r.json())["url"], viewer)
    assert other["status"] == "done" and other["video_id"] != jobs[0]["video_id"]
    root = gateway.config.storage.root
    assert [p.name for p in (root / "videos").rglob("*") if p.is_file()] == [
        p.name for p in (root / "videos").rglob("*.avi")
    ]
    assert len(list((root / "videos").rglob("*.avi"))) == 1 and list((root / "uploads").iterdir()) == []

    # A crash leaves a job running: the next gateway fails it when it starts serving.
    with gateway.db.session() as s:
        s.add(
            AnalysisJob(id="01JC0000000000000000000001", kind="replay", status="running", camera_ids=["gate"])
        )
    await client.close()
    gateway.stop()

    again = Gateway(load_config(config_path, environ={}), config_path, analyse=False)
    try:
        client = await aiohttp_client(create_app(again))
        r = await client.get("/api/videos", headers=viewer)
        assert r.status == 200
        body = await r.json()
        assert body["total"] == 2 and [v["started_at"] for v in body["items"]] == [
            later.isoformat(),
            START.isoformat(),
        ]
        first = body["items"][1]
        assert first["filename"] == "yard cam.avi" and first["uploaded_by"] == "operator"
        assert first["camera_name"] == "Walkway" and first["location"] == "East yard, walkway"
        assert first["duration_s"] == 8.0 and first["frames"] == 80 and first["codec"] == "msmpeg4"
        assert (first["width"], first["height"], first["size_bytes"]) == (768, 576, clip.stat().st_size)
        assert as_utc(dt.datetime.fromisoformat(first["retain_until"])) > START + dt.timedelta(days=183)
        assert sorted(j["id"] for j in first["jobs"]) == sorted(j["id"] for j in jobs)
        assert {j["status"] for j in first["jobs"]} == {"done"} and first["alarm_count"] == 2
        old = await (await client.get(f"/api/jobs/{jobs[0]['id']}", headers=viewer)).json()
        assert old["status"] == "done" and old["alarms"] == jobs[0]["alarms"] and old["frames"] == 80
        crashed = await (await client.get("/api/replay/01JC0000000000000000000001", headers=viewer)).json()
        assert crashed["status"] == "failed" and crashed["error"] == INTERRUPTED

        # Search by camera, place (location or name) and time (videos overlapping the range).
        async def ids(**params: str) -> list[str]:
            r = await client.get("/api/videos", params=params, headers=viewer)
            assert r.status == 200, await r.text()
            return [v["id"] for v in (await r.json())["items"]]

        both = [v["id"] for v in body["items"]]
        assert await ids(camera_id="walkway") == both and await ids(camera_id="gate") == []
        assert await ids(location="east yard") == both and await ids(location="north") == []
        assert await ids(
            since=z(START + dt.timedelta(seconds=5)), until=z(START + dt.timedelta(hours=1))
        ) == [first["id"]]
        assert await ids(since=z(START + dt.timedelta(seconds=9))) == [both[0]]  # the first ended at 8 s
        assert await ids(until=z(START)) == []
        assert await ids(limit="1") == both[:1]
        r = await client.get("/api/videos", params={"since": "noon"}, headers=viewer)
        assert r.status == 400 and "ISO 8601" in (await r.json())["error"]["message"]

        # Playback: the whole file, and a byte range of it.
        data = clip.read_bytes()
        r = await client.get(first["url"], headers=viewer)
        assert r.status == 200 and await r.read() == data and r.headers["Content-Type"] == "video/x-msvideo"
        r = await client.get(first["url"], headers={**viewer, "Range": "bytes=100-1123"})
        assert r.status == 206 and await r.read() == data[100:1124]
        assert r.headers["Content-Range"] == f"bytes 100-1123/{len(data)}"
        assert (await client.get("/api/videos/nope/file", headers=viewer)).status == 404

        # Viewers read, never write.
        for method, url in [
            ("POST", f"/api/videos?{query}"),
            ("DELETE", f"/api/videos/{first['id']}"),
            ("POST", "/api/replay"),
            ("POST", f"/api/replay/{jobs[0]['id']}/cancel"),
        ]:
            r = await client.request(method, url, json={}, headers=viewer)
            assert r.status == 403, (method, url)

        # Removal: the shared file stays while another video names it.
        file = next((root / "videos").rglob("*.avi"))
        r = await client.delete(f"/api/videos/{first['id']}", headers=writer)
        assert r.status == 200 and (await r.json())["file_removed"] is False and file.is_file()
        r = await client.delete(f"/api/videos/{both[0]}", headers=writer)
        assert r.status == 200 and (await r.json())["file_removed"] is True and not file.exists()
        assert (await client.delete(f"/api/videos/{both[0]}", headers=writer)).status == 404
        # The jobs and their alarms stay.
        assert (await (await client.get(f"/api/jobs/{jobs[0]['id']}", headers=viewer)).json())[
            "status"
        ] == "done"
        assert count(again, Alarm) == 3
    finally:
        again.stop()


def yolox_version(gw: Gateway) -> str:
    with gw.db.session() as s:
        version = s.scalar(select(ModelVersion.id).join(Model).where(Model.name == "yolox_nano"))
    assert version is not None
    return version


async def test_replay_over_part_of_a_video_with_a_chosen_version(
    config_path: Path,
    gateway: Gateway,
    vtest: Path,
    aiohttp_client: Callable[..., Awaitable[Client]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    writer, viewer = tokens(gateway)
    video, created = add_video(gateway, vtest, "walkway", START, "vtest.avi", "test")
    assert created and video.duration_s == 79.5 and video.frames == 795
    assert add_video(gateway, vtest, "walkway", START)[0].id == video.id  # not twice
    client = await aiohttp_client(create_app(gateway))
    version = yolox_version(gateway)
    since, until = START + dt.timedelta(seconds=20), START + dt.timedelta(seconds=50)
    body = {
        "camera_ids": ["walkway", "gate", "gb-cam"],
        "since": z(since),
        "until": z(until),
        "model": f"yolox_nano@{version}",
    }
    r = await client.post("/api/replay", json=body, headers=writer)
    assert r.status == 202, await r.text()
    accepted = await r.json()
    assert r.headers["Location"] == accepted["url"] == f"/api/replay/{accepted['id']}"
    job = await finished(client, accepted["url"], viewer)
    assert job["status"] == "done" and job["progress"] == 1.0 and job["error"] is None
    assert job["model"] == body["model"] and job["model_version_id"] == version
    assert job["camera_ids"] == ["walkway", "gate", "gb-cam"] and job["kind"] == "replay"
    [part] = job["videos"]
    assert part["video_id"] == video.id and (part["from_s"], part["to_s"]) == (20.0, 50.0)
    assert part["status"] == "done" and part["frames"] == part["total_frames"] == 300
    assert part["model_versions"] == {"intrusion": version, "crowd": version}
    assert job["frames_done"] == job["frames_total"] == 300
    assert [n["camera_id"] for n in job["notes"]] == ["gate", "gb-cam"]
    assert "no library video" in job["notes"][0]["message"] and "records" not in job["notes"][0]["message"]
    assert "GET /api/cameras/gb-cam/records" in job["notes"][1]["message"]
    assert job["alarm_count"] == len(job["alarms"]) == part["alarm_count"] > 0
    with gateway.db.session() as s:
        alarms = list(s.scalars(select(Alarm).where(Alarm.id.in_(job["alarms"]))))
    assert len(alarms) == len(job["alarms"])
    for a in alarms:  # only inside the range, with video times, read by the chosen version
        assert since <= as_utc(a.occurred_at) and as_utc(a.raised_at) <= until
        assert a.video_ts is not None and 20 <= a.video_ts <= 50
        assert abs((as_utc(a.occurred_at) - START).total_seconds() - a.video_ts) < 0.01
        assert a.model_version_id == version and a.event_key.startswith(f"video:{job['id']}.0/")
    # The library lists the replay with the video; the replay list has it too.
    items = (await (await client.get("/api/videos", headers=viewer)).json())["items"]
    assert [(j["id"], j["kind"]) for j in items[0]["jobs"]] == [(job["id"], "replay")]
    assert items[0]["alarm_count"] == job["alarm_count"]
    listed = (await (await client.get("/api/replay", headers=viewer)).json())["items"]
    assert [j["id"] for j in listed] == [job["id"]]
    r = await client.post(f"/api/replay/{job['id']}/cancel", headers=writer)
    assert r.status == 409 and "done already" in (await r.json())["error"]["message"]
    assert (await client.post("/api/replay/nope/cancel", headers=writer)).status == 404

    # Refusals say what is wrong and store nothing.
    jobs_before, alarms_before = count(gateway, AnalysisJob), count(gateway, Alarm)
    month = z(since + dt.timedelta(days=32))
    for change, status, message in [
        ({"camera_ids": ["nowhere"]}, 422, "unknown camera 'nowhere'"),
        ({"camera_ids": []}, 422, "camera_ids"),
        ({"camera_ids": [f"c{i}" for i in range(51)]}, 422, "camera_ids"),
        ({"until": z(since)}, 422, "until must be after since"),
        ({"until": month}, 422, "at most 31 days"),
        ({"since": "yesterday"}, 422, "since"),
        ({"model": "01AAAAAAAAAAAAAAAAAAAAAAAA"}, 422, "no model version '01AAAAAAAAAAAAAAAAAAAAAAAA'"),
        ({"model": "nothing_like_it"}, 422, "'nothing_like_it' is not imported"),
        ({"model": "movenet_multipose"}, 422, "is a movenet model"),
        ({"scenes": ["helmet"]}, 422, "has no scene helmet"),
        ({"colour": "red"}, 422, "unknown field"),
    ]:
        r = await client.post("/api/replay", json={**body, **change}, headers=writer)
        assert r.status == status, (change, await r.text())
        assert message in (await r.json())["error"]["message"], change
    assert (count(gateway, AnalysisJob), count(gateway, Alarm)) == (jobs_before, alarms_before)
    assert (await client.get("/api/replay/nope", headers=viewer)).status == 404

    # The same from the command line, with the camera's own models and one scene.
    cfg = ["--config", str(config_path)]
    args = ["replay", "--camera", "walkway", "--since", z(since), "--until", z(until), "--no-progress"]
    assert main([*cfg, *args, "--scene", "intrusion", "--model", version]) == 0
    out = capsys.readouterr().out
    assert "done: 1 video part(s), 300 frames" in out and f"(version {version})" in out
    assert f"video {video.id} (walkway) 20.0 s..50.0: done, 300 frames" in out
    assert main([*cfg, *args[:-1], "--model", "nothing_like_it"]) == 2
    assert "replay refused: model: model 'nothing_like_it' is not imported" in capsys.readouterr().err
    assert main([*cfg, "replay", "--camera", "walkway", "--since", "noon", "--until", z(until)]) == 2

    # While a replay runs its video cannot be removed; it can be cancelled; a shutdown fails it.
    whole = {
        **body,
        "camera_ids": ["walkway"],
        "since": z(START),
        "until": z(START + dt.timedelta(minutes=2)),
    }
    r = await client.post("/api/replay", json=whole, headers=writer)
    running = await r.json()
    assert r.status == 202 and running["frames_total"] == 795
    r = await client.delete(f"/api/videos/{video.id}", headers=writer)
    assert r.status == 409 and f"used by job {running['id']}" in (await r.json())["error"]["message"]
    r = await client.post(f"/api/replay/{running['id']}/cancel", headers=writer)
    assert r.status == 200, await r.text()
    cancelled = await finished(client, running["url"], viewer)
    assert cancelled["status"] == "cancelled" and cancelled["videos"][0]["status"] == "cancelled"
    r = await client.post("/api/replay", json=whole, headers=writer)
    last = await r.json()
    await client.close()  # the gateway stops under the job
    with gateway.db.session() as s:
        row = s.get(AnalysisJob, last["id"])
        assert row is not None and (row.status, row.error) == ("failed", INTERRUPTED)


async def test_videos_past_retention_are_swept(gateway: Gateway, vtest: Path, tmp_path: Path) -> None:
    gateway.db.ensure_current()
    clip = cut(vtest, tmp_path / "clip.avi", 3)
    video, _ = add_video(gateway, clip, "walkway", START)
    kept, _ = add_video(gateway, clip, "walkway", START + dt.timedelta(days=1))  # the same file
    file = gateway.config.storage.root / video.path
    assert gateway.retention.usage_bytes(fresh=True) >= clip.stat().st_size
    usage = gateway.retention.usage()["videos"]
    assert usage["count"] == 2 and usage["bytes"] == 2 * clip.stat().st_size

    with gateway.db.session() as s:
        row = s.get(Video, video.id)
        assert row is not None
        row.retain_until = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    report = gateway.retention.sweep()
    assert report.expired_rows == 1 and report.files_removed == 0 and file.is_file()  # still named
    with gateway.db.session() as s:
        assert list(s.scalars(select(Video.id))) == [kept.id]
        row = s.get(Video, kept.id)
        assert row is not None
        row.retain_until = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    report = gateway.retention.sweep()
    assert (report.expired_rows, report.files_removed) == (1, 1)
    assert report.bytes_removed == clip.stat().st_size and not file.exists()
    assert count(gateway, Video) == 0
