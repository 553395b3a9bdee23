"""Video diagnosis alarms from real streams of the sample RTSP server through a running gateway: the
stream stops -> one offline alarm, it comes back -> the alarm is cleared by the gateway (a revision);
a black / frozen / blurred / turned-away stream -> one alarm of the right type with a snapshot; the
normal stream -> none."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import pytest
from sqlalchemy import select

from adapters.rtsp.sample_camera import SampleRtspServer
from gateway.app import Gateway
from gateway.config.schema import load_config
from gateway.db import upgrade
from gateway.db.schema import Alarm, AlarmRevision, Evidence
from tests.conftest import write_config
from tests.health.streams import VARIANTS, vtest_frames, write_video

CLIP_S = 3
FAST = {  # short times so that the test takes seconds, not minutes
    "check_interval_s": 0.5,
    "hold_s": 2,
    "recover_s": 2,
    "offline_s": 3,
    "frozen_s": 4,
}
EXPECTED = {
    "black": "camera_dark",
    "frozen": "camera_frozen",
    "blurred": "camera_blurred",
    "turned": "camera_moved",
}


def gateway(tmp: Path, cameras: list[dict[str, Any]]) -> Gateway:
    gw = Gateway(load_config(write_config(tmp, cameras=cameras), environ={}), analyse=True)
    upgrade(gw.db.engine)
    return gw


def alarms(gw: Gateway, camera_id: str | None = None) -> list[Alarm]:
    with gw.db.session() as s:
        q = select(Alarm).order_by(Alarm.raised_at)
        if camera_id is not None:
            q = q.where(Alarm.camera_id == camera_id)
        return list(s.scalars(q))


def wait_for(check: Any, seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def videos(vtest: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("diagnosis-videos")
    frames = vtest_frames(vtest, CLIP_S)
    cv2.imwrite(str(folder / "reference.jpg"), frames[0])
    out = {name: write_video(folder / f"{name}.mp4", alter(frames)) for name, alter in VARIANTS.items()}
    out["normal"] = write_video(folder / "normal.mp4", frames)
    out["reference"] = folder / "reference.jpg"
    return out


@pytest.fixture
def camera(vtest: Path) -> Iterator[SampleRtspServer]:
    with SampleRtspServer({"cam": vtest}, max_seconds=CLIP_S) as server:
        yield server


def test_stream_stops_offline_alarm_then_cleared_when_it_returns(
    tmp_path: Path, camera: SampleRtspServer
) -> None:
    gw = gateway(tmp_path, [{"id": "gate", "name": "Gate", "url": camera.url("cam"), "diagnosis": FAST}])
    gw.start()
    try:
        wait_for(lambda: gw.analytics.runners["gate"].health.state == "online", 20, "the camera online")
        camera.stop()
        stopped = time.monotonic()
        raised = wait_for(lambda: alarms(gw, "gate"), 15, "the offline alarm")
        assert time.monotonic() - stopped < FAST["offline_s"] + 5
        assert [(a.scene, a.status, a.priority) for a in raised] == [("camera_offline", "raised", 3)]
        assert gw.health.faults("gate") == ["camera_offline"]
        camera.start()
        cleared = wait_for(lambda: [a for a in alarms(gw, "gate") if a.status == "cleared"], 60, "the clear")
        assert [a.scene for a in alarms(gw, "gate")] == ["camera_offline"]  # once per episode
        with gw.db.session() as s:
            revisions = s.scalars(select(AlarmRevision).where(AlarmRevision.alarm_id == cleared[0].id)).all()
            actions = [(r.action, r.actor) for r in sorted(revisions, key=lambda r: r.revision)]
        assert actions == [("raised", "gateway:diagnosis"), ("cleared", "gateway:diagnosis")]
        assert gw.health.faults("gate") == []
    finally:
        gw.stop()


def test_faulty_streams_raise_one_alarm_of_their_type(tmp_path: Path, videos: dict[str, Path]) -> None:
    names = [*EXPECTED, "normal"]
    with SampleRtspServer({n: videos[n] for n in names}, max_seconds=CLIP_S) as server:
        cameras = [{"id": n, "name": n, "url": server.url(n), "diagnosis": FAST} for n in names]
        gw = gateway(tmp_path, cameras)
        references = gw.config.storage.root / "references"
        references.mkdir(parents=True)
        for n in names:  # the regions of every camera were drawn on the normal view
            (references / f"{n}.jpg").write_bytes(videos["reference"].read_bytes())
        gw.start()
        try:
            wait_for(
                lambda: {a.camera_id for a in alarms(gw)} >= set(EXPECTED),
                40,
                "an alarm on every faulty camera",
            )
            time.sleep(4)  # the faults go on: still one alarm each
            raised = {(a.camera_id, a.scene) for a in alarms(gw)}
            assert sorted(raised) == sorted(EXPECTED.items())
            assert len(alarms(gw)) == len(EXPECTED)
            with gw.db.session() as s:
                kinds = set(s.scalars(select(Evidence.kind)))
            assert {"snapshot", "snapshot_raw"} <= kinds
            for n in EXPECTED:
                assert gw.health.faults(n) == [EXPECTED[n]]
            assert gw.health.faults("normal") == []
        finally:
            gw.stop()
