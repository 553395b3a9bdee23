"""Benchmark of issue 19 item 12: an admin's alarm list while unauthenticated wrong logins flood the
gateway. Not a test: it prints measured numbers.

A real `vigil serve` (SQLite, no cameras) with the login limits raised so that every wrong login is
hashed; the alarm list is timed idle, then while N wrong logins (distinct user names, all at once,
repeated) keep the password threads busy. Before issue 19 the hashing ran on the shared worker pool
and the list queued behind it (19.1 s with 60 logins in the issue's run); now hashing has its own
threads and a bounded line (503 beyond it).

    .venv/bin/python tests/benchmarks/bench_login_flood.py [--logins 60] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.security.served import serve  # noqa: E402


async def timed_list(client: httpx.AsyncClient, url: str, token: str, n: int) -> list[float]:
    took = []
    for _ in range(n):
        start = time.perf_counter()
        r = await client.get(f"{url}/api/alarms", headers={"Authorization": f"Bearer {token}"})
        r.raise_for_status()
        took.append(time.perf_counter() - start)
    return took


async def flood(client: httpx.AsyncClient, url: str, logins: int, rounds: int) -> Counter[int]:
    statuses: Counter[int] = Counter()
    for r in range(rounds):
        answers = await asyncio.gather(
            *(
                client.post(
                    f"{url}/api/auth/login", json={"username": f"nobody{r}-{i}", "password": "wrong!"}
                )
                for i in range(logins)
            )
        )
        statuses.update(a.status_code for a in answers)
    return statuses


async def measure(url: str, token: str, logins: int, rounds: int) -> None:
    limits = httpx.Limits(max_connections=logins + 10)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        idle = await timed_list(client, url, token, 20)
        flooding = asyncio.create_task(flood(client, url, logins, rounds))
        await asyncio.sleep(0.2)
        busy = await timed_list(client, url, token, 20)
        statuses = await flooding
    print(f"alarm list idle:        {ms(idle)}")
    print(f"alarm list under flood: {ms(busy)}")
    answered = dict(sorted(statuses.items()))
    print(f"{logins} x {rounds} wrong logins answered: {answered} (503 = hashing line full)")


def ms(took: list[float]) -> str:
    return f"p50 {statistics.median(took) * 1000:7.1f} ms  max {max(took) * 1000:7.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logins", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        limits: dict[str, object] = {"login_failures_per_account": 1000, "login_failures_per_address": 100000}
        with serve(Path(tmp), False, **limits) as served:
            asyncio.run(measure(served.url, served.token, args.logins, args.rounds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
