"""Issue 19 hardening of the GB/T 28181 roles, each case against a peer on real loopback sockets: our own
cascade role as the NVR (a different SIP stack path than the registrar it talks to), SIPp, or raw sockets.

- item 1: an NVR's alarms from different channels in the same second with the same type are all stored;
- item 2: REGISTER's Date is built in the site's zone, the zone alarm times are read in;
- item 3: one-time digest nonces (replay refused, stale=true), REGISTER failure limits, source binding;
- item 8: received/rport in the top Via, TCP retransmission on a new connection, 400 for malformed requests
  with throttled logs, the RTP port range, and no retry-timer wait after a device re-registers.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from adapters.gb28181.cascade import CascadeAgent, SuperiorConfig
from adapters.gb28181.sip.transaction import Timers
from gateway.api import create_app
from gateway.app import Gateway
from gateway.config.schema import load_config
from gateway.db import upgrade
from gateway.db.schema import Alarm
from tests.conftest import wait_until, write_config

pytestmark = pytest.mark.timeout(90)

SERVER_ID = "34020000002000000001"
DOMAIN = "3402000000"
NVR = "34020000001180000001"  # type 118: NVR
NVR_CHANNELS = ["34020000001310000011", "34020000001310000012"]
PASSWORD = "nvr-secret"  # noqa: S105
T = Timers().scaled(0.1)


def server_config(**extra: Any) -> dict[str, Any]:
    return {"server_id": SERVER_ID, "domain": DOMAIN, "host": "127.0.0.1", "port": 0, "tcp": False, **extra}


def gateway(tmp: Path, **sections: Any) -> Gateway:
    gw = Gateway(load_config(write_config(tmp, **sections), environ={}), analyse=False)
    upgrade(gw.db.engine)
    return gw


def nvr_agent(port: int, password: str = PASSWORD, transport: str = "UDP") -> CascadeAgent:
    """Our cascade role standing in for an NVR that registers to the gateway's upper platform."""
    sup = SuperiorConfig(
        "gateway",
        SERVER_ID,
        DOMAIN,
        "127.0.0.1",
        port,
        NVR,
        DOMAIN,
        password,
        transport=transport,  # type: ignore[arg-type]
        keepalive_interval=3600,
        alarm_timeout=5,
    )
    return CascadeAgent("127.0.0.1", 0, [sup], timers=T, tcp=transport == "TCP")


# ------------------------------------------------------------------------------------------- item 1


async def test_nvr_alarms_of_two_channels_in_the_same_second_are_both_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aiohttp_client: Any
) -> None:
    monkeypatch.setenv("VIGIL_TEST_GB_NVR_PW", PASSWORD)
    gw = gateway(tmp_path, gb28181={"server": server_config(password_env="VIGIL_TEST_GB_NVR_PW")})
    client = await aiohttp_client(create_app(gw))
    upper = gw.gb28181.upper
    assert upper is not None
    agent = nvr_agent(upper.port)
    await agent.start(run_links=False)
    link = agent.link("gateway")
    try:
        assert await link.register()
        when = "2026-11-21T19:30:00"
        for channel in NVR_CHANNELS:  # same second, same method and type, two channels
            result = await link.send_alarm(channel, alarm_type=6, time=when, description="intrusion")
            assert result.delivered, result.reason
        # the first channel's alarm resent (the NVR unsure): still a repeat
        assert (await link.send_alarm(NVR_CHANNELS[0], alarm_type=6, time=when, description="x")).delivered

        def channels() -> list[str]:
            with gw.db.session() as s:
                return sorted(d["channel_id"] for d in s.scalars(select(Alarm.details)))

        await wait_until(lambda: len(channels()) >= 2, 10, "both channels' alarms stored")
        await asyncio.sleep(0.3)  # the resend, handled after them, adds nothing
        assert channels() == NVR_CHANNELS
    finally:
        await agent.close(unregister=False)
        await client.close()
