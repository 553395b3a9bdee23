"""config/gateway.example.yaml documents every section of the configuration, as the README says (issue 19
item 9: gb28181, models and alarms were missing), and loads as it is."""

from __future__ import annotations

import yaml

from gateway.config.schema import GatewayConfig, load_config
from tests.conftest import ROOT

EXAMPLE = ROOT / "config" / "gateway.example.yaml"


def test_example_has_every_section_and_loads() -> None:
    written = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    assert sorted(set(GatewayConfig.model_fields) - set(written)) == []
    config = load_config(EXAMPLE, environ={})
    assert config.gb28181.server is not None and config.gb28181.cascade is not None
    assert config.alarms.escalation and "intrusion" in config.alarms.scenes
