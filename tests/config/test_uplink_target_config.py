"""Uplink target kinds register themselves (uplink/targets/*.py) and the config is a union keyed by kind."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from gateway.config.schema import TARGET_CONFIGS, ConfigError, GatewayConfig, load_config
from gateway.delivery.uplinks import build_target, policy
from uplink.targets import KINDS
from uplink.targets.gb28181 import Gb28181Target, Gb28181TargetSettings
from uplink.targets.http import HttpTarget, HttpTargetSettings
from uplink.targets.mqtt import MqttTarget
from uplink.targets.websocket import FeedHub


def test_every_target_file_declares_its_kind() -> None:
    kinds = {"http", "mqtt", "websocket", "gb28181", "wecom", "dingtalk", "email", "sms"}
    assert set(KINDS) == kinds == set(TARGET_CONFIGS)
    assert {k for k, v in KINDS.items() if v.to_people} == {"wecom", "dingtalk", "email", "sms"}
    assert KINDS["http"].settings is HttpTargetSettings and KINDS["http"].settings_required
    assert KINDS["gb28181"].settings is Gb28181TargetSettings and not KINDS["gb28181"].settings_required
    assert KINDS["websocket"].settings is None and KINDS["websocket"].ordered


def test_targets_are_a_union_keyed_by_kind() -> None:
    config = GatewayConfig.model_validate(
        {
            "uplink": [
                {"name": "h", "kind": "http", "tier": "city", "http": {"url": "http://x/a"}},
                {"name": "m", "kind": "mqtt", "tier": "city", "mqtt": {"host": "broker"}},
                {"name": "w", "kind": "websocket", "tier": "big_screen"},
                {"name": "g", "kind": "gb28181", "tier": "park", "gb28181": {"platform": "park"}},
                {"name": "g2", "kind": "gb28181", "tier": "county"},
            ]
        }
    )
    h, m, w, g, g2 = config.uplink
    assert isinstance(h.settings, HttpTargetSettings) and h.settings.url == "http://x/a"
    assert w.settings is None and g2.settings is None
    assert isinstance(g.settings, Gb28181TargetSettings) and g.settings.platform == "park"
    built = [build_target(t, environ={}) for t in config.uplink]
    assert [type(t) for t in built] == [HttpTarget, MqttTarget, FeedHub, Gb28181Target, Gb28181Target]
    gb, gb2 = built[3], built[4]
    assert isinstance(gb, Gb28181Target) and isinstance(gb2, Gb28181Target)
    assert (gb.platform, gb2.platform) == ("park", "g2") and not gb.available
    assert policy(w).concurrency == 1 and policy(h).concurrency == h.dispatch.concurrency
    schema = GatewayConfig.model_json_schema()
    assert schema["properties"]["uplink"]["items"]["discriminator"]["propertyName"] == "kind"


def test_a_gb28181_target_alarms_through_the_cascade_to_its_platform() -> None:
    sent: list[tuple[str, dict[str, Any], str]] = []

    async def cascade(platform: str, record: dict[str, Any], key: str) -> tuple[bool, str]:
        sent.append((platform, record, key))
        return True, "200 OK"

    config = GatewayConfig.model_validate(
        {"uplink": [{"name": "g", "kind": "gb28181", "tier": "park", "gb28181": {"platform": "park"}}]}
    )
    target = build_target(config.uplink[0], environ={}, cascade=cascade)
    assert isinstance(target, Gb28181Target) and target.sender is not None
    assert asyncio.run(target.sender({"id": "a"}, "k1")) == (True, "200 OK")
    assert sent == [("park", {"id": "a"}, "k1")]


def test_target_settings_errors_name_the_yaml_line(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        "uplink:\n"
        "  - name: a\n"
        "    kind: http\n"
        "    tier: city\n"
        "  - name: b\n"
        "    kind: nope\n"
        "    tier: city\n"
        "  - name: c\n"
        "    kind: gb28181\n"
        "    tier: park\n"
        "    gb28181: {platform: park, extra: 1}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    problems = err.value.problems
    assert problems[0] == f"{path}:2: uplink[0].http: required field is missing"
    assert problems[1].startswith(f"{path}:5: uplink[1]: ") and "'websocket'" in problems[1]
    assert problems[2].startswith(f"{path}:11: uplink[2].gb28181.extra: unknown field")


def test_the_shipped_configs_load() -> None:
    root = Path(__file__).resolve().parents[2]
    for name in ("demo.yaml", "gateway.example.yaml"):
        config = load_config(root / "config" / name, environ={})
        assert all(isinstance(t.settings, BaseModel | None) for t in config.uplink)
