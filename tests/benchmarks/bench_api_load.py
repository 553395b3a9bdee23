"""Load benchmark of the console's read API: N concurrent clients for T seconds against a real
`vigil serve` (issue 19 item 19).

Not a test: it prints measured numbers. It seeds a database (`vigil seed`'s code: 100 cameras,
200,000 alarms over 180 days by default; --alarms for a smaller one), starts `vigil serve --no-analyse`
in its own process on a free loopback port, logs in as an admin and runs --clients aiohttp clients for
--seconds on the mix a control room's consoles make: the alarm list (first page with its total, a
filtered page, the next page), an alarm's detail, the home page overview and the statistics by scene
and by day. It prints requests/s, p50/p95/max latency, errors and the gateway's CPU (of 100 % per core).

    nice .venv/bin/python tests/benchmarks/bench_api_load.py --clients 50 --seconds 60
    nice .venv/bin/python tests/benchmarks/bench_api_load.py --database postgresql

--data DIR keeps the seeded database there and reuses it on the next run (seeding 200,000 alarms
takes minutes), so before/after runs measure the same data. --distinct makes every request's query
unique, so no answer comes from the gateway's 2 s answer cache: the worst case of many different
filters.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from gateway.auth import create_user  # noqa: E402
from gateway.cli.seed import seed  # noqa: E402
from gateway.config.schema import load_config  # noqa: E402
from gateway.db import Database, upgrade  # noqa: E402
from gateway.db.files import EvidenceStore  # noqa: E402
from gateway.secrets_at_rest import use_key_file  # noqa: E402
from tests.conftest import write_config  # noqa: E402
from tests.peers.ports import free_port  # noqa: E402

PASSWORD = "bench-password-123"
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PG_NAME = "vigil_bench_load"
TICK = os.sysconf("SC_CLK_TCK")


def mix(
    now: dt.datetime, camera_ids: list[str], alarm_ids: list[str], before: str
) -> list[tuple[float, str]]:
    """(weight, path): what a control room's consoles ask for, most often the list and the home page."""

    def ago(days: int) -> str:
        return (now - dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")

    until = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    cam = random.Random(1).choice(camera_ids)
    return [
        (4, "/api/alarms?limit=50&count=1"),
        (2, f"/api/alarms?limit=50&before={before}"),
        (2, "/api/alarms?status=open&limit=50&count=1"),
        (1, f"/api/alarms?camera_id={cam}&limit=50&count=1"),
        *[(4 / len(alarm_ids), f"/api/alarms/{a}") for a in alarm_ids],
        (3, "/api/stats/overview"),
        (1, f"/api/stats/alarms?group=scene&since={ago(7)}&until={until}&compare=1"),
        (1, f"/api/stats/alarms?group=day&since={ago(30)}&until={until}"),
    ]


def prepare(folder: Path, url: str, args: argparse.Namespace) -> Path:
    """A config on `url`, migrated, with the bench admin and the seeded alarms (reused when present)."""
    config_path = write_config(
        folder, database={"url": url}, storage={"root": str(folder / "storage")}, server={"host": "127.0.0.1"}
    )
    config = load_config(config_path, environ={})
    use_key_file(config.storage.root / "secret.key")  # the one `vigil serve` uses: seeded secrets open
    db = Database(config.database.url)
    try:
        upgrade(db.engine)
        marker = folder / f"seeded-{args.database}-{args.alarms}"
        if marker.exists():
            print(f"reusing the seeded database in {folder}")
            return config_path
        with db.session() as s:
            create_user(s, "bench", PASSWORD, "admin")
        t0 = time.perf_counter()
        rep = seed(
            db,
            EvidenceStore(config.storage.root),
            cameras=args.cameras,
            alarms=args.alarms,
            days=args.days,
            seed_value=0,
            timezone=config.site.timezone,
            retention_days=config.storage.evidence_retention_days,
        )
        print(f"seeded {rep.cameras} cameras, {rep.alarms} alarms in {time.perf_counter() - t0:.0f} s")
        marker.touch()
    finally:
        db.dispose()
    return config_path


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


async def wait_up(base: str, proc: subprocess.Popen[bytes]) -> None:
    async with aiohttp.ClientSession(base) as http:
        for _ in range(600):
            if proc.poll() is not None:
                raise SystemExit(f"vigil serve ended with {proc.returncode}")
            try:
                async with http.get("/healthz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit("vigil serve did not answer /healthz in 120 s")


async def load(base: str, pid: int, clients: int, seconds: float, distinct: bool = False) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(base, connector=connector) as http:
        r = await http.post("/api/auth/login", json={"username": "bench", "password": PASSWORD})
        r.raise_for_status()
        headers = {"Authorization": f"Bearer {(await r.json())['token']}"}
        first = await (await http.get("/api/alarms?limit=200", headers=headers)).json()
        cams = await (await http.get("/api/cameras", headers=headers)).json()
        ids = [a["id"] for a in first["items"][::10]]
        plan = mix(dt.datetime.now(dt.UTC), [c["id"] for c in cams["items"]], ids, first["items"][49]["id"])
        paths, weights = [p for _, p in plan], [w for w, _ in plan]
        latencies: list[float] = []
        errors: dict[str, int] = {}
        end = time.perf_counter() + seconds

        async def client(n: int) -> None:
            rng = random.Random(n)
            while time.perf_counter() < end:
                path = rng.choices(paths, weights)[0]
                if distinct:  # a query no request asked before: never an answer another one computed
                    path += ("&" if "?" in path else "?") + f"nocache={n}-{rng.random()}"
                t0 = time.perf_counter()
                try:
                    async with http.get(path, headers=headers) as resp:
                        await resp.read()
                        ok = resp.status == 200
                        if not ok:
                            key = f"HTTP {resp.status} {path.split('?')[0]}"
                            errors[key] = errors.get(key, 0) + 1
                except aiohttp.ClientError as exc:
                    ok = False
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                if ok:
                    latencies.append(time.perf_counter() - t0)

        c0, t0 = cpu_seconds(pid), time.perf_counter()
        await asyncio.gather(*(client(n) for n in range(clients)))
        wall = time.perf_counter() - t0
        cpu = cpu_seconds(pid) - c0
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * (len(latencies) - 1)))] if latencies else 0.0

    return {
        "requests": len(latencies),
        "rate": len(latencies) / wall,
        "p50": pct(0.50),
        "p95": pct(0.95),
        "max": latencies[-1] if latencies else 0.0,
        "errors": errors,
        "cpu": 100 * cpu / wall,
    }


