"""One door for alarms: scenes, GB/T 28181 device alarms, video diagnosis and the storage alarm all raise
through gateway.alarms.writer.write_alarm; no other module builds an Alarm row or its first revision."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_only_the_writer_builds_alarm_rows() -> None:
    builders: dict[str, set[str]] = {}
    for path in sorted((ROOT / "gateway").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if "/migrations/" in rel:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Alarm":
                builders.setdefault("Alarm", set()).add(rel)
    assert builders == {"Alarm": {"gateway/alarms/writer.py"}}
    users = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "gateway").rglob("*.py")
        if "write_alarm(" in p.read_text(encoding="utf-8") and p.name != "writer.py"
    }
    assert users == {
        "gateway/alarms/recorder.py",
        "gateway/alarms/retention.py",
        "gateway/cameras/health.py",  # video diagnosis alarms
        "gateway/gb28181/service.py",
    }
