"""Benchmark of the API behind the web console's pages with a large database.

Not a test: it prints measured numbers. Run `make bench` (or this file with the venv's python).
It seeds a temporary SQLite database (`vigil seed`: 100 cameras, 200,000 alarms over 180 days by
default), starts the gateway's HTTP app in this process on a free loopback port (analytics off: no
camera runs), logs in as an admin and times every call a console page makes, N runs each, reporting
p50/p95/max and whether it meets the issue's budget: list and detail pages under 1 s, statistics
pages under 3 s. With --postgres it does the same on a PostgreSQL server (a throwaway database
created through the one given, e.g. the local `test` database with trust auth).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from gateway.api import create_app  # noqa: E402
from gateway.app import Gateway  # noqa: E402
from gateway.auth import create_user  # noqa: E402
from gateway.cli.seed import seed  # noqa: E402
from gateway.config.schema import load_config  # noqa: E402
from gateway.db import upgrade  # noqa: E402
from tests.conftest import write_config  # noqa: E402
from tests.peers.ports import free_port  # noqa: E402

PASSWORD = "bench-password-123"
LIST_BUDGET_S, STATS_BUDGET_S = 1.0, 3.0


def calls(
    now: dt.datetime, camera_id: str, alarm_ids: list[str], before: str
) -> list[tuple[str, str, float]]:
    """(page: what, path, budget) for every request the console's pages make."""

    def ago(days: int) -> str:
        return (now - dt.timedelta(days=days)).isoformat().replace("+00:00", "Z")

    until = now.isoformat().replace("+00:00", "Z")
    d30 = f"since={ago(30)}&until={until}"
    d180 = f"since={ago(180)}&until={until}"
    out = [
        ("alarms: first page + total", "/api/alarms?limit=50&count=1", LIST_BUDGET_S),
        ("alarms: next page", f"/api/alarms?limit=50&before={before}", LIST_BUDGET_S),
        (
            "alarms: scene+status+count",
            "/api/alarms?scene=helmet&status=open&limit=50&count=1",
            LIST_BUDGET_S,
        ),
        (
            "alarms: camera+30 d+count",
            f"/api/alarms?camera_id={camera_id}&{d30}&limit=50&count=1",
            LIST_BUDGET_S,
        ),
        ("alarms: text q+count", "/api/alarms?q=intrusion&limit=50&count=1", LIST_BUDGET_S),
        (
            "alarms: verdict+region+count",
            "/api/alarms?verdict=false_positive&region=A区&count=1",
            LIST_BUDGET_S,
        ),
        ("alarm detail", f"/api/alarms/{alarm_ids[0]}", LIST_BUDGET_S),
        ("alarm detail (older)", f"/api/alarms/{alarm_ids[-1]}", LIST_BUDGET_S),
        ("alarm snapshot", f"/api/alarms/{alarm_ids[0]}/snapshot", LIST_BUDGET_S),
        ("cameras list", "/api/cameras", LIST_BUDGET_S),
        ("camera detail", f"/api/cameras/{camera_id}", LIST_BUDGET_S),
        ("camera config", f"/api/cameras/{camera_id}/config", LIST_BUDGET_S),
        ("scenes", "/api/scenes", LIST_BUDGET_S),
        ("stats overview", "/api/stats/overview", STATS_BUDGET_S),
    ]
    for days, period in ((30, d30), (180, d180)):
        for group in ("camera", "scene", "hour", "day", "weekday", "region"):
            out.append(
                (
                    f"stats {group} {days} d +compare",
                    f"/api/stats/alarms?group={group}&{period}&compare=1",
                    STATS_BUDGET_S,
                )
            )
        out.append((f"stats disposal {days} d", f"/api/stats/disposal?{period}", STATS_BUDGET_S))
    out += [
        (
            "csv: by camera 180 d",
            f"/api/stats/alarms?group=camera&{d180}&compare=1&format=csv",
            STATS_BUDGET_S,
        ),
        ("csv: by day 180 d", f"/api/stats/alarms?group=day&{d180}&format=csv", STATS_BUDGET_S),
        ("csv: disposal 180 d", f"/api/stats/disposal?{d180}&format=csv", STATS_BUDGET_S),
        ("csv: overview", "/api/stats/overview?format=csv", STATS_BUDGET_S),
    ]
    return out


Result = tuple[str, list[float], list[float], float, int]  # name, wall times, CPU times, budget, status