def serve_and_load(config_path: Path, args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    env = {**os.environ, "VIGIL_CONFIG": str(config_path)}
    log = open(config_path.parent / "serve.log", "wb")  # noqa: SIM115 - closed below
    cmd = [sys.executable, "-m", "gateway.cli", "serve", "--no-analyse", "--port", str(port)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(wait_up(base, proc))
        return asyncio.run(load(base, proc.pid, args.clients, args.seconds, args.distinct))
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def postgres_url(args: argparse.Namespace) -> str:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin_url = make_url(args.postgres)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": PG_NAME})
        if exists and not args.data:
            conn.execute(text(f'DROP DATABASE "{PG_NAME}" WITH (FORCE)'))
            exists = None
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{PG_NAME}"'))
    admin.dispose()
    return admin_url.set(database=PG_NAME).render_as_string(hide_password=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--cameras", type=int, default=100)
    parser.add_argument("--alarms", type=int, default=200_000)
    parser.add_argument("--days", type=float, default=180.0)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--postgres", default=PG_DEFAULT, help=f"server for --database postgresql ({PG_DEFAULT})"
    )
    parser.add_argument("--data", help="keep the seeded database in this folder and reuse it next time")
    parser.add_argument(
        "--distinct",
        action="store_true",
        help="make every request's query unique (an unused parameter): the cost when nothing is cached",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    print(
        f"API load benchmark on {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}; "
        f"{args.clients} clients for {args.seconds:g} s, {args.database}"
    )
    with tempfile.TemporaryDirectory(prefix="vigil-bench-load-") as tmp:
        folder = Path(args.data) if args.data else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{folder / 'vigil.db'}" if args.database == "sqlite" else postgres_url(args)
        config_path = prepare(folder, url, args)
        res = serve_and_load(config_path, args)
    print(
        f"{res['requests']} requests, {res['rate']:.1f} req/s, p50 {res['p50'] * 1000:.0f} ms, "
        f"p95 {res['p95'] * 1000:.0f} ms, max {res['max'] * 1000:.0f} ms, "
        f"errors {sum(res['errors'].values())} {res['errors'] or ''}, gateway CPU {res['cpu']:.0f} % "
        f"(of {100 * (os.cpu_count() or 1)} %), load average after {os.getloadavg()[0]:.1f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
