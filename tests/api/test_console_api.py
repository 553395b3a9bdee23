"""The API behind the web console: statistics against direct counts on a seeded database, camera
edit/remove, scene catalogue, discovery, GB/T 28181 devices, user changes, videos, and roles."""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import shutil
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from analyzers.scenes import CATALOGUE, scene_class
from gateway.alarms.recorder import OPEN_STATUSES
from gateway.api import create_app
from gateway.app import Gateway
from gateway.auth import create_user
from gateway.cli.seed import SeedRefused, seed
from gateway.config.schema import load_config
from gateway.db import upgrade
from gateway.db.schema import Alarm, ApiToken, Camera, CameraScene, Disposal, User
from gateway.delivery.alarm_types import default_table
from gateway.i18n import has, t
from gateway.times import as_utc
from tests.conftest import PASSWORD, login, write_config

Client = TestClient
TZ = "Asia/Shanghai"
CAMERA = {
    "id": "gate-1",
    "name": "Gate",
    "location": "East gate",
    "url": "rtsp://viewer:s3cret-pw@127.0.0.1:9/main",
    "scenes": [{"scene": "intrusion", "regions": [{"name": "r1", "polygon": [[0, 0], [1, 0], [1, 1]]}]}],
}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Users and a seeded database (3 cameras, 300 alarms), made once; each test gets a copy."""
    folder = tmp_path_factory.mktemp("console-template")
    config = load_config(write_config(folder, site={"timezone": TZ}), environ={})
    gw = Gateway(config, analyse=False)
    upgrade(gw.db.engine)
    with gw.db.session() as s:
        for role in ("admin", "operator", "viewer"):
            create_user(s, role, PASSWORD, role)
    seed(gw.db, gw.store, cameras=3, alarms=300, days=30, seed_value=7, timezone=TZ)
    with gw.db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file
    gw.db.dispose()
    return folder


@pytest.fixture
def gateway(template: Path, tmp_path: Path) -> Gateway:
    shutil.copytree(template / "storage", tmp_path / "storage")
    shutil.copy(template / "vigil.db", tmp_path / "vigil.db")
    config = load_config(write_config(tmp_path, site={"timezone": TZ}), environ={})
    return Gateway(config, analyse=False)


def all_alarms(gw: Gateway) -> list[Alarm]:
    with gw.db.session() as s:
        return list(s.scalars(select(Alarm).options(selectinload(Alarm.revisions))))


def z(when: dt.datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


# --- seed ---------------------------------------------------------------------------------------


def test_seed_is_consistent_with_the_lifecycle(gateway: Gateway) -> None:
    alarms = all_alarms(gateway)
    assert len(alarms) == 300
    with gateway.db.session() as s:
        disposed = set(s.scalars(select(Disposal.alarm_id)))
        cams = {c.id: c for c in s.scalars(select(Camera))}
    assert len(cams) == 3 and all(c.origin == "seed" and c.location for c in cams.values())
    now = dt.datetime.now(dt.UTC)
    for a in alarms:
        assert a.camera_id in cams and a.event_key.startswith("seed:")
        assert as_utc(a.occurred_at) <= as_utc(a.raised_at) < now
        if a.status in ("confirmed", "disposed"):
            assert a.verdict == "true_positive" and a.confirmed_at is not None
        if a.status == "rejected":
            assert a.verdict == "false_positive" and a.verdict_reason
        if a.status == "closed":
            assert a.verdict is not None and a.closed_at is not None
            assert a.verdict == "false_positive" or a.id in disposed
        if a.id in disposed:
            assert a.verdict == "true_positive"
        assert len(a.revisions) == a.revision and a.revisions[0].action == "raised"
    assert sorted(alarms, key=lambda a: a.id) == sorted(alarms, key=lambda a: as_utc(a.raised_at))


def test_seed_refuses_a_database_with_real_alarms(gateway: Gateway) -> None:
    with gateway.db.session() as s:
        first = s.scalars(select(Alarm).limit(1)).one()
        first.event_key = "gate-1/intrusion/r1"  # now it looks like a real alarm
    with pytest.raises(SeedRefused, match="--force"):
        seed(gateway.db, gateway.store, cameras=1, alarms=1, timezone=TZ)
    report = seed(gateway.db, gateway.store, cameras=2, alarms=10, days=5, timezone=TZ, force=True)
    assert report.replaced == 299 and len(all_alarms(gateway)) == 11


# --- statistics ---------------------------------------------------------------------------------


async def test_overview_matches_direct_counts(client: Client, gateway: Gateway) -> None:
    viewer = await login(client, "viewer")
    r = await client.get("/api/stats/overview", headers=viewer)
    assert r.status == 200, await r.text()
    body = await r.json()
    tz = ZoneInfo(TZ)
    today = dt.datetime.now(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    week = today - dt.timedelta(days=today.weekday())
    alarms = all_alarms(gateway)
    for name, start in (("today", today), ("week", week)):
        chosen = [a for a in alarms if as_utc(a.occurred_at) >= start]
        assert body[name]["total"] == len(chosen)
        assert body[name]["open"] == sum(a.status in OPEN_STATUSES for a in chosen)
        assert body[name]["handled"] == len(chosen) - body[name]["open"]
        assert body[name]["by_scene"] == dict(Counter(a.scene for a in chosen))
    assert body["open_total"] == sum(a.status in OPEN_STATUSES for a in alarms)
    with gateway.db.session() as s:
        statuses = Counter(s.scalars(select(Camera.status)))
    assert body["cameras"]["total"] == 3
    for state in ("online", "offline", "error"):
        assert body["cameras"][state] == statuses.get(state, 0)
    assert body["uplinks"] == {"state": "none", "pending": 0, "dead": 0, "targets": []}
    latest = body["latest"]
    assert (
        len(latest) == 12 and [a["id"] for a in latest] == sorted((a.id for a in alarms), reverse=True)[:12]
    )
    assert latest[0]["camera_name"] and latest[0]["snapshot"].endswith("/snapshot")


def expected_groups(alarms: list[Alarm], group: str, since: dt.datetime, until: dt.datetime) -> Counter[str]:
    tz = ZoneInfo(TZ)
    out: Counter[str] = Counter()
    for a in alarms:
        when = as_utc(a.occurred_at)
        if not since <= when < until:
            continue
        local = when.astimezone(tz)
        out[
            {
                "camera": a.camera_id or "",
                "scene": a.scene,
                "region": a.region,
                "hour": f"{local.hour:02d}",
                "weekday": str(local.isoweekday()),
                "day": local.date().isoformat(),
            }[group]
        ] += 1
    return out


@pytest.mark.parametrize("group", ["camera", "scene", "hour", "day", "weekday", "region"])
async def test_alarm_groups_match_direct_counts(client: Client, gateway: Gateway, group: str) -> None:
    viewer = await login(client, "viewer")
    until = dt.datetime.now(dt.UTC).replace(microsecond=0)
    since = until - dt.timedelta(days=10)
    query = {"group": group, "since": z(since), "until": z(until), "compare": "1"}
    r = await client.get("/api/stats/alarms", params=query, headers=viewer)
    assert r.status == 200, await r.text()
    body = await r.json()
    alarms = all_alarms(gateway)
    now_counts = expected_groups(alarms, group, since, until)
    prev_counts = expected_groups(alarms, group, since - (until - since), since)
    assert body["total"] == sum(now_counts.values()) > 0
    assert body["previous"]["total"] == sum(prev_counts.values()) > 0
    assert body["previous"]["until"] == since.isoformat()
    got = {it["key"]: it["count"] for it in body["items"]}
    assert {k: v for k, v in got.items() if v} == dict(now_counts)
    if group != "day":  # days compare by position (day i against day i of the previous period)
        assert {it["key"]: it["previous"] for it in body["items"] if it["previous"]} == dict(prev_counts)
    else:
        assert len(body["items"]) in (10, 11)  # local days touched by a 10-day span
        assert {it["previous_key"]: it["previous"] for it in body["items"] if it["previous"]}.items() <= dict(
            prev_counts
        ).items()
    if group == "hour":
        assert [it["key"] for it in body["items"]] == [f"{h:02d}" for h in range(24)]
    if group == "camera":
        assert all(it["name"] and it["location"] for it in body["items"])
    if group == "scene":
        assert all(it["name_zh"] and it["name_en"] for it in body["items"])


async def test_alarm_groups_filters_and_bad_queries(client: Client, gateway: Gateway) -> None:
    viewer = await login(client, "viewer")
    cam = all_alarms(gateway)[0].camera_id or ""
    r = await client.get("/api/stats/alarms", params={"group": "scene", "camera_id": cam}, headers=viewer)
    body = await r.json()
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    assert body["total"] == sum(
        a.camera_id == cam and as_utc(a.occurred_at) >= since for a in all_alarms(gateway)
    )
    assert "previous" not in body and all("previous" not in it for it in body["items"])
    for params, problem in (
        ({"group": "planet"}, "group must be one of"),
        ({"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "since must be before until"),
        ({"since": "2020-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "at most"),
        ({"since": "yesterday"}, "ISO 8601"),
        ({"format": "xml"}, "json or csv"),
    ):
        r = await client.get("/api/stats/alarms", params=params, headers=viewer)
        assert r.status == 400 and problem in (await r.json())["error"]["message"]


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return round(values[max(0, math.ceil(p * len(values)) - 1)], 1)


async def test_disposal_statistics_match_direct_counts(client: Client, gateway: Gateway) -> None:
    viewer = await login(client, "viewer")
    until = dt.datetime.now(dt.UTC)
    since = until - dt.timedelta(days=31)
    r = await client.get("/api/stats/disposal", params={"since": z(since), "until": z(until)}, headers=viewer)
    assert r.status == 200, await r.text()
    body = await r.json()
    alarms = [a for a in all_alarms(gateway) if since <= as_utc(a.occurred_at) < until]
    with gateway.db.session() as s:
        first: dict[str, dt.datetime] = {}
        for alarm_id, handled in s.execute(select(Disposal.alarm_id, Disposal.handled_at)):
            first[alarm_id] = min(first.get(alarm_id, as_utc(handled)), as_utc(handled))
    total = body["total"]
    assert total["total"] == len(alarms) == 300
    assert total["confirmed_true"] == sum(a.verdict == "true_positive" for a in alarms) > 0
    assert total["rejected_false"] == sum(a.verdict == "false_positive" for a in alarms) > 0
    assert total["verified"] == total["confirmed_true"] + total["rejected_false"]
    assert total["disposed"] == sum(a.id in first for a in alarms) > 0
    assert total["cleared"] == sum(a.cleared_at is not None for a in alarms)
    assert total["closed"] == sum(a.status == "closed" for a in alarms) > 0
    assert total["open"] == sum(a.status in OPEN_STATUSES for a in alarms)
    assert total["handled"] == total["total"] - total["open"]
    confirm = [
        (as_utc(a.confirmed_at) - as_utc(a.raised_at)).total_seconds() for a in alarms if a.confirmed_at
    ]
    dispose = [(first[a.id] - as_utc(a.raised_at)).total_seconds() for a in alarms if a.id in first]
    for key, values in (("time_to_confirm_s", confirm), ("time_to_dispose_s", dispose)):
        stats = total[key]
        assert stats["count"] == len(values)
        assert stats["p50"] == pytest.approx(percentile(values, 0.5), abs=0.2)
        assert stats["p90"] == pytest.approx(percentile(values, 0.9), abs=0.2)
        assert stats["mean"] == pytest.approx(sum(values) / len(values), abs=0.2)
    assert sum(it["total"] for it in body["items"]) == 300
    helmet = [it for it in body["items"] if it["scene"] == "helmet"]
    if helmet:
        assert helmet[0]["name_zh"] == "未戴安全帽"


@pytest.mark.parametrize(
    "path",
    [
        "/api/stats/overview?format=csv",
        "/api/stats/alarms?group=camera&compare=1&format=csv",
        "/api/stats/alarms?group=hour&format=csv",
        "/api/stats/disposal?format=csv",
    ],
)
async def test_statistics_as_csv(client: Client, path: str) -> None:
    viewer = await login(client, "viewer")
    r = await client.get(path, headers=viewer)
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("text/csv")
    assert 'attachment; filename="vigil-' in r.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO((await r.read()).decode("utf-8-sig"))))
    assert len(rows) >= 2 and len({len(row) for row in rows}) == 1
    if "group=camera" in path:
        assert rows[0] == ["key", "name", "location", "count", "previous"]
        assert sum(int(row[3]) for row in rows[1:]) > 0
    if "group=hour" in path:
        assert len(rows) == 25


# --- alarm list filters -------------------------------------------------------------------------


async def test_alarm_list_text_region_verdict_filters_and_total(client: Client, gateway: Gateway) -> None:
    viewer = await login(client, "viewer")
    alarms = all_alarms(gateway)
    sample = alarms[0]
    cases: list[tuple[dict[str, str], Callable[[Alarm], bool]]] = [
        ({"verdict": "false_positive"}, lambda a: a.verdict == "false_positive"),
        ({"verdict": "none"}, lambda a: a.verdict is None),
        ({"region": sample.region}, lambda a: a.region == sample.region),
        ({"q": "INTRUSION"}, lambda a: "intrusion" in a.message.lower()),
        ({"q": "100%_"}, lambda a: False),  # LIKE wildcards are taken literally
        (
            {"scene": sample.scene, "status": "open"},
            lambda a: a.scene == sample.scene and a.status in OPEN_STATUSES,
        ),
    ]
    with gateway.db.session() as s:
        cam_name = s.get(Camera, sample.camera_id).name  # type: ignore[union-attr]
    cases.append(({"q": cam_name[-3:]}, lambda a: a.camera_id == sample.camera_id))
    for params, wanted in cases:
        r = await client.get("/api/alarms", params={**params, "count": "1", "limit": "5"}, headers=viewer)
        assert r.status == 200, await r.text()
        body = await r.json()
        expected = sorted((a.id for a in alarms if wanted(a)), reverse=True)
        assert body["total"] == len(expected), params
        assert [a["id"] for a in body["items"]] == expected[:5], params
    r = await client.get("/api/alarms", params={"limit": "5"}, headers=viewer)
    assert "total" not in await r.json()
    r = await client.get("/api/alarms", params={"verdict": "maybe"}, headers=viewer)
    assert r.status == 400
    r = await client.get("/api/alarms", params={"q": "x" * 101}, headers=viewer)
    assert r.status == 400


# --- cameras ------------------------------------------------------------------------------------


async def test_put_camera_changes_its_configuration(client: Client, gateway: Gateway) -> None:
    admin = await login(client, "admin")
    assert (await client.post("/api/cameras", json=CAMERA, headers=admin)).status == 201
    r = await client.get("/api/cameras/gate-1/config", headers=admin)
    config = await r.json()
    assert config["url"] == "rtsp://***@127.0.0.1:9/main"  # never the password
    config["scenes"][0]["regions"] = [
        {"name": "yard", "polygon": [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]]},
    ]
    config["scenes"][0]["exclusions"] = [{"name": "flare", "polygon": [[0.4, 0.4], [0.5, 0.4], [0.5, 0.5]]}]
    config["scenes"].append({"scene": "crowd", "params": {"min_people": 4}})
    config["location"] = "North gate"
    r = await client.put("/api/cameras/gate-1", json=config, headers=admin)
    assert r.status == 200, await r.text()
    body = await r.json()
    assert body["location"] == "North gate"
    assert sorted((s["scene"], s["regions"]) for s in body["scenes"]) == [
        ("crowd", []),
        # unit/preset null: the camera's production unit, the scene's PTZ preset (issue 17)
        (
            "intrusion",
            [{"name": "yard", "polygon": [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]], "unit": None, "preset": None}],
        ),
    ]
    with gateway.db.session() as s:
        row = s.get(Camera, "gate-1")
        assert row is not None
        assert row.stream_url == CAMERA["url"]  # the redacted URL sent back kept the stored one
        tasks = {
            t.scene: t.settings
            for t in s.scalars(select(CameraScene).where(CameraScene.camera_id == "gate-1"))
        }
    assert tasks["intrusion"]["exclusions"][0]["name"] == "flare" and tasks["crowd"]["params"] == {
        "min_people": 4
    }
    config["url"] = "rtsp://other:pw@127.0.0.1:9/new"
    assert (await client.put("/api/cameras/gate-1", json=config, headers=admin)).status == 200
    with gateway.db.session() as s:
        assert s.get(Camera, "gate-1").stream_url == "rtsp://other:pw@127.0.0.1:9/new"  # type: ignore[union-attr]


async def test_put_camera_errors(client: Client) -> None:
    admin = await login(client, "admin")
    assert (await client.post("/api/cameras", json=CAMERA, headers=admin)).status == 201
    r = await client.put("/api/cameras/gate-1", json={**CAMERA, "id": "gate-2"}, headers=admin)
    assert r.status == 422 and (await r.json())["error"]["details"][0]["field"] == "id"
    r = await client.put("/api/cameras/nope", json={**CAMERA, "id": "nope"}, headers=admin)
    assert r.status == 404
    bad_region = {
        **CAMERA,
        "scenes": [{"scene": "intrusion", "regions": [{"name": "r", "polygon": [[0, 0], [2, 0], [1, 1]]}]}],
    }
    r = await client.put("/api/cameras/gate-1", json=bad_region, headers=admin)
    body = await r.json()
    assert r.status == 422 and body["error"]["details"][0]["field"].startswith("scenes.0.regions.0.polygon")
    r = await client.put("/api/cameras/gate-1", json={**CAMERA, "colour": "red"}, headers=admin)
    assert r.status == 422 and "colour: unknown field" in (await r.json())["error"]["message"]
    r = await client.put(
        "/api/cameras/gate-1", json={**CAMERA, "scenes": [{"scene": "dancing"}]}, headers=admin
    )
    assert r.status == 422 and "unknown scene" in (await r.json())["error"]["message"]


async def test_delete_camera_keeps_its_alarms(client: Client, gateway: Gateway) -> None:
    admin = await login(client, "admin")
    cam = all_alarms(gateway)[0].camera_id
    assert cam is not None
    with gateway.db.session() as s:
        before = s.scalar(select(func.count()).select_from(Alarm).where(Alarm.camera_id == cam))
    r = await client.delete(f"/api/cameras/{cam}", headers=admin)
    assert r.status == 200
    assert await r.json() == {"id": cam, "deleted": False, "alarms_kept": before}
    with gateway.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Alarm).where(Alarm.camera_id == cam)) == before
        row = s.get(Camera, cam)
        assert row is not None and (row.enabled, row.status) == (False, "removed")
    assert (await client.delete(f"/api/cameras/{cam}", headers=admin)).status == 404
    assert (await client.put(f"/api/cameras/{cam}", json={**CAMERA, "id": cam}, headers=admin)).status == 404
    r = await client.get("/api/alarms", params={"camera_id": cam, "count": "1"}, headers=admin)
    assert (await r.json())["total"] == before
    listed = {c["id"] for c in (await (await client.get("/api/cameras", headers=admin)).json())["items"]}
    assert cam not in listed  # the console lists cameras in service; removed ones on request
    r = await client.get("/api/cameras", params={"include_removed": "1"}, headers=admin)
    assert cam in {c["id"] for c in (await r.json())["items"]}
    # A camera without alarms goes entirely; one removed can be added again.
    assert (await client.post("/api/cameras", json=CAMERA, headers=admin)).status == 201
    r = await client.delete("/api/cameras/gate-1", headers=admin)
    assert await r.json() == {"id": "gate-1", "deleted": True, "alarms_kept": 0}
    assert (await client.get("/api/cameras/gate-1", headers=admin)).status == 404
    assert (await client.post("/api/cameras", json={**CAMERA, "id": cam}, headers=admin)).status == 201


async def test_put_restarts_a_running_camera(
    tmp_path: Path, rtsp: Any, models_dir: Path, aiohttp_client: Callable[..., Awaitable[Client]]
) -> None:
    from gateway.models.pack import import_pack
    from tests.conftest import ROOT

    config = load_config(write_config(tmp_path), environ={})
    gw = Gateway(config)
    upgrade(gw.db.engine)
    import_pack(gw.db, config.storage.root, models_dir, ROOT / "config" / "models")
    with gw.db.session() as s:
        create_user(s, "admin", PASSWORD, "admin")
    client = await aiohttp_client(create_app(gw))
    admin = await login(client, "admin")
    cam = {**CAMERA, "url": rtsp.url("vtest")}
    assert (await client.post("/api/cameras", json=cam, headers=admin)).status == 201
    old = gw.analytics.runners["gate-1"]
    regions = [{"name": "lawn", "polygon": [[0.5, 0.5], [1, 0.5], [1, 1]]}]
    cam["scenes"] = [{"scene": "intrusion", "regions": regions}]
    r = await client.put("/api/cameras/gate-1", json=cam, headers=admin)
    assert r.status == 200, await r.text()
    new = gw.analytics.runners["gate-1"]
    assert new is not old and not old._thread.is_alive()
    assert [r.name for s in new.camera.scenes for r in s.regions] == ["lawn"]
    assert (await r.json())["scenes"][0]["status"].startswith("running")
    r = await client.delete("/api/cameras/gate-1", headers=admin)
    assert r.status == 200 and "gate-1" not in gw.analytics.runners and not new._thread.is_alive()


async def test_scene_catalogue(client: Client) -> None:
    viewer = await login(client, "viewer")
    r = await client.get("/api/scenes", headers=viewer)
    body = await r.json()
    scenes = {s["key"]: s for s in body["items"]}
    assert {"helmet", "crowd", "intrusion", "custom"} <= set(scenes)
    assert scenes["helmet"]["name_zh"] == "未戴安全帽" and scenes["helmet"]["name_en"] == "No safety helmet"
    assert scenes["crowd"]["params_schema"]["properties"]["min_people"]
    assert scenes["sleeping"]["uses_pose"] is True and scenes["helmet"]["default_model"]
    assert "regions" in body["scene_config_schema"]["properties"]


async def test_scene_catalogue_describes_every_scene_for_the_console(client: Client) -> None:
    """The console keeps no scene list: /api/scenes names every catalogue scene and describes its
    parameters (label, description, type, default) from the scene's Params model."""
    viewer = await login(client, "viewer")
    body = await (await client.get("/api/scenes", headers=viewer)).json()
    scenes = {s["key"]: s for s in body["items"]}
    assert list(scenes) == list(CATALOGUE)
    table = default_table()
    for key, info in CATALOGUE.items():
        s = scenes[key]
        assert s["name_zh"] and s["name_en"] and s["sample_fps"] == info.sample_fps
        assert [t["code"] for t in s["alarm_types"]] == [table.get(key).code]
        cls = scene_class(key)
        assert s["default_model"] == cls.default_model
        schema = cls.Params.model_json_schema()
        assert s["params_schema"] == schema
        assert [p["key"] for p in s["params"]] == list(schema["properties"])
        for p in s["params"]:
            prop = schema["properties"][p["key"]]
            # worded from the translation table where it has the parameter (the client asked for no
            # language: English), else the schema's title and description
            label_key, help_key = f"param.{p['key']}", f"param.{p['key']}.help"
            assert p["label"] == (t(label_key, "en") if has(label_key) else prop["title"])
            assert p["description"] == (t(help_key, "en") if has(help_key) else prop.get("description"))
            assert p["type"] == prop.get("type", p["type"]) and p["type"] is not None
    crowd = {p["key"]: p for p in scenes["crowd"]["params"]}["min_people"]
    assert (crowd["type"], crowd["default"], crowd["minimum"]) == ("integer", 5, 2)
    helmet = {p["key"]: p for p in scenes["helmet"]["params"]}["helmet_labels"]
    assert helmet["type"] == "array" and helmet["items"] == {"type": "string"}
    assert "helmet" in helmet["default"]
    role = {p["key"]: p for p in scenes["rigger_on_post"]["params"]}["role"]
    assert "$ref" not in str(role["schema"]) and role["items"]["properties"]["part"]["enum"]
    assert {p["key"]: p for p in scenes["custom"]["params"]}["classes"]["required"] is True
    assert scenes["intrusion"]["alarm_types"][0]["gb_alarm_type"] == 6
    codes = {t["code"]: t for t in body["alarm_types"]["items"]}
    assert codes["storage"]["zh"] and body["alarm_types"]["version"] == table.version


