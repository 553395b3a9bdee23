"""Benchmark: a camera's snapshot from its running stream vs. a new RTSP session per snapshot.

Not a test: it prints measured numbers. A gateway runs the sample RTSP camera (vtest.avi, H.264, 1 s
GOP); then N snapshots are fetched over HTTP from the running camera (the last decoded frame, as JPEG)
and M are grabbed the old way (open the stream, decode the first keyframe, close), and the sample
camera's connection counter says how many sessions each way opened.

    .venv/bin/python tests/benchmarks/bench_snapshots.py [--snapshots 20] [--grabs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from aiohttp.test_utils import TestClient, TestServer  # noqa: E402

import gateway.api.cameras  # noqa: E402, F401
from adapters.rtsp.live import grab_jpeg  # noqa: E402
from adapters.rtsp.sample_camera import SampleRtspServer  # noqa: E402
from gateway.api import create_app  # noqa: E402
from gateway.app import Gateway  # noqa: E402
from gateway.auth import issue_token  # noqa: E402
from gateway.config.schema import load_config  # noqa: E402
from gateway.db import upgrade  # noqa: E402
from tests.conftest import write_config  # noqa: E402

MEDIA = Path(os.environ.get("VIGIL_MEDIA_DIR", ROOT.parent / "shared" / "media"))


def ms(values: list[float]) -> str:
    values = sorted(values)
    p95 = values[max(0, round(0.95 * len(values)) - 1)]
    median = statistics.median(values)
    return f"median {median * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, max {values[-1] * 1000:.1f} ms"


def wait_online(gw: Gateway) -> None:
    while gw.analytics.runners["cam"].health.state != "online":
        time.sleep(0.1)


async def run(snapshots: int, grabs: int) -> None:
    with (
        SampleRtspServer({"cam": MEDIA / "vtest.avi"}, max_seconds=8) as camera,
        tempfile.TemporaryDirectory() as tmp,
    ):
        cams = [{"id": "cam", "name": "cam", "url": camera.url("cam")}]
        gw = Gateway(load_config(write_config(Path(tmp), cameras=cams), environ={}), analyse=True)
        upgrade(gw.db.engine)
        with gw.db.session() as s:
            secret, _ = issue_token(s, "bench", "machine", "viewer", None)
        headers = {"Authorization": f"Bearer {secret}"}
        async with TestClient(TestServer(create_app(gw))) as client:
            await asyncio.to_thread(wait_online, gw)
            before = camera.clients_opened
            served = []
            for _ in range(snapshots):
                t0 = time.perf_counter()
                r = await client.get("/api/cameras/cam/snapshot", headers=headers)
                await r.read()
                served.append(time.perf_counter() - t0)
                await asyncio.sleep(0.5)
            served_sessions = camera.clients_opened - before
            before = camera.clients_opened
            grabbed = []
            for _ in range(grabs):
                t0 = time.perf_counter()
                await asyncio.to_thread(grab_jpeg, camera.url("cam"))
                grabbed.append(time.perf_counter() - t0)
            grab_sessions = camera.clients_opened - before
    print(
        f"snapshot from the running stream: {snapshots} fetches, {ms(served)}, {served_sessions} new sessions"
    )
    print(f"snapshot by a new RTSP session:   {grabs} grabs, {ms(grabbed)}, {grab_sessions} new sessions")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--snapshots", type=int, default=20)
    parser.add_argument("--grabs", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(run(args.snapshots, args.grabs))


if __name__ == "__main__":
    main()
