"""The enrolment API: scoped roles, enrol from uploaded crops and from boxes drawn on a frame, clear
refusals (too few examples, pictures that do not decode, boxes outside the frame) that store nothing,
example crops served back, rollback and removal."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from gateway.app import Gateway
from tests.conftest import login, make_gateway
from tests.enrolment.synthetic import BLUE, GREEN, draw_worker, worker_examples, yard


@pytest.fixture
def gateway(tmp_path: Path, models_dir: Path) -> Gateway:
    gw: Gateway = make_gateway(
        tmp_path, users=("admin", "operator", "viewer"), models={"pack_dir": str(models_dir)}
    )
    gw.config.server.max_body_mb = 20
    return gw


def b64(image: np.ndarray) -> str:
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return base64.b64encode(data.tobytes()).decode()


async def test_enrol_list_refusals_crops_remove(client: Any, gateway: Gateway) -> None:
    viewer, operator, admin = [await login(client, role) for role in ("viewer", "operator", "admin")]
    admin = {**admin, "Accept-Language": "en"}  # the site's language is zh: the messages below are en
    body = {
        "scene": "workwear",
        "name": "blue coverall",
        "images": [b64(c) for c in worker_examples(BLUE, 6, 1)],
    }
    for who in (viewer, operator):  # enrolling needs models:write
        assert (await client.post("/api/enrolments", json=body, headers=who)).status == 403
    # refusals say what to do and store nothing
    few = {**body, "images": body["images"][:3]}
    r = await client.post("/api/enrolments", json=few, headers=admin)
    assert r.status == 422 and "enrol at least 5" in (await r.json())["error"]["message"]
    r = await client.post("/api/enrolments", json=few, headers={**admin, "Accept-Language": "zh"})
    assert r.status == 422 and "每类至少登记 5 个" in (await r.json())["error"]["message"]
    r = await client.post("/api/enrolments", json={**body, "images": ["not a picture!"]}, headers=admin)
    assert r.status == 422 and "base64" in (await r.json())["error"]["message"]
    r = await client.post("/api/enrolments", json={**body, "scene": "intrusion"}, headers=admin)
    assert r.status == 422 and "takes no enrolment" in (await r.json())["error"]["message"]
    r = await client.get("/api/enrolments", headers=viewer)
    assert (await r.json())["items"] == []

    r = await client.post("/api/enrolments", json=body, headers=admin)
    assert r.status == 201, await r.text()
    made = await r.json()
    assert (
        made["status"] == "active" and made["examples"] == 6 and made["calibration"]["threshold"] is not None
    )

    # boxes drawn on a frame (as the console sends a live snapshot): green workers as the negative
    rng = np.random.default_rng(5)
    frame = yard(rng)
    boxes = []
    for k in range(6):
        x = 10 + k * 78
        draw_worker(frame, (x, 40, x + 50, 190), GREEN, rng)
        h, w = frame.shape[:2]
        boxes.append([x / w, 64 / h, (x + 50) / w, 130 / h])  # the torsos
    neg = {
        "scene": "workwear",
        "name": "street clothes",
        "negative": True,
        "frames": [{"image": b64(frame), "boxes": boxes}],
    }
    r = await client.post("/api/enrolments", json=neg, headers=admin)
    assert r.status == 201, await r.text()
    assert (await r.json())["calibration"]["against"] == "negatives"
    bad = {**neg, "frames": [{"image": b64(frame), "boxes": [[0.5, 0.5, 0.4, 0.9]]}]}
    r = await client.post("/api/enrolments", json=bad, headers=admin)
    assert r.status == 422 and "x1 < x2" in (await r.json())["error"]["message"]

    listed = (await (await client.get("/api/enrolments?scene=workwear", headers=viewer)).json())["items"]
    assert [(e["name"], e["kind"], e["examples"]) for e in listed] == [
        ("blue coverall", "positive", 6),
        ("street clothes", "negative", 6),
    ]
    shown = await (await client.get(f"/api/enrolments/{made['id']}", headers=viewer)).json()
    assert len(shown["crops"]) == 6 and shown["audit"][0]["action"] == "enrol"
    r = await client.get(shown["crops"][0], headers=viewer)
    assert r.status == 200 and r.content_type == "image/jpeg"
    assert cv2.imdecode(np.frombuffer(await r.read(), np.uint8), cv2.IMREAD_COLOR) is not None

    # a second version, then back to the first
    again = {**body, "images": [b64(c) for c in worker_examples(BLUE, 7, 9)]}
    assert (await client.post("/api/enrolments", json=again, headers=admin)).status in (201, 202)
    r = await client.post(
        "/api/enrolments/rollback", json={"scene": "workwear", "name": "blue coverall"}, headers=admin
    )
    assert r.status == 200 and (await r.json())["id"] == made["id"]

    remove = {"scene": "workwear", "name": "street clothes"}
    assert (await client.post("/api/enrolments/remove", json=remove, headers=viewer)).status == 403
    r = await client.post("/api/enrolments/remove", json=remove, headers=admin)
    assert r.status == 200 and (await r.json())["retired"] == 1
    r = await client.post("/api/enrolments/remove", json=remove, headers=admin)
    assert r.status == 404
