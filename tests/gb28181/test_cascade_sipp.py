"""Cascade (lower-platform) role against SIPp acting as a superior platform."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from adapters.gb28181.cascade import CascadeAgent, CascadeEvent, SuperiorConfig
from adapters.gb28181.manscdp import CatalogItem
from adapters.gb28181.sip.transaction import Timers
from tests.gb28181.sipp import Sipp

pytestmark = pytest.mark.timeout(90)

OUR_ID = "34020000002000000009"
CHANNELS = [
    CatalogItem("34020000001310000101", "Reactor-A", civil_code="3402000000", parent_id=OUR_ID, ptz_type=3),
    CatalogItem("34020000001310000102", "Tank-Farm", civil_code="3402000000", parent_id=OUR_ID, ptz_type=1),
    CatalogItem("34020000001310000103", "Gate", civil_code="3402000000", parent_id=OUR_ID, status="OFF"),
]


def superior(port: int, password: str = "uplink-pw") -> SuperiorConfig:  # noqa: S107
    return SuperiorConfig(
        name="park",
        server_id="34020000002000000100",
        server_domain="3402000000",
        host="127.0.0.1",
        port=port,
        local_id=OUR_ID,
        local_domain="3402000000",
        password=password,
        channels=list(CHANNELS),
        keepalive_interval=3600,
        alarm_timeout=5,
    )


async def wait_event(agent: CascadeAgent, kind: str, within: float = 10.0) -> CascadeEvent:
    async def _wait() -> CascadeEvent:
        while True:
            ev = await agent.events.get()
            if ev.kind == kind:
                return ev

    return await asyncio.wait_for(_wait(), within)


async def test_register_catalog_keepalive_alarm_with_superior(tmp_path: Path) -> None:
    sipp = Sipp("superior_main.xml", tmp_path, ooc="superior_ooc.xml")
    agent = CascadeAgent("127.0.0.1", 0, [superior(sipp.port)], timers=Timers().scaled(0.2), tcp=False)
    await agent.start(run_links=False)
    sipp.args.insert(1, f"127.0.0.1:{agent.endpoint.port}")
    link = agent.link("park")
    try:
        await sipp.start()
        assert await link.register()
        assert link.registered
        assert await link.send_keepalive()
        assert (await wait_event(agent, "query")).detail == "Catalog"
        result = await link.send_alarm(CHANNELS[0].device_id, alarm_type=6, description="helmet missing")
        assert result.delivered, result.reason
        assert result.reason == "Response OK"
        (await sipp.wait()).check()
    finally:
        await sipp.stop()
        await agent.close(unregister=False)


async def test_wrong_uplink_password_is_refused(tmp_path: Path) -> None:
    sipp = Sipp("superior_main.xml", tmp_path, ooc="superior_ooc.xml")
    agent = CascadeAgent(
        "127.0.0.1", 0, [superior(sipp.port, "wrong")], timers=Timers().scaled(0.2), tcp=False
    )
    await agent.start(run_links=False)
    sipp.args.insert(1, f"127.0.0.1:{agent.endpoint.port}")
    try:
        await sipp.start()
        assert not await agent.link("park").register()
        assert (await wait_event(agent, "register_failed")).link == "park"
        (await sipp.wait()).check()
    finally:
        await sipp.stop()
        await agent.close(unregister=False)
