"""Video diagnosis: its cost per frame, and the false-alarm check (nothing raised on the normal sample
video over a long run).

Not a test: it prints measured numbers.
1. cost: ``VideoDiagnosis.offer`` on vtest.avi frames (768x576) and on 1920x1080 copies, every frame
   measured (check_interval_s 0), CPU ms per measured frame; with the default check_interval_s (1 s) a
   camera pays this once a second whatever its frame rate.
2. false alarms: a real gateway (camera runner, diagnosis thread, alarm writer on SQLite) watching the
   whole vtest.avi looped by the sample RTSP server with the default thresholds for --minutes; prints
   the diagnosis alarms raised (expected: none), frames measured and the mean measure cost.

Usage: python tests/benchmarks/bench_health.py [--minutes 10] [--skip-run]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import av  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402
from sqlalchemy import select  # noqa: E402

from analyzers.health import DiagnosisSettings, Reference, VideoDiagnosis  # noqa: E402

MEDIA = Path(os.environ.get("VIGIL_MEDIA_DIR", ROOT.parent / "shared" / "media"))


def frames(n: int = 200) -> list[np.ndarray]:
    out = []
    with av.open(str(MEDIA / "vtest.avi")) as c:
        for f in c.decode(video=0):
            out.append(f.to_ndarray(format="bgr24"))
            if len(out) == n:
                break
    return out


def cost(images: list[np.ndarray]) -> float:
    settings = DiagnosisSettings(check_interval_s=0.001)
    diag = VideoDiagnosis("bench", settings, Reference.of(images[0]))
    cpu = time.process_time()
    for i, image in enumerate(images):
        diag.offer(image, 1000.0 + i)
    return (time.process_time() - cpu) / len(images) * 1000


def false_alarms(minutes: float) -> None:
    from adapters.rtsp.sample_camera import SampleRtspServer
    from gateway.app import Gateway
    from gateway.config.schema import load_config
    from gateway.db import upgrade
    from gateway.db.schema import Alarm
    from tests.conftest import write_config

    with tempfile.TemporaryDirectory() as tmp, SampleRtspServer({"vtest": MEDIA / "vtest.avi"}) as server:
        cam = {"id": "vtest", "name": "vtest", "url": server.url("vtest")}
        gw = Gateway(load_config(write_config(Path(tmp), cameras=[cam]), environ={}), analyse=True)
        upgrade(gw.db.engine)
        gw.start()
        started = time.monotonic()
        try:
            while time.monotonic() - started < minutes * 60:
                time.sleep(30)
                d = gw.health.diagnosis("vtest")
                done = (time.monotonic() - started) / 60
                measured = d.measured if d else 0
                print(f"  {done:5.1f} min: measured {measured}, faults {gw.health.faults('vtest')}")
            d = gw.health.diagnosis("vtest")
            with gw.db.session() as s:
                raised = [(a.scene, a.message) for a in s.scalars(select(Alarm))]
            health = gw.analytics.runners["vtest"].health
            print(f"false-alarm run: {minutes:.0f} min of vtest.avi (looped), default thresholds")
            measured = d.measured if d else 0
            print(f"  frames decoded {health.frames}, measured {measured}, reconnects {health.reconnects}")
            if d is not None and d.measured:
                print(f"  mean measure cost {d.cost_s / d.measured * 1000:.2f} ms CPU (the camera thread's)")
            print(f"  diagnosis alarms raised: {len(raised)} {raised}")
        finally:
            gw.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--skip-run", action="store_true", help="only the cost per frame")
    args = p.parse_args()
    images = frames()
    big = [cv2.resize(i, (1920, 1080)) for i in images[:100]]
    print(f"cost per measured frame: 768x576 {cost(images):.2f} ms CPU, 1920x1080 {cost(big):.2f} ms CPU")
    print("  (with the default check_interval_s 1 s: that much CPU per camera per second)")
    if not args.skip_run:
        false_alarms(args.minutes)


if __name__ == "__main__":
    main()
