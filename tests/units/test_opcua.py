"""Unit states from a real OPC UA server on loopback (asyncua's own server, optional extra `opcua`):
a node per unit; writing hot_work (or a state index) on the server changes the unit's state, audited
with via "opcua"; a value that is no state is dropped and changes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.config.plant import PlantConfig, UnitsOpcUaConfig
from gateway.db import Database, upgrade
from gateway.units.states import UnitStates
from tests.conftest import wait_until
from tests.peers.ports import free_port

asyncua = pytest.importorskip("asyncua", reason="the opcua extra (asyncua) is not installed")


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, Any]]:
    srv = asyncua.Server()
    await srv.init()
    url = f"opc.tcp://127.0.0.1:{free_port()}/vigil/"
    srv.set_endpoint(url)
    ns = await srv.register_namespace("urn:plant:units")
    units = await srv.nodes.objects.add_object(ns, "Units")
    cdu = await units.add_variable(asyncua.ua.NodeId("CDU.State", ns), "CDU.State", "running")
    await cdu.set_writable()
    async with srv:
        yield url, cdu


async def test_opcua_node_changes_set_the_unit_state(server: tuple[str, Any], tmp_path: Path) -> None:
    from gateway.units.opcua import UnitsOpcUaClient

    url, node = server
    db = Database(f"sqlite:///{tmp_path / 'v.db'}")
    upgrade(db.engine)
    units = UnitStates(db, PlantConfig.model_validate({"units": [{"id": "cdu", "state": "running"}]}))
    await asyncio.to_thread(units.load)
    config = UnitsOpcUaConfig(url=url, nodes={"cdu": node.nodeid.to_string()}, retry_s=1)
    client = UnitsOpcUaClient(config, units)
    await client.start()
    try:
        await wait_until(lambda: client.connected, 20, "the OPC UA subscription")
        await node.write_value("hot_work")
        await wait_until(lambda: units.state("cdu") == "hot_work", 20, "hot_work from OPC UA")
        await node.write_value("exploded")
        await wait_until(lambda: client.rejected >= 1, 20, "the bad value dropped")
        assert units.state("cdu") == "hot_work"
        await node.write_value("lifting")
        await wait_until(lambda: units.state("cdu") == "lifting", 20, "lifting from OPC UA")
        audit = await asyncio.to_thread(units.audit, "cdu")
        assert [(a["new_state"], a["via"]) for a in audit[:2]] == [
            ("lifting", "opcua"),
            ("hot_work", "opcua"),
        ]
    finally:
        await client.stop()
        db.dispose()