async def test_discovery_finds_a_loopback_onvif_device(client: Client, device: Any) -> None:
    admin = await login(client, "admin")
    target = f"127.0.0.1:{device.discovery_port}"
    r = await client.get("/api/discovery/onvif", params={"target": target, "wait_ms": "500"}, headers=admin)
    assert r.status == 200, await r.text()
    items = (await r.json())["items"]
    assert len(items) == 1 and items[0]["host"] == "127.0.0.1" and items[0]["xaddrs"]
    r = await client.get("/api/discovery/onvif", params={"target": "nohost"}, headers=admin)
    assert r.status == 400


async def test_gb_devices_without_the_role_is_503(client: Client) -> None:
    viewer = await login(client, "viewer")
    r = await client.get("/api/gb28181/devices", headers=viewer)
    assert r.status == 503 and "gb28181.server" in (await r.json())["error"]["message"]


# --- users --------------------------------------------------------------------------------------


def user_id(gw: Gateway, name: str) -> int:
    with gw.db.session() as s:
        return s.scalars(select(User.id).where(User.username == name)).one()


async def test_patch_user_role_password_and_disable(client: Client, gateway: Gateway) -> None:
    admin = await login(client, "admin")
    viewer = await login(client, "viewer")
    vid = user_id(gateway, "viewer")
    r = await client.patch(f"/api/users/{vid}", json={"role": "operator"}, headers=admin)
    body = await r.json()
    assert r.status == 200 and body["role"] == "operator" and body["sessions_ended"] == 1
    assert (await client.get("/api/me", headers=viewer)).status == 401  # the old session carried viewer
    operator2 = await login(client, "viewer")
    assert (await client.get("/api/me", headers=operator2)).status == 200
    r = await client.patch(f"/api/users/{vid}", json={"password": "a new long password"}, headers=admin)
    assert r.status == 200 and (await r.json())["changed"] == ["password"]
    r = await client.post("/api/auth/login", json={"username": "viewer", "password": "a new long password"})
    assert r.status == 200
    r = await client.patch(f"/api/users/{vid}", json={"disabled": True}, headers=admin)
    assert r.status == 200 and (await r.json())["enabled"] is False
    r = await client.post("/api/auth/login", json={"username": "viewer", "password": "a new long password"})
    assert r.status == 401
    for bad in (
        {"password": "short"},
        {"role": "root"},
        {"colour": "red"},
        {"disabled": True, "enabled": True},
    ):
        assert (await client.patch(f"/api/users/{vid}", json=bad, headers=admin)).status == 422, bad
    assert (await client.patch("/api/users/9999", json={"role": "viewer"}, headers=admin)).status == 404


