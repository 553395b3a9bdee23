"""Server-generated text in the user's language: every table entry in zh and en, alarm messages worded
from a real scene event, scene parameter labels and alarm messages through the API."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient

from analyzers import Detection, SceneConfig, build_scene
from analyzers.scenes import IMPLEMENTED
from gateway.api import alarms, cameras, scenes  # noqa: F401  (register their routes before the app is built)
from gateway.app import Gateway
from gateway.auth import issue_token
from gateway.db.schema import Alarm
from gateway.i18n import TEXT, lang_of
from gateway.i18n.alarm_text import alarm_text
from gateway.i18n.models import model_description
from tests.conftest import ROOT, make_gateway

CJK = re.compile(r"[\u4e00-\u9fff]")
W = H = 1000
T0 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC).timestamp()
LAWN = [{"name": "lawn-east", "polygon": [[0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 1.0]]}]


def person(x: float, y: float) -> Detection:
    return Detection((x * W - 20, y * H - 120, x * W + 20, y * H), 0.9, 0, "person")


def test_every_entry_has_chinese_and_english() -> None:
    for key, entry in TEXT.items():
        assert set(entry) == {"zh", "en"}, key
        assert CJK.search(entry["zh"]), f"{key}: the zh text has no Chinese"
        fields = sorted(re.findall(r"\{(\w+)", entry["zh"]))
        assert fields == sorted(re.findall(r"\{(\w+)", entry["en"])), f"{key}: zh and en take other values"


def test_every_scene_has_a_message_and_its_parameters_labels() -> None:
    for key, cls in IMPLEMENTED.items():
        if key != "custom":  # its message is the names the user gave each class
            assert f"alarm.{key}" in TEXT, key
        for name in cls.Params.model_fields:
            assert f"param.{name}" in TEXT and f"param.{name}.help" in TEXT, f"{key}: {name}"


def intrusion_event() -> Any:
    cfg = SceneConfig.model_validate({"scene": "intrusion", "regions": LAWN, "min_duration_s": 2})
    scene = build_scene("cam", cfg)
    events = []
    for i in range(6):
        events += scene.update(T0 + i, [person(0.6, 0.5), person(0.7, 0.5), person(0.8, 0.5)], W, H)
    assert len(events) == 1
    return events[0]


def test_an_alarm_message_in_both_languages() -> None:
    event = intrusion_event()
    assert event.message == "3 person(s) entered region 'lawn-east'"
    assert (
        alarm_text(event.scene, event.region, event.message, event.details, "zh") == "3 人闯入区域“lawn-east”"
    )
    assert alarm_text(event.scene, event.region, event.message, event.details, "en") == event.message
    # an alarm stored before its details named the scene's settings keeps its stored text
    old = {"peak": 7}
    assert alarm_text("crowd", "walkway", "crowd of up to 7 people", old, "zh") == "crowd of up to 7 people"


def test_the_request_language() -> None:
    assert lang_of("zh-CN,zh;q=0.9,en;q=0.8") == "zh"
    assert lang_of("en-GB,en;q=0.9") == "en"
    assert lang_of("fr-FR", "en") == "en"
    assert lang_of(None) == "zh"


@pytest.fixture
def gateway(tmp_path: Path) -> Gateway:
    gw: Gateway = make_gateway(tmp_path, site={"language": "zh"})
    return gw


def viewer(gw: Gateway) -> dict[str, str]:
    with gw.db.session() as s:
        secret, _ = issue_token(s, "t-viewer", "machine", "viewer", None)
    return {"Authorization": f"Bearer {secret}"}


async def test_alarm_messages_and_parameter_labels_through_the_api(
    client: TestClient, gateway: Gateway, aiohttp_client: Callable[..., Any]
) -> None:
    event = intrusion_event()
    when = dt.datetime.fromtimestamp(event.raised_at, dt.UTC)
    with gateway.db.session() as s:
        s.add(
            Alarm(
                id="01JBZZZZZZZZZZZZZZZZZZZZZZ",
                scene=event.scene,
                region=event.region,
                event_key=event.key,
                message=event.message,
                details=event.details,
                occurred_at=when,
                raised_at=when,
            )
        )
    headers = viewer(gateway)
    r = await client.get("/api/alarms", headers={**headers, "Accept-Language": "zh-CN,zh;q=0.9"})
    assert r.status == 200, await r.text()
    assert (await r.json())["items"][0]["message"] == "3 人闯入区域“lawn-east”"
    r = await client.get("/api/alarms?lang=zh", headers=headers)
    assert (await r.json())["items"][0]["message"] == "3 人闯入区域“lawn-east”"
    r = await client.get("/api/alarms", headers=headers)  # an API client that asks for nothing: English
    assert (await r.json())["items"][0]["message"] == "3 person(s) entered region 'lawn-east'"

    r = await client.get("/api/scenes", headers={**headers, "Accept-Language": "zh-CN"})
    crowd = next(i for i in (await r.json())["items"] if i["key"] == "crowd")
    assert [(p["key"], p["label"]) for p in crowd["params"]] == [("min_people", "最少人数")]
    r = await client.get("/api/scenes", headers={**headers, "Accept-Language": "en"})
    crowd = next(i for i in (await r.json())["items"] if i["key"] == "crowd")
    assert crowd["params"][0]["label"] == "Min people"


async def test_a_self_crossing_region_is_refused_in_the_users_language(
    client: TestClient, gateway: Gateway
) -> None:
    with gateway.db.session() as s:
        secret, _ = issue_token(s, "t-admin", "machine", "admin", None)
    bow_tie = [[0.1, 0.1], [0.9, 0.9], [0.9, 0.1], [0.1, 0.9]]
    body = {
        "id": "gate-1",
        "name": "Gate 1",
        "url": "rtsp://10.0.0.5/live",
        "scenes": [{"scene": "intrusion", "regions": [{"name": "lawn", "polygon": bow_tie}]}],
    }
    answers = {}
    for lang in ("zh-CN", "en"):
        headers = {"Authorization": f"Bearer {secret}", "Accept-Language": lang}
        r = await client.post("/api/cameras", json=body, headers=headers)
        assert r.status == 422
        answers[lang] = (await r.json())["error"]["details"][0]["problem"]
    assert answers["zh-CN"] == "区域自相交（第 0 条边与第 2 条边相交）：请沿边界按顺序点选顶点"
    assert answers["en"].startswith("the polygon crosses itself (edges 0 and 2)")


def test_every_shipped_model_card_has_a_chinese_description() -> None:
    cards = sorted((ROOT / "config" / "models").glob("*.yaml"))
    assert cards
    for card in cards:
        name = yaml.safe_load(card.read_text(encoding="utf-8"))["name"]
        described = model_description(name, "the card's text", "zh")
        assert described is not None and CJK.search(described), name
        assert model_description(name, "the card's text", "en") == "the card's text"
    assert model_description("plant_own_model", "its card", "zh") == "its card"
