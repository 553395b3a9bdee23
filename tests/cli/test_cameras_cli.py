"""`vigil cameras`: each camera's state and fault reason as the running gateway saved them, in zh or
en; `vigil cameras test URL` against the sample RTSP camera."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.app import Gateway
from gateway.cli import main
from gateway.config.schema import load_config
from tests.conftest import ROOT, write_config


@contextlib.contextmanager
def running_gateway(path: Path) -> Iterator[Gateway]:
    """The configured cameras running, each past "starting", their state saved as the gateway does."""
    gw = Gateway(load_config(path, environ={}), analyse=True)
    gw.start()
    try:
        deadline = time.monotonic() + 30
        while any(r.health.state == "starting" for r in gw.analytics.runners.values()):
            assert time.monotonic() < deadline, "the cameras did not settle"
            time.sleep(0.1)
        gw.persist_health()
        yield gw
    finally:
        gw.stop()


def test_cameras_lists_state_owner_and_fault(
    rtsp: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cams = [
        {"id": "gate-1", "name": "Gate 1", "url": rtsp.url("vtest")},
        {"id": "gate-2", "name": "Gate 2", "url": rtsp.url("vtest").replace("/vtest", "/no-such-path")},
    ]
    path = write_config(tmp_path, cameras=cams)
    assert main(["--config", str(path), "db", "upgrade"]) == 0
    with running_gateway(path):
        capsys.readouterr()
        assert main(["--config", str(path), "cameras", "--lang", "zh"]) == 0
        out = capsys.readouterr().out.splitlines()
        assert main(["--config", str(path), "cameras", "list", "--json", "--lang", "en"]) == 0
        rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert out[0].split()[:4] == ["编号", "名称", "状态", "配置来源"]
    gate1 = next(line for line in out if line.startswith("gate-1"))
    gate2 = next(line for line in out if line.startswith("gate-2"))
    assert "在线" in gate1 and "配置文件" in gate1 and "h264 768x576" in gate1
    assert "故障" in gate2 and gate2.endswith("码流路径不存在（404），请检查地址中的路径或通道号")

    assert rows["gate-1"]["state"] == "online" and rows["gate-1"]["fault"] is None
    assert rows["gate-2"]["fault"]["code"] == "not_found"
    assert rows["gate-2"]["fault"]["message"].startswith("stream path not found (404)")


def test_cameras_test_reports_the_stream_or_why_not(rtsp: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cameras", "--lang", "en", "test", rtsp.url("vtest")]) == 0
    assert capsys.readouterr().out.startswith("connected: H264 768x576 at")
    assert main(["cameras", "--lang", "zh", "test", rtsp.url("vtest").replace("/vtest", "/nope")]) == 1
    assert "码流路径不存在（404）" in capsys.readouterr().err
    assert main(["cameras", "--lang", "zh", "test", "192.168.1.10/stream"]) == 2
    assert "缺少协议：请写成 rtsp://192.168.1.10/stream" in capsys.readouterr().err


def test_log_lines_carry_timestamps(tmp_path: Path) -> None:
    """The gateway's log lines (here a camera that cannot connect) start with the time, also though a
    library configured logging when it was imported."""
    config = write_config(tmp_path, cameras=[{"id": "c1", "name": "C1", "url": "rtsp://127.0.0.1:1/x"}])
    script = (
        "import logging, sys\n"
        "from gateway.cli import main\n"
        "main(['--config', sys.argv[1], 'db', 'upgrade'])\n"
        "logging.getLogger('adapters.rtsp.source').warning('camera c1: cannot open')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(config)], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stderr.splitlines() if "camera c1" in x)
    assert re.match(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING adapters\.rtsp\.source: camera c1", line
    ), line
