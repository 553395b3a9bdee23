"""Resetting a camera's video diagnosis reference over HTTP: a camera whose view was turned on purpose
raises a moved-view alarm (场景变更) against the old reference; an operator takes the current picture
as the new reference (POST /api/cameras/{id}/diagnosis/reference) and the alarm clears by itself.
A viewer may not; a camera that is not diagnosed gets a clear refusal in the user's language."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
from sqlalchemy import select

from adapters.rtsp.sample_camera import SampleRtspServer
from gateway.api import create_app
from gateway.app import Gateway
from gateway.auth import create_user
from gateway.config.schema import load_config
from gateway.db import upgrade
from gateway.db.schema import Alarm
from tests.conftest import PASSWORD, login, wait_until, write_config
from tests.health.streams import turned, vtest_frames, write_video

CLIP_S = 3
FAST = {"check_interval_s": 0.5, "hold_s": 2, "recover_s": 2, "offline_s": 10, "frozen_s": 30}


def moved_alarms(gw: Gateway) -> list[Alarm]:
    with gw.db.session() as s:
        return list(s.scalars(select(Alarm).where(Alarm.scene == "camera_moved")))


async def test_reset_reference_clears_the_moved_view_alarm(
    vtest: Path, tmp_path: Path, aiohttp_client: Callable[..., Any]
) -> None:
    frames = vtest_frames(vtest, CLIP_S)
    video = write_video(tmp_path / "turned.mp4", turned(frames))
    with SampleRtspServer({"cam": video}, max_seconds=CLIP_S) as server:
        camera = {"id": "gate", "name": "Gate", "url": server.url("cam"), "diagnosis": FAST}
        gw = Gateway(load_config(write_config(tmp_path, cameras=[camera]), environ={}), analyse=True)
        upgrade(gw.db.engine)
        with gw.db.session() as s:
            for role in ("operator", "viewer"):
                create_user(s, role, PASSWORD, role)
        references = gw.config.storage.root / "references"
        references.mkdir(parents=True)
        cv2.imwrite(str(references / "gate.jpg"), frames[0])  # drawn on the view before it was turned
        client = await aiohttp_client(create_app(gw))
        operator, viewer = await login(client, "operator"), await login(client, "viewer")
        url = "/api/cameras/gate/diagnosis/reference"

        raised = await wait_until(lambda: moved_alarms(gw), 40, "the moved-view alarm")
        assert [a.status for a in raised] == ["raised"]

        r = await client.post(url, headers=viewer)
        assert r.status == 403
        r = await client.post(url, headers=operator)
        assert r.status == 200, await r.text()
        answer = await r.json()
        assert answer["camera_id"] == "gate" and answer["diagnosis"]["reference"] is True

        cleared = await wait_until(
            lambda: [a for a in moved_alarms(gw) if a.status == "cleared"], 30, "the clear after the reset"
        )
        assert len(cleared) == 1 and len(moved_alarms(gw)) == 1
        assert gw.health.faults("gate") == []
        stored = cv2.imread(str(references / "gate.jpg"), cv2.IMREAD_GRAYSCALE)
        assert stored is not None
        original = cv2.cvtColor(frames[0], cv2.COLOR_BGR2GRAY)
        assert stored.shape == original.shape and float(abs(stored.astype(int) - original).mean()) > 5

        r = await client.post(
            "/api/cameras/nope/diagnosis/reference", headers={**operator, "Accept-Language": "zh"}
        )
        assert r.status == 409
        error = (await r.json())["error"]
        assert "未在本网关进行视频诊断" in error["message"] and "start it" in error["details"]["message_en"]
        r = await client.post("/api/cameras/bad%20id/diagnosis/reference", headers=operator)
        assert r.status == 400
