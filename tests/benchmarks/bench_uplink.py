"""Benchmark of the uplink: outbox throughput and alarm-raise-to-receipt latency.

Not a test: it prints measured numbers. Run `make bench` (or this file with the venv's python).
The upstream is the loopback HTTP receiver of the test suite (HMAC-verified, JSON body with the
annotated snapshot inline as base64, answers {"code": 0}); the gateway uses SQLite (WAL) in a
temporary folder, as on the embedded default.

- throughput: N alarms queued while nothing is delivered, then the gateway starts and drains them;
  alarms/s = N / time to drain.
- latency: alarms raised one at a time at a steady rate while the gateway serves; for each, the
  time from the call that stores it (the analyzer's raise) to the receiver getting the request.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from aiohttp import web

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from analyzers import AlarmEvent, Detection, Region  # noqa: E402
from gateway.alarms.recorder import SceneContext  # noqa: E402
from gateway.api import create_app  # noqa: E402
from gateway.app import Gateway  # noqa: E402
from gateway.config.schema import load_config  # noqa: E402
from gateway.db import upgrade  # noqa: E402
from tests.conftest import write_config  # noqa: E402
from tests.peers.http_receiver import HttpReceiver  # noqa: E402

SECRET = "bench-secret"
IMAGE = np.random.default_rng(0).integers(0, 255, (576, 768, 3), dtype=np.uint8)  # a 768x576 frame
CTX = SceneContext(None, {}, None, [Region("zone", [(0, 0), (1, 0), (1, 1)])])


def event(i: int) -> AlarmEvent:
    now = time.time()
    return AlarmEvent(
        "cam-1",
        "intrusion",
        f"zone-{i}",
        occurred_at=now,
        raised_at=now,
        score=0.9,
        message="bench",
        detections=(Detection((10, 10, 60, 160), 0.9, 0, "person"),),
    )


def gateway(tmp: Path, url: str, concurrency: int) -> Gateway:
    os.environ["VIGIL_BENCH_SECRET"] = SECRET
    target = {
        "name": "park",
        "kind": "http",
        "tier": "park",
        "secret_env": "VIGIL_BENCH_SECRET",
        "http": {"url": url, "signing": "hmac"},
        "dispatch": {"concurrency": concurrency},
    }
    cam = {"id": "cam-1", "name": "bench", "url": "rtsp://127.0.0.1:9/x", "enabled": False}
    # Throughput: every event a new alarm (the repeat rules would merge a burst of them into a flood alarm).
    no_repeat_rules = {"defaults": {"cooldown_s": 0, "merge_distance": 0, "flood_alarms": 1_000_000}}
    config = write_config(tmp, cameras=[cam], uplink=[target], alarms=no_repeat_rules)
    gw = Gateway(load_config(config, environ={}), analyse=False)
    upgrade(gw.db.engine)
    gw.start()
    return gw


async def serve(gw: Gateway) -> web.AppRunner:
    runner = web.AppRunner(create_app(gw), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


async def wait_pending_zero(gw: Gateway, seconds: float) -> None:
    from sqlalchemy import func, select

    from gateway.db.schema import OutboxRow

    def pending() -> int:
        with gw.db.session() as s:
            return int(
                s.scalar(select(func.count()).select_from(OutboxRow).where(OutboxRow.status == "pending"))
                or 0
            )

    deadline = time.monotonic() + seconds
    while await asyncio.to_thread(pending):
        if time.monotonic() > deadline:
            raise SystemExit("the outbox did not drain in time")
        await asyncio.sleep(0.02)


async def throughput(n: int, concurrency: int) -> None:
    receiver = HttpReceiver(secret=SECRET)
    url = await receiver.start()
    with tempfile.TemporaryDirectory() as tmp:
        gw = gateway(Path(tmp), url, concurrency)
        t = time.perf_counter()
        for i in range(n):
            gw.recorder.record(event(i), IMAGE, CTX)
        store_s = time.perf_counter() - t
        t = time.perf_counter()
        runner = await serve(gw)
        await wait_pending_zero(gw, 600)
        drain_s = time.perf_counter() - t
        await runner.cleanup()
    await receiver.stop()
    ok = sum(1 for r in receiver.requests if r.status == 200)
    size = statistics.mean(len(r.raw) for r in receiver.requests)
    print(
        f"throughput, concurrency {concurrency}: {n} alarms stored in {store_s:.1f} s ({n / store_s:.0f}/s, "
        f"incl. 2 JPEG encodes each); delivered {ok} in {drain_s:.2f} s = {n / drain_s:.0f} alarms/s "
        f"(mean request {size / 1024:.0f} KiB)"
    )


async def latency(n: int, rate: float) -> None:
    receiver = HttpReceiver(secret=SECRET)
    url = await receiver.start()
    raised: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        gw = gateway(Path(tmp), url, 8)
        runner = await serve(gw)
        for i in range(n):
            t = time.time()
            alarm_id = await asyncio.to_thread(gw.recorder.record, event(i), IMAGE, CTX)
            assert alarm_id is not None
            raised[alarm_id] = t
            await asyncio.sleep(max(0.0, 1.0 / rate - (time.time() - t)))
        await wait_pending_zero(gw, 120)
        await runner.cleanup()
    await receiver.stop()
    lat = sorted(
        (r.received_at - raised[r.idempotency_key.split(":")[0]]) * 1000
        for r in receiver.requests
        if r.status == 200 and r.idempotency_key
    )
    p50, p95 = lat[len(lat) // 2], lat[int(len(lat) * 0.95) - 1]
    print(
        f"latency at {rate:.0f} alarms/s, {len(lat)} alarms: raise -> receipt p50 {p50:.1f} ms, "
        f"p95 {p95:.1f} ms, max {lat[-1]:.1f} ms (incl. storing the alarm: 2 JPEG encodes + 1 transaction)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--alarms", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=10.0, help="alarms/s in the latency run")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, force=True)
    machine = platform.processor() or platform.machine()
    print(f"machine: {machine}, {os.cpu_count()} cores, Python {platform.python_version()}")
    for concurrency in (1, 8):
        asyncio.run(throughput(args.alarms, concurrency))
    asyncio.run(latency(max(50, args.alarms // 10), args.rate))


if __name__ == "__main__":
    main()
