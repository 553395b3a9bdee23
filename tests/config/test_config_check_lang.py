"""`vigil config check` in the user's language: Chinese with --lang zh or a zh $LANG, English otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli.main import main
from gateway.config.check import check_file
from tests.config.test_config_check import BROKEN, EXPECTED, ROOT

# The same eight problems as test_config_check's, in Chinese (line, YAML path, part of the message).
EXPECTED_ZH = [
    (3, "site.timezon", "未知字段（请检查拼写"),
    (9, "sources[0].password_env", "环境变量 VIGIL_TEST_NVR_PASSWORD 未设置"),
    (13, "cameras[0].url", "rtsp://192.168.1.10/stream"),
    (17, "cameras[0].scenes[0].params.min_peple", "场景“crowd”没有此参数（其参数：min_people"),
    (21, "cameras[1].source", "视频源“nvr9”不在 `sources` 中"),
    (28, "cameras[1].scenes[0].params.min_people", "须为整数"),
    (31, "cameras[2].url", "rtsp://"),
    (33, "cameras[2].scenes[0].scene", "未知场景“helmett”；可用场景："),
]


def has_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def test_every_problem_in_chinese_at_the_same_lines(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN, encoding="utf-8")
    problems = check_file(path, environ={}, lang="zh").problems
    got = [(p.line, p.where, p.message) for p in problems]
    assert [(line, where) for line, where, _ in got] == [(line, where) for line, where, _ in EXPECTED_ZH]
    for (_, where, message), (_, _, want) in zip(got, EXPECTED_ZH, strict=True):
        assert want in message, (where, message)
        assert has_chinese(message), (where, message)
    english = check_file(path, environ={}, lang="en").problems
    for problem, (_, _, want) in zip(english, EXPECTED, strict=True):
        assert want in problem.message and not has_chinese(problem.message)


def test_the_cli_speaks_chinese_with_lang_zh_or_a_chinese_locale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN, encoding="utf-8")
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    assert main(["config", "check", str(path), "--lang", "zh"]) == 1
    err = capsys.readouterr().err
    assert f"{path}：发现 {len(EXPECTED)} 个问题：" in err
    assert f"{path}:21: cameras[1].source: 视频源“nvr9”不在 `sources` 中" in err

    assert main(["config", "check", str(path)]) == 1  # LANG=C: English
    assert f"{path}: {len(EXPECTED)} problem(s):" in capsys.readouterr().err

    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    assert main(["config", "check", str(ROOT / "config" / "demo.yaml")]) == 0
    assert "：正确（" in capsys.readouterr().out
    syntax = tmp_path / "syntax.yaml"
    syntax.write_text("site:\n  name: [unclosed\ndatabase:\n  url: sqlite:///x.db\n", encoding="utf-8")
    assert main(["config", "check", str(syntax)]) == 1
    assert f"{syntax}:3: YAML 语法错误：" in capsys.readouterr().err
