"""Alarm KPIs against direct SQL on seeded alarms, on SQLite and PostgreSQL; the API route and its CSV."""

# The direct SQL is assembled from this file's constant fragments (values are bound parameters).
# ruff: noqa: S608

from __future__ import annotations

import csv
import datetime as dt
import io
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from gateway.alarms.kpi import FIELDS, alarm_kpis, most_within
from gateway.db import Database, upgrade
from gateway.db.schema import Alarm, AlarmRevision, Camera, Disposal
from tests.conftest import fresh_database, login, make_gateway

TZ = ZoneInfo("Asia/Shanghai")
SINCE = dt.datetime(2026, 3, 8, 16, 0, tzinfo=dt.UTC)  # 2026-03-09 00:00 in Shanghai
UNTIL = dt.datetime(2026, 3, 11, 16, 0, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 3, 11, 4, 0, tzinfo=dt.UTC)  # inside the period: it counts up to now
CAMERAS = {"cam1": "tank farm", "cam2": "loading bay", "cam3": "loading bay"}


def seed(db: Database) -> None:
    """About 200 alarms at whole seconds: verdicts, confirmations, disposals, open ones, floods,
    bursts (for the 10-minute peak) and same-target repeats (some of them chattering)."""
    rng = random.Random(16)
    with db.session() as s:
        for cam in CAMERAS:
            s.add(Camera(id=cam, name=f"Camera {cam}", stream_url="rtsp://x/y"))
        s.flush()
        n = 0
        for i in range(200):
            cam = rng.choice(list(CAMERAS))
            scene = rng.choice(["helmet", "intrusion", "smoking"])
            if i < 12:  # a burst: 12 alarms within 11 minutes on cam1
                raised = dt.datetime(2026, 3, 9, 2, 0, tzinfo=dt.UTC) + dt.timedelta(seconds=55 * i)
                cam = "cam1"
            else:
                raised = SINCE - dt.timedelta(hours=6) + dt.timedelta(seconds=rng.randrange(0, 80 * 3600))
            source = "video" if i % 17 == 0 else "live"
            kind = "flood" if i % 23 == 0 else "event"
            alarm = Alarm(
                id=f"A{n:025d}",
                camera_id=cam,
                scene=scene,
                event_key=f"{cam}/{scene}/r{i}",
                status=rng.choice(["raised", "confirmed", "disposed", "cleared", "closed", "rejected"]),
                occurred_at=raised - dt.timedelta(seconds=3),
                raised_at=raised,
                tags={"area": CAMERAS[cam]} if i % 5 else {},
                source=source,
                video_job_id="J" * 26 if source == "video" else None,
                kind=kind,
                last_repeat_at=raised + dt.timedelta(seconds=rng.randrange(0, 1800))
                if kind == "flood"
                else None,
            )
            n += 1
            if rng.random() < 0.7:
                alarm.confirmed_at = raised + dt.timedelta(seconds=rng.choice([0, 5, 29, 30, 31, 60, 600]))
                alarm.verdict = rng.choice(["true_positive", "true_positive", "false_positive"])
            s.add(alarm)
            s.flush()
            if alarm.verdict == "true_positive" and rng.random() < 0.8:
                for _ in range(rng.choice([1, 2])):
                    handled = raised + dt.timedelta(seconds=rng.choice([60, 1799, 1800, 1801, 7200]))
                    s.add(Disposal(alarm_id=alarm.id, handler="x", handled_at=handled, result="done"))
            if rng.random() < 0.25:  # same-target repeats: 3 to 6, 10 to 25 s apart
                at = raised
                for k in range(rng.randrange(3, 7)):
                    at += dt.timedelta(seconds=rng.randrange(10, 26))
                    s.add(
                        AlarmRevision(
                            alarm_id=alarm.id,
                            revision=k + 2,
                            action="repeated",
                            actor="analyzer",
                            at=at,
                            changes={},
                            note="same_target",
                        )
                    )
                # a cooldown merge never makes a target chatter
                s.add(
                    AlarmRevision(
                        alarm_id=alarm.id,
                        revision=20,
                        action="repeated",
                        actor="analyzer",
                        at=at,
                        changes={},
                        note="cooldown",
                    )
                )


