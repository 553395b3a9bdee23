"""Configuration: every error reported with its line and what is expected; env overrides; schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config.schema import ConfigError, GatewayConfig, env_overrides, load_config
from tests.conftest import ROOT


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    return info.value.problems


CAMERA = """cameras:
  - id: cam1
    name: Gate
    url: rtsp://127.0.0.1:8554/x
    scenes:
{scenes}
"""


def test_missing_field_names_path_and_line(tmp_path: Path) -> None:
    found = problems(tmp_path, "cameras:\n  - id: cam1\n    url: rtsp://h/x\n")
    assert found == [f"{tmp_path / 'bad.yaml'}:2: cameras[0].name: required field is missing"]


def test_wrong_type(tmp_path: Path) -> None:
    found = problems(tmp_path, "server:\n  port: eighty\n")
    assert len(found) == 1
    assert ":2: server.port:" in found[0] and "integer" in found[0]


def test_unknown_field_points_at_the_key(tmp_path: Path) -> None:
    found = problems(tmp_path, "database:\n  url: sqlite:///x.db\n  pasword: x\n")
    assert found == [
        f"{tmp_path / 'bad.yaml'}:3: database.pasword: unknown field "
        "(check the spelling; `vigil config schema` lists the fields)"
    ]


def test_unknown_scene(tmp_path: Path) -> None:
    found = problems(tmp_path, CAMERA.format(scenes="      - scene: helmets"))
    assert len(found) == 1
    assert ":2: cameras[0]:" in found[0]
    assert "unknown scene 'helmets'" in found[0] and "intrusion" in found[0]


def test_every_catalogue_scene_is_accepted(tmp_path: Path) -> None:
    from analyzers.scenes import CATALOGUE

    required = {"custom": "\n        model: my_detector\n        params: {classes: {forklift: forklift}}"}
    scenes = "\n".join(f"      - scene: {key}{required.get(key, '')}" for key in CATALOGUE)
    path = tmp_path / "all.yaml"
    path.write_text(CAMERA.format(scenes=scenes), encoding="utf-8")
    config = load_config(path, environ={})
    assert [s.scene for s in config.cameras[0].scenes] == list(CATALOGUE)


@pytest.mark.parametrize(
    ("polygon", "expected"),
    [
        ("[[0, 0], [1, 0]]", "at least 3 points"),
        ("[[0, 0], [1.5, 0], [1, 1]]", "point 1 [1.5, 0.0] is outside 0..1"),
        ("[[0, 0], [1, 1], [1, 0], [0, 1]]", "crosses itself"),
        ("[[0, 0], [0.5, 0.5], [1, 1]]", "no area"),
    ],
)
def test_bad_polygon(tmp_path: Path, polygon: str, expected: str) -> None:
    scenes = (
        f"      - scene: intrusion\n        regions:\n          - name: r\n            polygon: {polygon}"
    )
    found = problems(tmp_path, CAMERA.format(scenes=scenes))
    assert len(found) == 1
    assert ":9: cameras[0].scenes[0].regions[0].polygon:" in found[0]
    assert expected in found[0]


def test_several_errors_reported_at_once(tmp_path: Path) -> None:
    found = problems(tmp_path, "server:\n  port: 0\n  host: 1\nstorage:\n  evidence_retention_days: 30\n")
    assert len(found) == 3
    assert any("evidence_retention_days" in p and "183" in p for p in found)


def test_scene_params_validated(tmp_path: Path) -> None:
    scenes = "      - scene: crowd\n        params: {min_people: 1, radius: 3}"
    found = problems(tmp_path, CAMERA.format(scenes=scenes))
    assert any("min_people" in p for p in found) or any("radius" in p for p in found)


def test_not_yaml(tmp_path: Path) -> None:
    assert "not valid YAML" in problems(tmp_path, "cameras: [\n")[0]


def test_env_overrides(tmp_path: Path) -> None:
    path = tmp_path / "g.yaml"
    path.write_text("server:\n  port: 8080\n", encoding="utf-8")
    config = load_config(
        path,
        environ={
            "VIGIL_SERVER__PORT": "9090",
            "VIGIL_DATABASE__URL": "sqlite:///o.db",
            "VIGIL_MODELS_DIR": "/ignored",
        },
    )
    assert config.server.port == 9090
    assert config.database.url == f"sqlite:///{(tmp_path / 'o.db').resolve()}"
    assert env_overrides({"VIGIL_SITE__NAME": "Plant A"}) == {"site": {"name": "Plant A"}}


def test_example_and_demo_configs_are_valid() -> None:
    for name in ("gateway.example.yaml", "demo.yaml"):
        load_config(ROOT / "config" / name, environ={})


def test_committed_schema_is_current() -> None:
    committed = json.loads((ROOT / "config" / "gateway.schema.json").read_text(encoding="utf-8"))
    assert committed == GatewayConfig.model_json_schema(), (
        "run `vigil config schema --out config/gateway.schema.json`"
    )


def test_cli_config_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(CAMERA.format(scenes="      - scene: nope"), encoding="utf-8")
    assert main(["config", "check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "1 problem(s)" in err and "unknown scene 'nope'" in err
    assert main(["config", "check", str(ROOT / "config" / "demo.yaml")]) == 0
    assert "OK (1 camera(s), 4 scene task(s)" in capsys.readouterr().out
