"""`vigil uplink ...`: target status, dead letters, replay and backfill (补传) from the command line.

They work on the database, so they also work while the gateway runs: its dispatchers pick the
re-queued rows up within a second.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any

from sqlalchemy import select

from gateway.cli.common import open_config, open_database
from gateway.db.schema import OutboxRow, UplinkTarget
from gateway.delivery.alarm_types import default_table, load_table
from gateway.delivery.outbox import Outbox, backfill, backlog, replay_dead
from gateway.times import as_utc


def _open(args: argparse.Namespace) -> tuple[Any, Any]:
    config, _ = open_config(args)
    db = open_database(config)
    db.ensure_current()
    site = config.site
    types = load_table(config.alarms.types_file) if config.alarms.types_file else default_table()
    return db, Outbox(
        {"name": site.name, "site_code": site.site_code, "enterprise_code": site.enterprise_code}, types
    )


def _target(session: Any, name: str) -> Any:
    row = session.scalar(select(UplinkTarget).where(UplinkTarget.name == name))
    if row is None:
        names = ", ".join(session.scalars(select(UplinkTarget.name))) or "none; start the gateway once"
        raise SystemExit(f"no uplink target {name!r} (known: {names})")
    return row


def _time(text: str) -> dt.datetime:
    try:
        value = as_utc(dt.datetime.fromisoformat(text))
    except ValueError as exc:
        raise SystemExit(f"not an ISO 8601 time: {text!r} (e.g. 2026-11-01T00:00:00+08:00)") from exc
    assert value is not None
    return value


def cmd_status(args: argparse.Namespace) -> int:
    db, _ = _open(args)
    with db.session() as s:
        counts = backlog(s)
        rows = [
            {
                "name": t.name,
                "kind": t.kind,
                "tier": t.tier,
                "enabled": t.enabled,
                "circuit": t.circuit_state,
                **{k: counts.get(t.id, {}).get(k, 0) for k in ("pending", "dead", "delivered")},
                "last_error": t.last_error,
            }
            for t in s.scalars(select(UplinkTarget).order_by(UplinkTarget.id))
        ]
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    print(
        f"{'target':20} {'kind':9} {'tier':10} {'circuit':9} {'pending':>7} {'dead':>5} "
        f"{'delivered':>9}  last error"
    )
    for r in rows:
        print(
            f"{r['name']:20} {r['kind']:9} {r['tier']:10} {r['circuit']:9} {r['pending']:>7} {r['dead']:>5} "
            f"{r['delivered']:>9}  {r['last_error'] or ''}"
        )
    return 0


def cmd_dead(args: argparse.Namespace) -> int:
    db, _ = _open(args)
    with db.session() as s:
        target = _target(s, args.target)
        rows = s.scalars(
            select(OutboxRow)
            .where(OutboxRow.target_id == target.id, OutboxRow.status == "dead")
            .order_by(OutboxRow.id)
        )
        for r in rows:
            print(f"{r.id:8}  {r.idempotency_key:30}  attempts {r.attempts:3}  {r.last_error or ''}")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    db, _ = _open(args)
    with db.session() as s:
        count = replay_dead(s, _target(s, args.target).id, args.id or None)
    print(f"{count} dead-lettered message(s) queued again for {args.target}")
    return 0


def cmd_backfill(args: argparse.Namespace) -> int:
    since, until = _time(args.since), _time(args.until)
    if since > until:
        print("--since must be before --until", file=sys.stderr)
        return 2
    db, outbox = _open(args)
    with db.session() as s:
        result = backfill(s, outbox, _target(s, args.target), since, until)
    print(
        f"backfill to {args.target}, alarms from {since.isoformat()} to {until.isoformat()}: "
        f"{result['requeued']} queued again, {result['created']} sent for the first time"
    )
    return 0


def register(sub: Any) -> None:
    uplink = sub.add_parser(
        "uplink", help="uplink targets: status, dead letters, replay, backfill"
    ).add_subparsers(dest="uplink_command", required=True)
    p = uplink.add_parser("status", help="targets with circuit state, backlog and last error")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)
    p = uplink.add_parser("dead", help="dead-lettered messages of a target")
    p.add_argument("target")
    p.set_defaults(func=cmd_dead)
    p = uplink.add_parser("replay", help="queue a target's dead-lettered messages again")
    p.add_argument("target")
    p.add_argument("--id", type=int, action="append", help="only this outbox row (repeat for several)")
    p.set_defaults(func=cmd_replay)
    p = uplink.add_parser("backfill", help="补传: send again every alarm that occurred in a time range")
    p.add_argument("target")
    p.add_argument("--since", required=True, help="ISO 8601 (without zone: UTC)")
    p.add_argument("--until", required=True, help="ISO 8601 (without zone: UTC)")
    p.set_defaults(func=cmd_backfill)
