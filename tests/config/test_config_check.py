"""`vigil config check`: every problem of a file in one run, each at its YAML path and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli.main import main
from gateway.config.check import check_file

ROOT = Path(__file__).resolve().parents[2]

# Seven problems in different places; the line numbers below are this text's (1-based).
BROKEN = """\
site:
  name: test
  timezon: Asia/Shanghai
database:
  url: sqlite:///x.db
sources:
  - id: nvr1
    kind: rtsp
    password_env: VIGIL_TEST_NVR_PASSWORD
cameras:
  - id: cam-1
    name: Cam 1
    url: 192.168.1.10/stream
    scenes:
      - scene: crowd
        params:
          min_peple: 5
  - id: cam-2
    name: Cam 2
    url: rtsp://10.0.0.2/live
    source: nvr9
    scenes:
      - scene: intrusion
        regions:
          - name: a
            polygon: [[0, 0], [1, 0], [1, 1]]
        params:
          min_people: many
  - id: cam-3
    name: Cam 3
    url: rtps://10.0.0.3/live
    scenes:
      - scene: helmett
"""

EXPECTED = [
    (3, "site.timezon", "unknown field"),
    (9, "sources[0].password_env", "VIGIL_TEST_NVR_PASSWORD is not set"),
    (13, "cameras[0].url", "write it as rtsp://192.168.1.10/stream"),
    (17, "cameras[0].scenes[0].params.min_peple", "unknown parameter of scene 'crowd'"),
    (21, "cameras[1].source", "source 'nvr9' is not in `sources`"),
    (28, "cameras[1].scenes[0].params.min_people", "valid integer"),
    (31, "cameras[2].url", "did you mean rtsp://"),
    (33, "cameras[2].scenes[0].scene", "unknown scene 'helmett'"),
]


def test_every_problem_in_one_pass_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN, encoding="utf-8")
    result = check_file(path, environ={})
    assert result.config is None
    got = [(p.line, p.where, p.message) for p in result.problems]
    assert len(got) == len(EXPECTED), "\n".join(p.text(path) for p in result.problems)
    for (line, where, message), (want_line, want_where, want_text) in zip(got, EXPECTED, strict=True):
        assert (line, where) == (want_line, want_where)
        assert want_text in message


def test_a_set_secret_and_fixed_file_pass(tmp_path: Path) -> None:
    fixed = (
        BROKEN.replace("  timezon:", "  timezone:")
        .replace("url: 192.168.1.10/stream", "url: rtsp://192.168.1.10/stream")
        .replace("min_peple", "min_people")
        .replace("source: nvr9", "source: nvr1")
        .replace("min_people: many", "min_people: 2")
        .replace("rtps://", "rtsp://")
        .replace("scene: helmett", "scene: intrusion")
    )
    path = tmp_path / "fixed.yaml"
    path.write_text(fixed, encoding="utf-8")
    result = check_file(path, environ={"VIGIL_TEST_NVR_PASSWORD": "x"})
    assert [p.text(path) for p in result.problems] == []
    assert result.config is not None and len(result.config.cameras) == 3


def test_the_cli_names_the_file_and_line_of_a_yaml_syntax_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "syntax.yaml"
    path.write_text("site:\n  name: [unclosed\ndatabase:\n  url: sqlite:///x.db\n", encoding="utf-8")
    assert main(["config", "check", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:3: not valid YAML" in err
    assert "<unicode string>" not in err


def test_the_cli_lists_all_problems_and_passes_the_demo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN, encoding="utf-8")
    assert main(["config", "check", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{len(EXPECTED)} problem(s)" in err
    assert f"{path}:17: cameras[0].scenes[0].params.min_peple" in err
    assert main(["config", "check", str(ROOT / "config" / "demo.yaml")]) == 0
