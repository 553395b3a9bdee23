"""`vigil uplink status` (and GET /api/uplinks) show a target's last error while it fails, and none once
everything was delivered again (issue 19 item 9: the error of an outage stayed after the backlog drained)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gateway.api import create_app
from gateway.db.schema import UplinkTarget
from tests.alarms.test_alarm_lifecycle import raise_alarm
from tests.conftest import wait_until
from tests.delivery.test_uplink_delivery import SECRET, auth, http_target, make_gateway, pending
from tests.peers.http_receiver import HttpReceiver


def stored_error(gw: Any) -> str | None:
    with gw.db.session() as s:
        return s.scalar(select(UplinkTarget.last_error).where(UplinkTarget.name == "park"))


async def test_last_error_is_cleared_once_delivered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aiohttp_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.cli import main

    receiver = HttpReceiver(secret=SECRET)
    await receiver.start()
    gw = make_gateway(tmp_path, [http_target(receiver.url)], monkeypatch)
    await receiver.stop()  # the park platform is down
    client = await aiohttp_client(create_app(gw))

    async def last_error() -> Any:
        return (await (await client.get("/api/uplinks", headers=auth(gw))).json())["items"][0]["last_error"]

    try:
        await asyncio.to_thread(raise_alarm, gw, "outage")
        await wait_until(lambda: stored_error(gw), 10, "a failed attempt recorded")
        assert await last_error()
        await receiver.start()  # back on the same port
        await wait_until(lambda: pending(gw) == 0, 30, "the backlog delivered")
        assert await last_error() is None
        capsys.readouterr()
        assert main(["--config", str(tmp_path / "gateway.yaml"), "uplink", "status", "--json"]) == 0
        rows = json.loads(capsys.readouterr().out)
        assert [(r["name"], r["pending"], r["delivered"], r["last_error"]) for r in rows] == [
            ("park", 0, 1, None)
        ]
    finally:
        await client.close()
        await receiver.stop()
