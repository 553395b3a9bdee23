"""Errors a user causes through the alarms, users, models, uplinks and statistics routes come in the
request's language (Accept-Language: zh-CN -> Chinese; en or nothing -> English)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.api import alarms, models, stats, uplinks, users  # noqa: F401  (register their routes)
from gateway.app import Gateway
from gateway.auth import issue_token
from gateway.db.schema import Alarm
from tests.conftest import PASSWORD, make_gateway


@pytest.fixture
def gateway(tmp_path: Path) -> Gateway:
    gw: Gateway = make_gateway(tmp_path, users=("admin",))
    return gw


def admin(gw: Gateway) -> str:
    with gw.db.session() as s:
        secret, _ = issue_token(s, "t-admin", "machine", "admin", None)
    return f"Bearer {secret}"


# (method, path, JSON body or None, status, Chinese message, English message)
CASES: list[tuple[str, str, Any, int, str, str]] = [
    (
        "GET",
        "/api/alarms?source=camera",
        None,
        400,
        "source 须为 live（实时）或 video（离线视频）",
        "source must be live or video",
    ),
    (
        "GET",
        "/api/alarms/01JBNOSUCHALARMZZZZZZZZZZZ",
        None,
        404,
        "报警 01JBNOSUCHALARMZZZZZZZZZZZ 不存在",
        "no alarm 01JBNOSUCHALARMZZZZZZZZZZZ",
    ),
    (
        "GET",
        "/api/alarms?since=yesterday",
        None,
        400,
        "查询参数 since 须为 ISO 8601 时间，例如 2026-11-21T08:00:00+08:00",
        "query parameter since must be an ISO 8601 time, e.g. 2026-11-21T08:00:00+08:00",
    ),
    (
        "GET",
        "/api/stats/kpi?group=shift",
        None,
        400,
        "group 须为以下之一：camera, area, scene, period",
        "group must be one of camera, area, scene, period",
    ),
    (
        "GET",
        "/api/stats/alarms?source=any",
        None,
        400,
        "source 须为 live（实时）、video（离线视频）或 all（全部）",
        "source must be live, video or all",
    ),
    (
        "PATCH",
        "/api/users/abc",
        {"role": "viewer"},
        400,
        "用户编号须为整数（见 GET /api/users）",
        "user id must be an integer (see GET /api/users)",
    ),
    ("PATCH", "/api/users/9999", {"role": "viewer"}, 404, "用户 9999 不存在", "no user 9999"),
    (
        "PATCH",
        "/api/users/1",
        {"password": "short"},
        422,
        "提交的内容有误: password: 至少需要 10 个字符",
        "the request body is not valid: password: String should have at least 10 characters",
    ),
    (
        "GET",
        "/api/model-versions/nosuchversion",
        None,
        404,
        "模型版本 nosuchversion 不存在；`vigil models list` 或模型页面列出所有版本",
        "no model version 'nosuchversion'; `vigil models list` shows the versions",
    ),
    (
        "POST",
        "/api/model-versions/nosuchversion/activate",
        {"camera_id": "gate-1"},
        422,
        "指定摄像机时须同时指定场景：模型按场景启用",
        "a camera needs a scene: activation is per scene",
    ),
    ("GET", "/api/uplinks/nowhere/dead", None, 404, "上报目标“nowhere”不存在", "no uplink target 'nowhere'"),
    (
        "POST",
        "/api/uplinks/anything/backfill",
        {"since": "2026-12-02T00:00:00+00:00", "until": "2026-12-01T00:00:00+00:00"},
        422,
        "开始时间（since）须早于结束时间（until）",
        "since must be before until",
    ),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "zh", "en"), CASES, ids=[c[1] for c in CASES])
async def test_a_user_error_in_chinese_and_english(
    client: TestClient, gateway: Gateway, method: str, path: str, body: Any, status: int, zh: str, en: str
) -> None:
    auth = admin(gateway)
    for accept, expected in (("zh-CN,zh;q=0.9", zh), ("en", en), (None, en)):
        headers = {"Authorization": auth, **({"Accept-Language": accept} if accept else {})}
        r = await client.request(method, path, json=body, headers=headers)
        assert r.status == status, await r.text()
        assert (await r.json())["error"]["message"] == expected, accept


async def test_a_refused_alarm_action_in_chinese_and_english(client: TestClient, gateway: Gateway) -> None:
    now = dt.datetime.now(dt.UTC)
    with gateway.db.session() as s:
        s.add(
            Alarm(
                id="01JBCLOSEDALARMZZZZZZZZZZZ",
                scene="intrusion",
                event_key="k",
                message="m",
                details={},
                occurred_at=now,
                raised_at=now,
                status="closed",
            )
        )
    auth = admin(gateway)
    answers = {}
    for accept in ("zh-CN", "en"):
        headers = {"Authorization": auth, "Accept-Language": accept}
        r = await client.post("/api/alarms/01JBCLOSEDALARMZZZZZZZZZZZ/confirm", json={}, headers=headers)
        assert r.status == 409, await r.text()
        answers[accept] = (await r.json())["error"]["message"]
        r = await client.post("/api/alarms/01JBNOSUCHALARMZZZZZZZZZZZ/confirm", json={}, headers=headers)
        assert r.status == 404
        answers[accept + " 404"] = (await r.json())["error"]["message"]
    assert answers == {
        "zh-CN": "报警 01JBCLOSEDALARMZZZZZZZZZZZ 已关闭，不能再更改",
        "zh-CN 404": "报警 01JBNOSUCHALARMZZZZZZZZZZZ 不存在",
        "en": "alarm 01JBCLOSEDALARMZZZZZZZZZZZ is closed; nothing can change it any more",
        "en 404": "no alarm 01JBNOSUCHALARMZZZZZZZZZZZ",
    }


async def test_a_wrong_password_in_chinese(client: TestClient) -> None:
    body = {"username": "admin", "password": PASSWORD + "x"}
    r = await client.post("/api/auth/login", json=body, headers={"Accept-Language": "zh-CN"})
    assert r.status == 401
    assert (await r.json())["error"]["message"] == "用户名或密码错误"
    r = await client.post("/api/auth/login", json=body)
    assert (await r.json())["error"]["message"] == "wrong username or password"
    for _ in range(10):  # the account's limit of failed logins (5), then the lockout in Chinese
        r = await client.post("/api/auth/login", json=body, headers={"Accept-Language": "zh-CN"})
        if r.status != 401:
            break
    assert r.status == 429
    message = (await r.json())["error"]["message"]
    assert message == f"此账号登录失败次数过多；请 {r.headers['Retry-After']} 秒后再试"