def sql_figures(db: Database, where: str, params: dict[str, Any]) -> dict[str, Any]:
    """Every KPI by direct SQL over the alarms ``where`` selects (alias a), in whole seconds."""
    pg = db.engine.dialect.name == "postgresql"

    def epoch(col: str) -> str:
        return (
            f"CAST(extract(epoch FROM {col}) AS BIGINT)" if pg else f"CAST(strftime('%s', {col}) AS INTEGER)"
        )

    base = "a.occurred_at >= :since AND a.occurred_at < :until AND a.source = 'live'" + (
        f" AND {where}" if where else ""
    )
    p = {"since": SINCE, "until": UNTIL, "now": NOW, **params}
    b_base = base.replace("a.", "b.")
    q = {
        "alarms": f"SELECT count(*) FROM alarms a WHERE {base}",
        "confirmed_30s": f"SELECT count(*) FROM alarms a WHERE {base} AND a.confirmed_at IS NOT NULL "
        f"AND {epoch('a.confirmed_at')} - {epoch('a.raised_at')} <= 30",
        "confirmed_true": f"SELECT count(*) FROM alarms a WHERE {base} AND a.verdict = 'true_positive'",
        "disposed_30min": f"SELECT count(*) FROM alarms a WHERE {base} AND a.verdict = 'true_positive' AND "
        f"(SELECT min({epoch('d.handled_at')}) FROM alarm_disposals d WHERE d.alarm_id = a.id) "
        f"- {epoch('a.raised_at')} <= 1800",
        "open_over_24h": f"SELECT count(*) FROM alarms a WHERE {base} AND a.status IN "
        f"('raised', 'confirmed', 'disposed') AND {epoch(':now')} - {epoch('a.raised_at')} > 86400",
        "peak_10min": "SELECT coalesce(max(c), 0) FROM (SELECT (SELECT count(*) FROM alarms b "
        f"WHERE {b_base} "
        f"AND {epoch('b.raised_at')} >= {epoch('a.raised_at')} AND {epoch('b.raised_at')} < "
        f"{epoch('a.raised_at')} + 600) AS c FROM alarms a WHERE {base}) AS peaks",
        "chattering": f"SELECT count(*) FROM alarms a WHERE {base} AND EXISTS (SELECT 1 FROM "
        "alarm_revisions r1 WHERE r1.alarm_id = a.id AND r1.action = 'repeated' AND r1.note = 'same_target' "
        "AND (SELECT count(*) FROM alarm_revisions r2 WHERE r2.alarm_id = a.id AND r2.action = 'repeated' "
        f"AND r2.note = 'same_target' AND {epoch('r2.at')} >= {epoch('r1.at')} "
        f"AND {epoch('r2.at')} < {epoch('r1.at')} + 60) > 3)",
        "flood_periods": f"SELECT count(*) FROM alarms a WHERE {base} AND a.kind = 'flood'",
        "flood_seconds": f"SELECT coalesce(sum({epoch('coalesce(a.last_repeat_at, a.raised_at)')} - "
        f"{epoch('a.raised_at')}), 0) FROM alarms a WHERE {base} AND a.kind = 'flood'",
    }
    with db.engine.connect() as conn:
        if pg:
            conn.execute(text("SET TIME ZONE 'UTC'"))  # epoch of a bound :now is read as UTC
        return {k: int(conn.execute(text(v), p).scalar() or 0) for k, v in q.items()}


def assert_matches(item: dict[str, Any], sql: dict[str, Any], hours: float) -> None:
    for name in (
        "alarms",
        "confirmed_30s",
        "confirmed_true",
        "disposed_30min",
        "open_over_24h",
        "peak_10min",
        "chattering",
        "flood_periods",
    ):
        assert item[name] == sql[name], (name, item, sql)
    assert item["flood_minutes"] == round(sql["flood_seconds"] / 60, 1)
    assert item["alarms_per_hour"] == round(sql["alarms"] / hours, 3)
    n, true = sql["alarms"], sql["confirmed_true"]
    assert item["confirmed_30s_rate"] == (round(sql["confirmed_30s"] / n, 4) if n else None)
    assert item["disposed_30min_rate"] == (round(sql["disposed_30min"] / true, 4) if true else None)


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    database = fresh_database(request, tmp_path)
    upgrade(database.engine)
    seed(database)
    yield database
    database.dispose()