async def test_the_last_admin_stays(client: Client, gateway: Gateway) -> None:
    admin = await login(client, "admin")
    aid = user_id(gateway, "admin")
    for change in ({"role": "viewer"}, {"disabled": True}, {"enabled": False}):
        r = await client.patch(f"/api/users/{aid}", json=change, headers=admin)
        assert r.status == 409 and "last enabled admin" in (await r.json())["error"]["message"]
    oid = user_id(gateway, "operator")
    assert (await client.patch(f"/api/users/{oid}", json={"role": "admin"}, headers=admin)).status == 200
    r = await client.patch(f"/api/users/{aid}", json={"role": "viewer"}, headers=admin)
    assert r.status == 200 and (await r.json())["sessions_ended"] == 0  # the caller's session is its own
    with gateway.db.session() as s:
        assert s.scalar(select(func.count()).select_from(User).where(User.role == "admin")) == 1
        live = s.scalar(select(func.count()).select_from(ApiToken).where(ApiToken.revoked_at.is_(None)))
        assert live is not None and live >= 1


# --- videos -------------------------------------------------------------------------------------


async def test_videos_lists_the_library(client: Client, gateway: Gateway) -> None:
    """GET /api/videos searches the video library (tests/videos/test_video_library.py covers it in full)."""
    from gateway.db.schema import Video

    viewer = await login(client, "viewer")
    with gateway.db.session() as s:
        cam = s.scalars(select(Camera).where(Camera.location != "").order_by(Camera.id)).first()
        assert cam is not None
        camera_id, location = cam.id, cam.location
        first = dt.datetime(2026, 11, 20, 8, tzinfo=dt.UTC)
        for n in range(2):
            started = first + dt.timedelta(hours=n)
            s.add(
                Video(
                    id=f"01JC00000000000000000000V{n}",
                    camera_id=camera_id,
                    started_at=started,
                    ended_at=started + dt.timedelta(minutes=10),
                    duration_s=600.0,
                    size_bytes=1000,
                    sha256=f"{n}" * 64,
                    path=f"videos/{n}.mp4",
                    retain_until=started + dt.timedelta(days=183),
                )
            )
    r = await client.get("/api/videos", headers=viewer)
    body = await r.json()
    assert [i["id"] for i in body["items"]] == ["01JC00000000000000000000V1", "01JC00000000000000000000V0"]
    assert body["total"] == 2 and body["items"][0]["camera_name"] and body["items"][0]["location"] == location
    assert body["items"][0]["jobs"] == [] and body["items"][0]["alarm_count"] == 0
    r = await client.get("/api/videos", params={"since": z(first + dt.timedelta(minutes=30))}, headers=viewer)
    assert [i["id"] for i in (await r.json())["items"]] == ["01JC00000000000000000000V1"]
    r = await client.get("/api/videos", params={"location": location[:4]}, headers=viewer)
    assert len((await r.json())["items"]) == 2
    r = await client.get("/api/videos", params={"camera_id": "elsewhere"}, headers=viewer)
    assert (await r.json())["items"] == []


