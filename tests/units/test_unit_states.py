"""Unit run states (装置开停工状态) switching a real scene on a real stream: the intrusion scene on the
sample camera is suppressed while its unit runs (audited), raises with priority 4 once a hot-work
permit is active (set over MQTT through a private Mosquitto broker), and is suppressed again when the
plant's system sets the unit back to running over HTTP with a token that holds only units:write."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from sqlalchemy import select

from gateway.alarms.lifecycle import Change
from gateway.api import create_app
from gateway.app import Gateway
from gateway.auth import issue_token
from gateway.config.schema import load_config
from gateway.db import upgrade
from gateway.db.schema import Alarm, UnitAudit
from gateway.models.pack import import_pack
from gateway.units.mqtt import parse_payload
from gateway.units.states import UnitError
from tests.conftest import PASSWORD, login, make_gateway, wait_until, write_config
from tests.peers.mosquitto import MosquittoBroker, find_mosquitto

CARDS = Path(__file__).resolve().parents[2] / "config" / "models"
WALKWAY = [[0.15, 0.28], [1.0, 0.28], [1.0, 1.0], [0.15, 1.0]]
needs_mosquitto = pytest.mark.skipif(
    find_mosquitto() is None, reason="Debian package mosquitto not installed"
)


def audit(gw: Gateway, kind: str) -> list[UnitAudit]:
    with gw.db.session() as s:
        return list(s.scalars(select(UnitAudit).where(UnitAudit.kind == kind).order_by(UnitAudit.id)))


def alarms(gw: Gateway) -> list[Alarm]:
    with gw.db.session() as s:
        return list(s.scalars(select(Alarm).where(Alarm.scene == "intrusion").order_by(Alarm.raised_at)))


@needs_mosquitto
async def test_unit_states_over_mqtt_and_http_switch_the_scene_and_its_priority(
    tmp_path: Path, rtsp: Any, models_dir: Path, aiohttp_client: Callable[..., Any]
) -> None:
    broker = MosquittoBroker()
    broker.start()
    try:
        camera = {
            "id": "yard",
            "name": "Yard",
            "url": rtsp.url("vtest"),
            "unit": "cdu",
            "diagnosis": {"enabled": False},
            "scenes": [
                {
                    "scene": "intrusion",
                    "regions": [{"name": "walkway", "polygon": WALKWAY}],
                    "min_duration_s": 1,
                    "unit_rules": {"running": "suppress", "hot_work": {"action": "raise", "priority": 4}},
                }
            ],
        }
        plant = {
            "units": [{"id": "cdu", "name": "常减压装置", "state": "running"}],
            "mqtt": {"host": broker.host, "port": broker.port, "topic_prefix": "plant/units", "retry_s": 1},
        }
        gw = Gateway(
            load_config(write_config(tmp_path, cameras=[camera], plant=plant), environ={}), analyse=True
        )
        upgrade(gw.db.engine)
        pack = tmp_path / "pack"
        pack.mkdir()
        (pack / "yolox_nano").symlink_to(models_dir / "yolox_nano")
        import_pack(gw.db, gw.config.storage.root, pack, CARDS)
        client = await aiohttp_client(create_app(gw))
        with gw.db.session() as s:
            secret, _ = issue_token(s, "dcs-bridge", "machine", "admin", {"units:write"})
        dcs = {"Authorization": f"Bearer {secret}"}

        # running: the scene sees people on the walkway, but its alarm is suppressed and audited
        await wait_until(lambda: audit(gw, "suppressed"), 60, "a suppressed intrusion")
        assert alarms(gw) == []
        row = audit(gw, "suppressed")[0]
        assert (row.unit_id, row.old_state, row.camera_id, row.scene, row.region) == (
            "cdu",
            "running",
            "yard",
            "intrusion",
            "walkway",
        )
        assert (
            "suppressed while unit cdu is running" in gw.analytics.runners["yard"].scene_status()["intrusion"]
        )

        # MQTT: a hot-work permit -> the intrusion alarm is raised with priority 4 (qualified, audited)
        await wait_until(lambda: gw.unit_feeds.feeds[0].connected, 20, "the MQTT subscription")
        async with aiomqtt.Client(broker.host, broker.port, identifier="permit-system") as pub:
            await pub.publish(
                "plant/units/cdu/state", b'{"state": "hot_work", "actor": "permit 2026-117"}', qos=1
            )
        raised = await wait_until(lambda: alarms(gw), 60, "the intrusion alarm")
        assert [(a.priority, a.status) for a in raised] == [(4, "raised")]
        assert audit(gw, "qualified")[0].details["priority"] == [2, 4]
        changes = [(r.old_state, r.new_state, r.via, r.actor) for r in audit(gw, "state")]
        assert changes[-1] == ("running", "hot_work", "mqtt", "permit 2026-117")

        # HTTP with a units:write-only token: back to running; the alarm cleared, none raised again
        r = await client.put("/api/units/cdu/state", json={"state": "running", "actor": "DCS"}, headers=dcs)
        assert r.status == 200, await r.text()
        assert (await r.json())["changed"] is True
        await asyncio.to_thread(gw.lifecycle.apply, raised[0].id, Change("clear", "operator"))
        suppressed_before = len(audit(gw, "suppressed"))
        await wait_until(lambda: len(audit(gw, "suppressed")) > suppressed_before, 60, "suppression again")
        assert len(alarms(gw)) == 1
        assert audit(gw, "state")[-1].via == "http" and audit(gw, "state")[-1].actor == "dcs-bridge: DCS"
        # the token holds only units:write
        assert (await client.get("/api/alarms", headers=dcs)).status == 403
    finally:
        broker.cleanup()


@pytest.fixture
def gateway(tmp_path: Path) -> Gateway:
    return make_gateway(
        tmp_path,
        users=("viewer", "admin"),
        start=True,
        plant={"units": [{"id": "cdu", "name": "常减压装置"}]},
        cameras=[{"id": "c1", "name": "C1", "url": "rtsp://127.0.0.1:1/x", "unit": "cdu"}],
    )


async def test_units_api_reads_sets_and_refuses_clearly(client: Any) -> None:
    viewer, admin = await login(client, "viewer"), await login(client, "admin")
    r = await client.get("/api/units", headers=viewer)
    assert r.status == 200
    [unit] = (await r.json())["items"]
    assert (unit["id"], unit["state"], unit["state_zh"], unit["cameras"]) == (
        "cdu",
        "running",
        "运行",
        ["c1"],
    )
    # a viewer may not set states
    r = await client.put("/api/units/cdu/state", json={"state": "maintenance"}, headers=viewer)
    assert r.status == 403
    # an unknown state is refused with the list of states, nothing stored
    r = await client.put("/api/units/cdu/state", json={"state": "exploded"}, headers=admin)
    assert r.status == 422 and "state" in (await r.json())["error"]["message"]
    r = await client.put("/api/units/nope/state", json={"state": "maintenance"}, headers=admin)
    body = await r.json()
    assert r.status == 404 and "PUT /api/units/nope" in body["error"]["message"]
    assert "没有装置" in body["error"]["details"]["message_zh"]
    r = await client.put("/api/units/bad id!/state", json={"state": "maintenance"}, headers=admin)
    assert r.status == 400
    r = await client.put("/api/units/cdu/state", json={"state": "maintenance"}, headers=admin)
    assert (await r.json())["changed"] is True
    r = await client.put("/api/units/cdu/state", json={"state": "maintenance"}, headers=admin)
    assert (await r.json())["changed"] is False  # already so: no second audit row
    r = await client.get("/api/units/audit?unit=cdu", headers=viewer)
    items = (await r.json())["items"]
    assert [(i["old_state"], i["new_state"], i["via"]) for i in items] == [
        ("running", "maintenance", "http"),
        (None, "running", "config"),
    ]
    assert items[0]["actor"] == "admin"
    r = await client.put("/api/units/flare", json={"name": "火炬"}, headers=admin)
    assert r.status == 200 and (await r.json())["state"] == "running"


def test_mqtt_payloads() -> None:
    assert parse_payload(b"hot_work") == ("hot_work", None)
    assert parse_payload(b' {"state": "lifting", "actor": "crane-7"} ') == ("lifting", "crane-7")
    for bad in (b"{not json", b'{"state": 3}', b"\xff\xfe", b"x" * 5000):
        with pytest.raises(UnitError):
            parse_payload(bad)


_ = PASSWORD
