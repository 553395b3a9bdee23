"""GB/T 28181 control as the upper platform, against a SIPp device on loopback: PTZ (DeviceControl with
the 8-byte PTZCmd of A.3, checked by the device's regexp and compared from its log) and the RecordInfo
query (history recordings, two Response pages aggregated by SumNum), both through the API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from adapters.gb28181.manscdp import ptz_cmd
from gateway.api import create_app
from gateway.app import Gateway
from gateway.config.schema import load_config
from gateway.db import upgrade
from gateway.db.schema import Camera
from tests.conftest import wait_until, write_config
from tests.delivery.test_uplink_delivery import auth
from tests.gb28181.sipp import SCENARIOS, Sipp
from tests.gb28181.test_gb28181_gateway import CHANNELS, DEVICE, DEVICE_PASSWORD, DOMAIN, SERVER_ID

pytestmark = pytest.mark.timeout(120)


def test_ptz_cmd_bytes() -> None:
    # A5H, version 0 with checksum (A + 5 + 0) mod 16 = FH, address 01H, instruction, data, sum mod 256
    assert ptz_cmd("stop") == "A50F0100000000B5"
    assert ptz_cmd("right", 0x80) == "A50F010180000036"
    assert ptz_cmd("upleft", 0x20) == "A50F010A202000FF"
    assert ptz_cmd("zoom_in", zoom_speed=15) == "A50F01100000F0B5"
    assert ptz_cmd("preset_goto", preset=3) == "A50F01820003003A"
    assert ptz_cmd("left", address=0x123)[4:6] == "23" and ptz_cmd("left", address=0x123)[12] == "0"
    for bad in ({"action": "spin"}, {"action": "left", "speed": 256}, {"action": "preset_set", "preset": 0}):
        with pytest.raises(ValueError):
            ptz_cmd(**bad)  # type: ignore[arg-type]


async def test_ptz_and_record_query_reach_the_device(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aiohttp_client: Any
) -> None:
    monkeypatch.setenv("VIGIL_TEST_GB_DEVICE_PW", DEVICE_PASSWORD)
    server = {
        "server_id": SERVER_ID,
        "domain": DOMAIN,
        "host": "127.0.0.1",
        "port": 0,
        "tcp": False,
        "password_env": "VIGIL_TEST_GB_DEVICE_PW",
    }
    camera = {"id": "gate-rtsp", "name": "RTSP gate", "url": "rtsp://127.0.0.1:9/none", "enabled": False}
    gw = Gateway(
        load_config(write_config(tmp_path, cameras=[camera], gb28181={"server": server}), environ={})
    )
    upgrade(gw.db.engine)
    client = await aiohttp_client(create_app(gw))
    upper = gw.gb28181.upper
    assert upper is not None
    uac = (SCENARIOS / "device_uac.xml").read_text(encoding="utf-8")
    (tmp_path / "device_idle.xml").write_text(uac.replace('"2500"', '"6000"'), encoding="utf-8")
    sipp = Sipp(
        str(tmp_path / "device_idle.xml"),
        tmp_path,
        remote_port=upper.port,
        ooc="device_ooc.xml",
        inf="device.csv",
        auth=(DEVICE, DEVICE_PASSWORD),
        extra=["-trace_logs", "-log_file", str(tmp_path / "device.log")],
    )
    try:
        await sipp.start()

        def channel_camera() -> bool:
            with gw.db.session() as s:
                return s.scalar(select(Camera.id).where(Camera.id == CHANNELS[0])) is not None

        await wait_until(channel_camera, 20, "the device's channels as cameras")
        url = f"/api/cameras/{CHANNELS[0]}/ptz"
        resp = await client.post(url, json={"action": "left", "speed": 128}, headers=auth(gw))
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["ptz_cmd"] == "A50F010280000037"
        resp = await client.post(url, json={"action": "left"}, headers=auth(gw, "viewer"))
        assert resp.status == 403  # PTZ needs cameras:write
        resp = await client.post(url, json={"action": "preset_goto"}, headers=auth(gw))
        assert resp.status == 422 and "preset" in (await resp.json())["error"]["message"]
        resp = await client.post("/api/cameras/gate-rtsp/ptz", json={"action": "stop"}, headers=auth(gw))
        assert resp.status == 409 and "not a GB/T 28181 channel" in (await resp.json())["error"]["message"]
        resp = await client.post("/api/cameras/nope/ptz", json={"action": "stop"}, headers=auth(gw))
        assert resp.status == 404

        records = f"/api/cameras/{CHANNELS[0]}/records"
        query = {"start": "2026-11-21T00:00:00+08:00", "end": "2026-11-21T23:59:59+08:00"}
        resp = await client.get(records, params=query, headers=auth(gw, "viewer"))
        assert resp.status == 200, await resp.text()
        items = (await resp.json())["items"]
        assert [(i["start_time"], i["end_time"], i["type"]) for i in items] == [
            ("2026-11-21T08:00:00", "2026-11-21T08:59:59", "time"),
            ("2026-11-21T09:00:00", "2026-11-21T09:59:59", "time"),
            ("2026-11-21T10:00:00", "2026-11-21T10:30:00", "alarm"),
        ]
        assert items[0]["file_path"] == "/rec/0800.mp4" and items[0]["device_id"] == CHANNELS[0]
        resp = await client.get(records, params={"start": "x", "end": "y"}, headers=auth(gw))
        assert resp.status == 400 and "ISO 8601" in (await resp.json())["error"]["message"]
        (await sipp.wait()).check()
    finally:
        await client.close()
        await sipp.stop()
    log = (tmp_path / "device.log").read_text(errors="replace")
    assert f"PTZCmd A50F010280000037 to {CHANNELS[0]}" in log, log[-2000:]
    assert "malformed PTZCmd" not in log