# --- roles --------------------------------------------------------------------------------------

WRITES = [
    ("PUT", "/api/cameras/gate-1", CAMERA),
    ("DELETE", "/api/cameras/gate-1", None),
    ("GET", "/api/discovery/onvif?target=127.0.0.1:9", None),
    ("POST", "/api/discovery/onvif/probe", {"host": "127.0.0.1", "username": "u", "password": "p"}),
    ("PATCH", "/api/users/1", {"role": "viewer"}),
]
READS = [
    "/api/stats/overview",
    "/api/stats/alarms",
    "/api/stats/disposal",
    "/api/scenes",
    "/api/gb28181/devices",
    "/api/videos",
    "/api/cameras/gate-1/config",
]


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
async def test_viewer_and_operator_cannot_write(client: Client, method: str, path: str, body: Any) -> None:
    for role in ("viewer", "operator"):
        headers = await login(client, role)
        r = await client.request(method, path, json=body, headers=headers)
        assert r.status == 403, (role, path)
        assert f"role '{role}'" in (await r.json())["error"]["message"]


@pytest.mark.parametrize("path", [p for _, p, _ in WRITES] + READS)
async def test_every_new_route_needs_a_token(client: Client, path: str) -> None:
    method = next((m for m, p, _ in WRITES if p == path), "GET")
    r = await client.request(method, path)
    assert r.status == 401