async def measure(gw: Gateway, runs: int) -> list[Result]:
    app = create_app(gw, start_gateway=False)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    base = f"http://127.0.0.1:{port}"
    results = []
    try:
        async with aiohttp.ClientSession(base) as http:
            r = await http.post("/api/auth/login", json={"username": "bench", "password": PASSWORD})
            r.raise_for_status()
            headers = {"Authorization": f"Bearer {(await r.json())['token']}"}
            first = await (await http.get("/api/alarms?limit=50", headers=headers)).json()
            old = await (
                await http.get("/api/alarms?limit=1&until=2000-01-01T00:00:00Z", headers=headers)
            ).json()
            cams = await (await http.get("/api/cameras", headers=headers)).json()
            ids = [first["items"][0]["id"], first["items"][-1]["id"]] + [a["id"] for a in old["items"]]
            plan = calls(dt.datetime.now(dt.UTC), cams["items"][0]["id"], ids, first["next"])
            for name, path, budget in plan:
                times, cpu, status = [], [], 0
                for _ in range(runs):
                    t0, c0 = time.perf_counter(), time.process_time()
                    async with http.get(path, headers=headers) as resp:
                        await resp.read()
                        status = resp.status
                    times.append(time.perf_counter() - t0)
                    # Server and client share this process: its CPU time is the request's work,
                    # which other programs on a busy machine do not inflate as they do wall time.
                    cpu.append(time.process_time() - c0)
                results.append((name, times, cpu, budget, status))
    finally:
        await runner.cleanup()
    return results


def report(label: str, results: list[Result]) -> bool:
    print(f"\n{label} (load average now {os.getloadavg()[0]:.1f})")
    print(f"{'call':34} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'cpu p50':>8} {'budget':>7}  ok")
    all_ok = True
    for name, times, cpu, budget, status in results:
        times = sorted(times)
        p50 = statistics.median(times)
        p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
        ok = status == 200 and max(times) < budget
        all_ok &= ok
        flag = "yes" if ok else ("NO" if status == 200 else f"HTTP {status}")
        print(
            f"{name:34} {p50 * 1000:8.1f} {p95 * 1000:8.1f} {max(times) * 1000:8.1f} "
            f"{statistics.median(cpu) * 1000:8.1f} {budget:6.0f}s  {flag}"
        )
    return all_ok


def run_one(label: str, url: str, folder: Path, args: argparse.Namespace) -> bool:
    config = load_config(
        write_config(folder, database={"url": url}, storage={"root": str(folder / "storage")}), environ={}
    )
    gw = Gateway(config, analyse=False)
    upgrade(gw.db.engine)
    with gw.db.session() as s:
        create_user(s, "bench", PASSWORD, "admin")
    t0 = time.perf_counter()
    rep = seed(
        gw.db,
        gw.store,
        cameras=args.cameras,
        alarms=args.alarms,
        days=args.days,
        seed_value=args.seed,
        timezone=config.site.timezone,
        retention_days=config.storage.evidence_retention_days,
    )
    print(
        f"{label}: seeded {rep.cameras} cameras, {rep.alarms} alarms, {rep.revisions} revisions, "
        f"{rep.disposals} disposals, {rep.evidence} evidence rows in {time.perf_counter() - t0:.1f} s"
    )
    try:
        return report(f"{label}, {args.runs} runs per call", asyncio.run(measure(gw, args.runs)))
    finally:
        gw.db.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=100)
    parser.add_argument("--alarms", type=int, default=200_000)
    parser.add_argument("--days", type=float, default=180.0)
    parser.add_argument("--runs", type=int, default=10, help="requests per call (default 10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--postgres",
        nargs="?",
        const="postgresql+psycopg://postgres@127.0.0.1:5432/test",
        help="also run on PostgreSQL: a throwaway database is created through this URL's server",
    )
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite run (with --postgres)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("alembic", "gateway"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    print(
        f"console API benchmark on {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}"
    )
    ok = True
    with tempfile.TemporaryDirectory(prefix="vigil-bench-console-") as tmp:
        folder = Path(tmp)
        if not args.no_sqlite:
            ok &= run_one("SQLite (WAL)", f"sqlite:///{folder / 'vigil.db'}", folder, args)
        if args.postgres:
            ok &= run_postgres(args, folder)
    print("\nall calls within budget" if ok else "\nSOME CALLS MISSED THEIR BUDGET")
    return 0 if ok else 1


def run_postgres(args: argparse.Namespace, folder: Path) -> bool:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin_url = make_url(args.postgres)
    name = f"vigil_bench_{os.getpid()}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        print(f"\nPostgreSQL at {admin_url.render_as_string(hide_password=True)} not usable: {exc}")
        return True
    try:
        url: Any = admin_url.set(database=name).render_as_string(hide_password=False)
        pg_folder = folder / "pg"
        pg_folder.mkdir()
        return run_one("PostgreSQL", url, pg_folder, args)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    raise SystemExit(main())
