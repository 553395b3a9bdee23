"""Issue 19 item 18: the most used read routes document their exact answer in the OpenAPI document.
A gateway seeded through its own API and recorder (alarms confirmed, disposed and repeated, a unit, an
uplink target, a sample, a model version, an enrolled class) answers each route, and every answer must
match the published schema with no undocumented key: a handler that adds, drops or retypes a field
without its schema fails here."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from aiohttp.test_utils import TestClient
from jsonschema import Draft202012Validator

from analyzers import AlarmEvent, Detection, Region
from gateway.alarms.recorder import SceneContext
from gateway.app import Gateway
from gateway.db.schema import Enrolment
from tests.conftest import login, make_gateway
from tests.models.test_model_versions import register

IMAGE = np.full((120, 160, 3), 90, dtype=np.uint8)
CTX = SceneContext(None, {}, None, [Region("r", [(0, 0), (1, 0), (1, 1)])])
PERIOD = "since=2025-11-01T00:00:00%2B00:00&until=2025-12-01T00:00:00%2B00:00"

# route (as documented) -> the requests that exercise its answer's variants
ROUTES: dict[tuple[str, str], list[str]] = {
    ("get", "/api/alarms"): ["/api/alarms", "/api/alarms?count=1&limit=1", "/api/alarms?status=closed"],
    ("get", "/api/alarms/{alarm_id}"): ["/api/alarms/{disposed}", "/api/alarms/{raised}"],
    ("get", "/api/cameras"): ["/api/cameras", "/api/cameras?include_removed=1"],
    ("get", "/api/cameras/{camera_id}"): ["/api/cameras/gate-1"],
    ("get", "/api/stats/overview"): ["/api/stats/overview"],
    ("get", "/api/stats/alarms"): [
        f"/api/stats/alarms?{PERIOD}&group={g}&compare={c}"
        for g in ("scene", "camera", "day", "hour", "weekday", "region")
        for c in (0, 1)
    ],
    ("get", "/api/stats/disposal"): [f"/api/stats/disposal?{PERIOD}"],
    ("get", "/api/stats/kpi"): [f"/api/stats/kpi?{PERIOD}&group={g}" for g in ("scene", "camera", "period")],
    ("get", "/api/scenes"): ["/api/scenes"],
    ("get", "/api/models"): ["/api/models"],
    ("get", "/api/uplinks"): ["/api/uplinks"],
    ("get", "/api/samples"): ["/api/samples", "/api/samples?limit=1"],
    ("get", "/api/enrolments"): ["/api/enrolments", "/api/enrolments?history=1"],
    ("get", "/api/units"): ["/api/units"],
    ("get", "/api/cluster"): ["/api/cluster"],
}


def strict(schema: Any) -> Any:
    """The schema with every documented object closed (additionalProperties false where unset)."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


def jpeg_b64() -> str:
    ok, buf = cv2.imencode(".jpg", np.random.default_rng(0).integers(0, 255, (48, 48, 3), dtype=np.uint8))
    assert ok
    return base64.b64encode(buf.tobytes()).decode()


def record(gw: Gateway, at: float, region: str = "r") -> str | None:
    """An intrusion event at ``at``: a new alarm's id, or None when it was merged into an open one."""
    event = AlarmEvent(
        "gate-1",
        "intrusion",
        region,
        occurred_at=at,
        raised_at=at + 3.0,
        score=0.9,
        message="1 person(s) entered",
        detections=(Detection((10, 10, 40, 90), 0.9, 0, "person"),),
    )
    return gw.recorder.record(event, IMAGE, CTX)


def raise_alarm(gw: Gateway, at: float, region: str = "r") -> str:
    alarm_id = record(gw, at, region)
    assert alarm_id is not None
    return alarm_id


def enrol(gw: Gateway) -> None:
    """An enrolled class in two versions (the active one current, a later candidate in the history), as
    `vigil enrol` stores them (the features files themselves are not read by the list)."""
    with gw.db.session() as s:
        for version, status in ((1, "active"), (2, "candidate")):
            s.add(
                Enrolment(
                    id=f"01JENROLMENT00000000000{version:03d}",
                    scene="workwear",
                    name="blue overall",
                    version=version,
                    status=status,
                    examples=12,
                    features_path=f"enrolments/workwear-{version}.npz",
                    sha256="0" * 64,
                    calibration={"calibration": {"threshold": 0.71, "precision": 0.95, "tried": [0.7, 0.71]}},
                    origin={"folder": "uniforms"},
                    created_by="admin",
                    activated_at=dt.datetime(2026, 12, 1, tzinfo=dt.UTC) if status == "active" else None,
                )
            )


