"""`vigil seed`: fill a database with realistic cameras and alarms (gateway/db/seed.py), for load tests."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tqdm import tqdm

from gateway.alarms.evidence import EvidenceStore
from gateway.cli.common import open_config, open_database
from gateway.db.seed import SeedRefused, seed


def cmd_seed(args: argparse.Namespace) -> int:

    config, _ = open_config(args)
    db = open_database(config)
    db.ensure_current()
    store = EvidenceStore(config.storage.root)
    url = db.engine.url.render_as_string(hide_password=True)
    print(
        f"seeding {url}: {args.cameras} cameras, {args.alarms} alarms over {args.days:g} days",
        file=sys.stderr,
    )
    with tqdm(total=args.alarms, unit="alarm", file=sys.stderr, disable=args.no_progress) as bar:
        try:
            report = seed(
                db,
                store,
                cameras=args.cameras,
                alarms=args.alarms,
                days=args.days,
                seed_value=args.seed,
                timezone=config.site.timezone,
                retention_days=config.storage.evidence_retention_days,
                force=args.force,
                progress=bar.update,
            )
        except SeedRefused as exc:
            print(str(exc), file=sys.stderr)
            return 1
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(report.by_status.items()))
    replaced = f" (replaced an earlier seed of {report.replaced} alarms)" if report.replaced else ""
    print(
        f"seeded {report.cameras} cameras and {report.alarms} alarms with {report.revisions} revisions, "
        f"{report.disposals} disposals, {report.evidence} evidence rows in {report.seconds:.1f} s"
        f"{replaced}; statuses: {statuses}"
    )
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("seed", help="fill the database with realistic cameras and alarms (load tests, demos)")
    p.add_argument("--cameras", type=_positive_int, default=100, help="cameras to create (default 100)")
    p.add_argument("--alarms", type=_count, default=200_000, help="alarms to create (default 200000)")
    p.add_argument("--days", type=float, default=180.0, help="period the alarms spread over (default 180)")
    p.add_argument("--seed", type=int, default=0, help="random seed: the same seed makes the same data")
    p.add_argument("--force", action="store_true", help="seed even though the database holds real alarms")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_seed)


def _positive_int(text: str) -> int:
    value = _count(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from exc
    if not 0 <= value <= 10_000_000:
        raise argparse.ArgumentTypeError("must be between 0 and 10000000")
    return value