def test_kpis_match_direct_sql(db: Database) -> None:
    hours = (NOW - SINCE).total_seconds() / 3600
    by: dict[str, dict[str, Any]] = {}
    with db.session() as s:
        for group in ("scene", "camera", "area", "period"):
            by[group] = alarm_kpis(s, group, SINCE, UNTIL, TZ, now=NOW)
    total = by["scene"]["total"]
    assert_matches(total, sql_figures(db, "", {}), hours)
    # The seeded data exercises every figure.
    assert total["peak_10min"] >= 11 and total["chattering"] > 0 and total["flood_periods"] > 0
    assert (
        0 < total["confirmed_30s"] < total["alarms"] and 0 < total["disposed_30min"] < total["confirmed_true"]
    )
    assert total["open_over_24h"] > 0
    for item in by["scene"]["items"]:
        assert_matches(item, sql_figures(db, "a.scene = :k", {"k": item["key"]}), hours)
    for item in by["camera"]["items"]:
        assert_matches(item, sql_figures(db, "a.camera_id = :k", {"k": item["key"]}), hours)
    pg = db.engine.dialect.name == "postgresql"
    area = "coalesce(a.tags->>'area', '')" if pg else "coalesce(json_extract(a.tags, '$.area'), '')"
    assert {it["key"] for it in by["area"]["items"]} == {"tank farm", "loading bay", ""}
    for item in by["area"]["items"]:
        assert_matches(item, sql_figures(db, f"{area} = :k", {"k": item["key"]}), hours)
    # Local days of the site (Shanghai, UTC+8 all year): each day's own hours, up to now.
    day = (
        "to_char(a.raised_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD')"
        if pg
        else ("date(a.raised_at, '+8 hours')")
    )
    keys = [it["key"] for it in by["period"]["items"]]
    assert keys == sorted(keys) and keys[0] == "2026-03-09"
    for item in by["period"]["items"]:
        start = max(SINCE, dt.datetime.fromisoformat(item["key"]).replace(tzinfo=TZ).astimezone(dt.UTC))
        end = min(NOW, start + dt.timedelta(days=1))
        day_hours = (end - start).total_seconds() / 3600
        assert_matches(item, sql_figures(db, f"{day} = :k", {"k": item["key"]}), day_hours)
    assert sum(it["alarms"] for it in by["period"]["items"]) == total["alarms"]


def test_most_within_is_half_open() -> None:
    t = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    times = [t, t + dt.timedelta(seconds=59), t + dt.timedelta(seconds=60), t + dt.timedelta(seconds=61)]
    assert most_within(times, dt.timedelta(minutes=1)) == 3  # 59, 60, 61 s; 0 and 60 s are a minute apart
    assert most_within([], dt.timedelta(minutes=1)) == 0


async def test_kpi_route_answers_json_and_csv_to_viewers_only(tmp_path: Path, aiohttp_client: Any) -> None:
    from gateway.api import create_app

    gw = make_gateway(tmp_path, users=("viewer",), site={"timezone": "Asia/Shanghai"})
    seed(gw.db)
    client = await aiohttp_client(create_app(gw))
    viewer = await login(client, "viewer")
    period = {"since": SINCE.isoformat(), "until": UNTIL.isoformat()}
    r = await client.get("/api/stats/kpi", params={**period, "group": "camera"}, headers=viewer)
    assert r.status == 200, await r.text()
    body = await r.json()
    assert body["timezone"] == "Asia/Shanghai" and body["source"] == "live"
    assert {it["key"] for it in body["items"]} == set(CAMERAS)
    assert all(it["name"] == f"Camera {it['key']}" for it in body["items"])
    # Offline video alarms count only when asked for.
    with_video = await (
        await client.get("/api/stats/kpi", params={**period, "source": "all"}, headers=viewer)
    ).json()
    assert with_video["total"]["alarms"] > body["total"]["alarms"]
    r = await client.get(
        "/api/stats/kpi", params={**period, "group": "scene", "format": "csv"}, headers=viewer
    )
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO((await r.read()).decode("utf-8-sig"))))
    assert rows[0] == ["key", "name_zh", "name_en", *FIELDS]
    assert rows[-1][0] == "(total)" and len({len(row) for row in rows}) == 1
    assert any(row[1] == "未戴安全帽" for row in rows[1:])
    assert (await client.get("/api/stats/kpi", params={"group": "shift"}, headers=viewer)).status == 400
    assert (await client.get("/api/stats/kpi", params={"source": "x"}, headers=viewer)).status == 400
    client.session.cookie_jar.clear()  # the login's session cookie
    assert (await client.get("/api/stats/kpi")).status == 401