# --- PostgreSQL ---------------------------------------------------------------------------------


async def test_statistics_on_postgresql(
    tmp_path: Path, pg_url: str, aiohttp_client: Callable[..., Awaitable[Client]]
) -> None:
    """The grouping SQL differs per dialect: the same seed gives the same answers on PostgreSQL."""
    from sqlalchemy import text

    config = load_config(write_config(tmp_path, site={"timezone": TZ}, database={"url": pg_url}), environ={})
    gw = Gateway(config, analyse=False)
    with gw.db.engine.begin() as conn:  # the session database is shared: start from empty
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    upgrade(gw.db.engine)
    with gw.db.session() as s:
        create_user(s, "viewer", PASSWORD, "viewer")
    seed(gw.db, gw.store, cameras=3, alarms=300, days=30, seed_value=7, timezone=TZ)
    client = await aiohttp_client(create_app(gw))
    viewer = await login(client, "viewer")
    alarms = all_alarms(gw)
    until = dt.datetime.now(dt.UTC).replace(microsecond=0)
    since = until - dt.timedelta(days=10)
    for group in ("camera", "scene", "hour", "day", "weekday", "region"):
        query = {"group": group, "since": z(since), "until": z(until), "compare": "1"}
        body = await (await client.get("/api/stats/alarms", params=query, headers=viewer)).json()
        got = {it["key"]: it["count"] for it in body["items"] if it["count"]}
        assert got == dict(expected_groups(alarms, group, since, until)), group
        assert body["previous"]["total"] == sum(
            expected_groups(alarms, group, since - (until - since), since).values()
        )
    body = await (await client.get("/api/stats/disposal", headers=viewer)).json()
    assert body["total"]["total"] == 300 and body["total"]["time_to_dispose_s"]["count"] > 0
    assert isinstance(body["total"]["time_to_confirm_s"]["p50"], float)
    body = await (await client.get("/api/stats/overview", headers=viewer)).json()
    assert body["open_total"] == sum(a.status in OPEN_STATUSES for a in alarms)
    r = await client.get("/api/alarms", params={"q": "intrusion", "count": "1"}, headers=viewer)
    assert (await r.json())["total"] == sum("intrusion" in a.message.lower() for a in alarms)
