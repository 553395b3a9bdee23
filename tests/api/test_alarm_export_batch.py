"""The alarm list's export (CSV and XLSX, the list's filters, times on the site's clock), batch
confirm/reject with one reason, and GET /api/site, against a seeded database."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from gateway.app import Gateway
from gateway.auth import create_user
from gateway.cli.seed import seed
from gateway.config.schema import load_config
from gateway.db import upgrade
from gateway.db.schema import Alarm, AlarmRevision
from gateway.times import as_utc
from tests.conftest import PASSWORD, login, write_config

TZ = "Asia/Shanghai"


@pytest.fixture
def gateway(tmp_path: Path) -> Gateway:
    config = load_config(write_config(tmp_path, site={"timezone": TZ}), environ={})
    gw = Gateway(config, analyse=False)
    upgrade(gw.db.engine)
    with gw.db.session() as s:
        for role in ("admin", "operator", "viewer"):
            create_user(s, role, PASSWORD, role)
    seed(gw.db, gw.store, cameras=2, alarms=40, days=3, seed_value=3, timezone=TZ)
    return gw


def stored(gw: Gateway) -> dict[str, Alarm]:
    with gw.db.session() as s:
        return {a.id: a for a in s.scalars(select(Alarm))}


async def test_site_names_the_zone(client: TestClient, gateway: Gateway) -> None:
    r = await client.get("/api/site", headers=await login(client, "viewer"))
    assert r.status == 200
    assert (await r.json())["timezone"] == TZ
    client.session.cookie_jar.clear()  # the login's session cookie
    assert (await client.get("/api/site")).status == 401


async def test_csv_export_has_the_lists_alarms_on_the_sites_clock(
    client: TestClient, gateway: Gateway
) -> None:
    viewer = await login(client, "viewer")
    alarms = stored(gateway)
    some = sorted(alarms.values(), key=lambda a: a.occurred_at)
    since, until = as_utc(some[5].occurred_at), as_utc(some[30].occurred_at)
    params = {"since": since.isoformat(), "until": until.isoformat(), "status": "open"}
    listed = await client.get("/api/alarms", params={**params, "limit": "500"}, headers=viewer)
    want = [a["id"] for a in (await listed.json())["items"]]
    assert want, "the seed has open alarms in the range"

    r = await client.get("/api/alarms/export", params={**params, "format": "csv"}, headers=viewer)
    assert r.status == 200, await r.text()
    assert r.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in r.headers["Content-Disposition"]
    text = (await r.read()).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][0] == "报警编号" and TZ in rows[0][1]
    assert [row[0] for row in rows[1:]] == want
    zone = ZoneInfo(TZ)
    for row in rows[1:]:
        a = alarms[row[0]]
        assert row[1] == as_utc(a.occurred_at).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
        assert row[8] in ("待确认", "已确认", "已处置")

    r = await client.get("/api/alarms/export", params={"lang": "en", "camera_id": "nobody"}, headers=viewer)
    rows = list(csv.reader(io.StringIO((await r.read()).decode("utf-8-sig"))))
    assert rows == [rows[0]] and rows[0][0] == "Alarm id"
    for bad in ({"format": "pdf"}, {"lang": "fr"}, {"since": "yesterday"}):
        r = await client.get("/api/alarms/export", params=bad, headers=viewer)
        assert r.status == 400, bad
    client.session.cookie_jar.clear()
    assert (await client.get("/api/alarms/export")).status == 401


async def test_xlsx_export_opens_in_openpyxl(client: TestClient, gateway: Gateway) -> None:
    from openpyxl import load_workbook

    viewer = await login(client, "viewer")
    r = await client.get("/api/alarms/export", params={"format": "xlsx"}, headers=viewer)
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(await r.read()), read_only=True).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "报警编号"
    assert sorted(str(row[0]) for row in rows[1:]) == sorted(stored(gateway))


async def test_batch_confirm_and_reject_with_one_reason(client: TestClient, gateway: Gateway) -> None:
    operator = await login(client, "operator")
    alarms = stored(gateway)
    raised = sorted(a.id for a in alarms.values() if a.status == "raised")
    closed = next(a.id for a in alarms.values() if a.status == "closed")
    assert len(raised) >= 4

    body = {"ids": [*raised[:2], closed, "nope"], "action": "reject", "reason": "板房反光，非人员"}
    r = await client.post("/api/alarms/batch", json=body, headers=operator)
    assert r.status == 200, await r.text()
    out = await r.json()
    assert (out["done"], out["failed"]) == (2, 2)
    assert [x["error"] for x in out["results"] if not x["ok"]] == ["refused", "not_found"]
    after = stored(gateway)
    for alarm_id in raised[:2]:
        assert after[alarm_id].status == "rejected"
        assert after[alarm_id].verdict_reason == "板房反光，非人员"
    assert after[closed].status == "closed"

    r = await client.post(
        "/api/alarms/batch",
        json={"ids": raised[2:4], "action": "confirm", "reason": "巡检确认"},
        headers=operator,
    )
    assert (await r.json())["done"] == 2
    with gateway.db.session() as s:
        notes = s.scalars(
            select(AlarmRevision.note).where(
                AlarmRevision.alarm_id.in_(raised[2:4]), AlarmRevision.action == "confirmed"
            )
        ).all()
    assert list(notes) == ["巡检确认", "巡检确认"]
    assert {stored(gateway)[i].status for i in raised[2:4]} == {"confirmed"}


async def test_batch_refuses_bad_requests_and_viewers(client: TestClient, gateway: Gateway) -> None:
    operator, viewer = await login(client, "operator"), await login(client, "viewer")
    raised = next(a.id for a in stored(gateway).values() if a.status == "raised")
    before = {a.id: (a.status, a.revision) for a in stored(gateway).values()}
    for body in (
        {"ids": [raised], "action": "reject"},  # no reason
        {"ids": [raised], "action": "reject", "reason": "  "},
        {"ids": [], "action": "confirm"},
        {"ids": [raised] * 201, "action": "confirm"},
        {"ids": [raised], "action": "close"},
        {"ids": [raised], "action": "confirm", "extra": 1},
    ):
        r = await client.post("/api/alarms/batch", json=body, headers=operator)
        assert r.status == 422, body
    r = await client.post("/api/alarms/batch", json={"ids": [raised], "action": "confirm"}, headers=viewer)
    assert r.status == 403
    assert {a.id: (a.status, a.revision) for a in stored(gateway).values()} == before


async def test_a_bound_with_the_sites_offset_selects_the_same_alarms_as_in_utc(
    client: TestClient, gateway: Gateway
) -> None:
    """The console sends the site's midnights with their offset (+08:00); SQLite keeps UTC text."""
    viewer = await login(client, "viewer")
    zone = ZoneInfo(TZ)
    some = sorted(stored(gateway).values(), key=lambda a: a.occurred_at)
    since = as_utc(some[10].occurred_at)
    until = as_utc(some[25].occurred_at)
    ids = []
    for lo, hi in ((since, until), (since.astimezone(zone), until.astimezone(zone))):
        r = await client.get(
            "/api/alarms",
            params={"since": lo.isoformat(), "until": hi.isoformat(), "limit": "500"},
            headers=viewer,
        )
        ids.append([a["id"] for a in (await r.json())["items"]])
    assert ids[0] == ids[1]
    assert len(ids[0]) >= 16  # both ends included
