"""`make demo` for N minutes (default 10): alarms per scene, and how soon intrusion and crowd first alarm.

Not a test: it prints measured numbers. It runs `vigil demo` exactly as `make demo` does (config/demo.yaml:
the sample RTSP camera playing vtest.avi in a loop, the model pack, the demo's scenes and alarm rules),
but on free ports and with its own database and storage in a temporary folder, stops it after the given
time, and reads the alarms from the database: per scene the alarms raised (flood alarms apart), the
events merged into them (repeats) and the seconds from the gateway's start to the scene's first alarm.
The issue's bar: no scene raises more than 10 alarms in 10 minutes; intrusion and crowd alarm within a
minute.

Usage: VIGIL_MODELS_DIR=... VIGIL_MEDIA_DIR=... python tests/benchmarks/bench_demo_alarms.py [--minutes M]
       [--enable helmet] (a scene the demo has off, to see the repeat rules hold it down)
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
WITHIN_S = 60.0
MAX_ALARMS = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def demo_config(tmp: Path, enable: list[str], rearm_after_s: float | None) -> Path:
    """config/demo.yaml with its own database, storage and ports (and the scenes in ``enable`` turned on);
    everything else as shipped."""
    config = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text(encoding="utf-8"))
    config["database"] = {"url": f"sqlite:///{tmp / 'vigil.db'}"}
    config["storage"] = {**config.get("storage", {}), "root": str(tmp / "storage")}
    config["server"] = {**config.get("server", {}), "port": free_port()}
    rtsp = free_port()
    for camera in config["cameras"]:
        camera["url"] = camera["url"].replace(":8554/", f":{rtsp}/")
        for scene in camera["scenes"]:
            if scene["scene"] in enable:
                scene["enabled"] = True
            if rearm_after_s is not None:  # re-armed after quiet seconds: the repeat rules do the rest
                scene["rearm_after_s"] = rearm_after_s
    models = ROOT / "config" / "models"
    if models.is_dir():  # the project's own cards, found beside the config as `vigil demo` expects
        (tmp / "models").symlink_to(models)
    path = tmp / "demo.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def serving(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument(
        "--enable", action="append", default=[], help="turn on a scene the demo has off (e.g. helmet)"
    )
    parser.add_argument(
        "--rearm-after",
        type=float,
        help="re-arm every scene after this many quiet seconds (the demo has none: an alarm stays "
        "latched until cleared), so that events keep coming and the repeat rules must hold them down",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vigil-demo-bench-") as name:
        tmp = Path(name)
        config = demo_config(tmp, args.enable, args.rearm_after)
        env = {**os.environ, "VIGIL_DEMO_PASSWORD": "bench-only-password"}
        cmd = [sys.executable, "-m", "gateway", "--config", str(config), "demo", "--stop-after"]
        port = yaml.safe_load(config.read_text(encoding="utf-8"))["server"]["port"]
        log = tmp / "demo.log"
        with log.open("w") as out:
            proc = subprocess.Popen(
                [*cmd, str(args.minutes * 60)], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
            # The clock starts when the gateway serves (its cameras start with it), after the model import.
            while proc.poll() is None and not serving(port):
                time.sleep(0.2)
            started = time.time()
            proc.wait()
        if proc.returncode != 0:
            print(log.read_text(encoding="utf-8")[-3000:], file=sys.stderr)
            return proc.returncode
        text = log.read_text(encoding="utf-8")
        started_line = next(
            (ln for ln in text.splitlines() if "started: {" in ln), "(no camera start in the log)"
        )
        with sqlite3.connect(tmp / "vigil.db") as db:
            rows = db.execute(
                "SELECT scene, kind, count(*), sum(repeats), min(raised_at) FROM alarms GROUP BY scene, kind"
            ).fetchall()
            first_frame = db.execute("SELECT min(raised_at) FROM alarms").fetchone()[0]
            clips = db.execute(
                "SELECT count(*), coalesce(sum(size), 0) FROM evidence WHERE kind = 'clip'"
            ).fetchone()
    start = dt.datetime.fromtimestamp(started, dt.UTC)
    extra = f", with {', '.join(args.enable)} turned on" if args.enable else ""
    if args.rearm_after is not None:
        extra += f", scenes re-armed after {args.rearm_after:g} s quiet"
    print(f"vigil demo for {args.minutes:g} min{extra}, counted from when the gateway served")
    print(f"scenes: {started_line.split('started: ', 1)[-1]}")
    print(f"{'scene':<12} {'kind':<6} {'alarms':>6} {'merged':>6} {'first after start (s)':>22}")
    firsts: dict[str, float] = {}
    for scene, kind, count, repeats, first in rows:
        after = (dt.datetime.fromisoformat(first).replace(tzinfo=dt.UTC) - start).total_seconds()
        firsts[scene] = min(firsts.get(scene, after), after)
        print(f"{scene:<12} {kind:<6} {count:>6} {repeats or 0:>6} {after:>22.1f}")
    per_scene: dict[str, int] = {}
    for scene, _kind, count, _r, _f in rows:
        per_scene[scene] = per_scene.get(scene, 0) + count
    worst = max(per_scene.values(), default=0)
    print(f"clips: {clips[0]} ({clips[1] / 1e6:.1f} MB); first alarm at {first_frame}")
    print(f"most alarms of one scene: {worst} (bar: at most {MAX_ALARMS})")
    for scene in ("intrusion", "crowd"):
        first = firsts.get(scene)
        verdict = "ok" if first is not None and first <= WITHIN_S else "MISSED"
        shown = f"{first:.1f} s" if first is not None else "never"
        print(f"first {scene} alarm: {shown} after the gateway served, bar {WITHIN_S:.0f} s: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
