"""Issue 19 items 13, 14 and 15: hostile input gets a 400/422 that says what is wrong, never a 500;
camera passwords never show; region polygons are bounded."""

from __future__ import annotations

import logging
import math
import threading
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import Gateway
from tests.conftest import login, make_gateway

Client = TestClient
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def gateway(tmp_path: Path) -> Gateway:
    gw: Gateway = make_gateway(tmp_path, users=("admin",))
    return gw


def camera(**over: object) -> dict[str, object]:
    body: dict[str, object] = {
        "id": "gate-1",
        "name": "Gate",
        "url": "rtsp://127.0.0.1:9/main",
        "enabled": False,
        "scenes": [{"scene": "intrusion", "regions": [{"name": "r", "polygon": [[0, 0], [1, 0], [1, 1]]}]}],
    }
    body.update(over)
    return body


async def message(r: object) -> str:
    return str((await r.json())["error"]["message"])  # type: ignore[attr-defined]


# --- item 13 -------------------------------------------------------------------------------------


async def test_deeply_nested_json_and_huge_integers_are_400(client: Client) -> None:
    admin = await login(client, "admin")
    for path in ("/api/auth/login", "/api/cameras"):
        for depth in (100, 50_000):
            raw = b"[" * depth + b"]" * depth
            r = await client.post(path, data=raw, headers={**admin, **JSON})
            assert r.status == 400, (path, depth, await r.text())
            assert "nested" in await message(r)
        raw = b'{"username": ' + b"9" * 5000 + b', "password": "x"}'
        r = await client.post(path, data=raw, headers={**admin, **JSON})
        assert r.status == 400 and "digits" in await message(r)


async def test_unknown_source_on_camera_create_and_edit_is_422(client: Client) -> None:
    admin = await login(client, "admin")
    r = await client.post("/api/cameras", json=camera(source="nope"), headers=admin)
    assert r.status == 422 and "source 'nope'" in await message(r)
    assert (await client.post("/api/cameras", json=camera(), headers=admin)).status == 201
    r = await client.put("/api/cameras/gate-1", json=camera(source="nope"), headers=admin)
    assert r.status == 422 and "source 'nope'" in await message(r)


async def test_task_names_with_line_breaks_are_refused(client: Client) -> None:
    admin = await login(client, "admin")
    for name in ("bad\r\nSet-Cookie: x=1", "tab\there", 'quote"d'):
        r = await client.post("/api/tasks", json={"name": name}, headers=admin)
        assert r.status == 422, name
        assert "name" in await message(r)


async def test_a_stored_task_name_with_a_line_break_still_exports(client: Client, gateway: Gateway) -> None:
    from gateway.samples.library import SampleLibrary

    SampleLibrary(gateway.db, gateway.config.storage.root).add_task("old\r\nname 任务", labels=["a"])
    admin = await login(client, "admin")
    r = await client.get("/api/tasks/old%0D%0Aname%20任务/export", headers=admin)
    assert r.status == 200, await r.text()
    disposition = r.headers["Content-Disposition"]
    assert (
        "\r" not in disposition
        and "\n" not in disposition
        and "filename*=UTF-8''old%0D%0Aname" in disposition
    )


async def test_out_of_range_dates_are_400(client: Client) -> None:
    admin = await login(client, "admin")
    for path in ("/api/stats/alarms", "/api/stats/disposal"):
        for query in ("until=0001-01-01", "since=0001-01-01", "until=9999-12-31"):
            r = await client.get(f"{path}?{query}", headers=admin)
            assert r.status == 400, (path, query, await r.text())
            assert "between the years" in await message(r)


# --- item 14 -------------------------------------------------------------------------------------

SECRET = "p@ss/wo:rd"  # '@', '/' and ':' unencoded: the cases that leaked


async def test_camera_passwords_with_at_and_slash_never_show(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    from adapters import redact_text, redact_url

    for url in (f"rtsp://admin:{SECRET}@127.0.0.1:9/main", f"rtsp://admin:{SECRET}@10.0.0.5/sub/stream"):
        assert "wo" not in redact_url(url) and "rd@" not in redact_url(url)
        text = redact_text(f"Could not open {url}: Connection refused")
        assert "wo:rd" not in text and "ss/" not in text and "Connection refused" in text
    admin = await login(client, "admin")
    caplog.set_level(logging.DEBUG)
    body = camera(
        url=f"rtsp://admin:{SECRET}@127.0.0.1:9/main", sub_url=f"rtsp://admin:{SECRET}@127.0.0.1:9/sub"
    )
    r = await client.post("/api/cameras", json=body, headers=admin)
    assert r.status == 201, await r.text()
    shown = [await r.text()]
    for path in ("/api/cameras", "/api/cameras/gate-1", "/api/cameras/gate-1/snapshot", "/metrics"):
        shown.append(await (await client.get(path, headers=admin)).text())
    shown.append(caplog.text)
    for text in shown:
        assert "wo:rd" not in text and "p@ss" not in text and "ss/wo" not in text


# --- item 15 -------------------------------------------------------------------------------------


async def test_region_polygons_are_bounded(client: Client) -> None:
    admin = await login(client, "admin")
    points = [[0.5 + 0.4 * (i % 2), i / 5000] for i in range(5000)]
    body = camera(scenes=[{"scene": "intrusion", "regions": [{"name": "r", "polygon": points}]}])
    r = await client.post("/api/cameras", json=body, headers=admin)
    assert r.status == 422
    assert "at most 256" in await message(r)


async def test_large_bodies_are_validated_off_the_event_loop(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    import analyzers.scenes.settings as settings

    threads: set[str] = set()
    crosses = settings._segments_cross

    def watched(*args: tuple[float, float]) -> bool:
        threads.add(threading.current_thread().name)
        return crosses(*args)

    monkeypatch.setattr(settings, "_segments_cross", watched)
    # a convex polygon of 250 points (valid, near the bound): its check is the slow part
    points = [
        [0.5 + 0.4 * math.cos(2 * math.pi * i / 250), 0.5 + 0.4 * math.sin(2 * math.pi * i / 250)]
        for i in range(250)
    ]
    body = camera(scenes=[{"scene": "intrusion", "regions": [{"name": "r", "polygon": points}]}])
    admin = await login(client, "admin")
    r = await client.post("/api/cameras", json=body, headers=admin)
    assert r.status == 201, await r.text()
    assert threads and threading.main_thread().name not in threads