@pytest.fixture
def gateway(tmp_path: Path) -> Gateway:
    gw: Gateway = make_gateway(
        tmp_path,
        start=True,
        users=("admin",),
        cameras=[{"id": "gate-1", "name": "North gate", "url": "rtsp://127.0.0.1:9/none", "enabled": False}],
        uplink=[
            {
                "name": "park",
                "kind": "http",
                "tier": "park",
                "http": {"url": "http://127.0.0.1:9/api"},
                "scenes": ["crowd"],  # nothing of this test is sent
            }
        ],
    )
    return gw


async def test_read_routes_answer_exactly_as_documented(
    gateway: Gateway, client: TestClient, tmp_path: Path, models_dir: Path
) -> None:
    admin = await login(client, "admin")
    start = 1_763_700_000.0  # 2025-11-21, inside PERIOD
    disposed = raise_alarm(gateway, start)
    raised = raise_alarm(gateway, start + 3600.0, region="r2")
    assert record(gateway, start + 3601.0, region="r2") is None  # a repeat: merged into `raised`
    r = await client.post(f"/api/alarms/{disposed}/confirm", json={"note": "seen"}, headers=admin)
    assert r.status == 200, await r.text()
    dispose = {
        "handler": "Li Ming",
        "result": "escorted out",
        "measures": None,
        "photos": [{"data": jpeg_b64()}],
    }
    r = await client.post(f"/api/alarms/{disposed}/dispose", json=dispose, headers=admin)
    assert r.status == 200, await r.text()
    r = await client.put("/api/units/reactor-1", json={"name": "Reactor 1"}, headers=admin)
    assert r.status in (200, 201), await r.text()
    r = await client.post(
        "/api/samples/from-alarm", json={"alarm_id": disposed, "kind": "positive"}, headers=admin
    )
    assert r.status == 201, await r.text()

    register(gateway.db, gateway.config.storage.root, tmp_path, models_dir, "1", 0.9)  # a model version
    enrol(gateway)

    r = await client.get("/api/openapi.json", headers=admin)
    document = await r.json()
    components = strict(document["components"])
    problems: list[str] = []
    seen: dict[tuple[str, str], int] = {}
    for (method, path), urls in ROUTES.items():
        success = document["paths"][path][method]["responses"].get("200")
        if success is None:
            problems.append(f"{method.upper()} {path}: no documented 200 answer")
            continue
        schema = strict(success["content"]["application/json"]["schema"])
        assert "$ref" in schema, f"{path}: the answer is documented as a plain object"
        validator = Draft202012Validator({**schema, "components": components})
        for url in urls:
            r = await client.get(url.format(disposed=disposed, raised=raised), headers=admin)
            assert r.status == 200, f"{url}: {r.status} {await r.text()}"
            answer = await r.json()
            for error in validator.iter_errors(answer):
                problems.append(f"{url}: {'/'.join(map(str, error.absolute_path))}: {error.message[:200]}")
            seen[(method, path)] = seen.get((method, path), 0) + 1
    assert not problems, "\n".join(problems)
    assert set(seen) == set(ROUTES)

    # The seeded data reached the answers (so the item schemas were checked, not only empty lists).
    listed = (await (await client.get("/api/alarms", headers=admin)).json())["items"]
    assert {a["id"] for a in listed} >= {disposed, raised}
    detail = await (await client.get(f"/api/alarms/{disposed}", headers=admin)).json()
    assert detail["status"] == "disposed" and detail["disposals"] and detail["evidence"]
    assert (await (await client.get(f"/api/alarms/{raised}", headers=admin)).json())["repeats"] == 1
    assert (await (await client.get("/api/units", headers=admin)).json())["items"][0]["id"] == "reactor-1"
    assert (await (await client.get("/api/models", headers=admin)).json())["items"][0]["versions"]
    history = (await (await client.get("/api/enrolments?history=1", headers=admin)).json())["items"]
    assert [(e["version"], e["current"]) for e in history] == [(1, True), (2, False)]
    assert (await (await client.get("/api/uplinks", headers=admin)).json())["items"][0]["name"] == "park"
    assert (await (await client.get("/api/samples", headers=admin)).json())["items"][0][
        "alarm_id"
    ] == disposed
