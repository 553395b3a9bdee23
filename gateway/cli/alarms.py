"""`vigil alarms list`: stored alarms, newest first."""

from __future__ import annotations

import argparse
import json
from typing import Any

from sqlalchemy import select

from gateway.cli.common import open_config, open_database
from gateway.db.schema import Alarm, Evidence
from gateway.times import as_utc


def register(sub: Any) -> None:
    alarms = sub.add_parser("alarms", help="stored alarms").add_subparsers(
        dest="alarms_command", required=True
    )
    p = alarms.add_parser("list", help="list alarms, newest first")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--camera")
    p.add_argument("--scene")
    p.add_argument("--status")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_alarms_list)


def cmd_alarms_list(args: argparse.Namespace) -> int:

    config, path = open_config(args)
    db = open_database(config)
    db.ensure_current()
    stmt = select(Alarm).order_by(Alarm.id.desc()).limit(args.limit)
    if args.camera:
        stmt = stmt.where(Alarm.camera_id == args.camera)
    if args.scene:
        stmt = stmt.where(Alarm.scene == args.scene)
    if args.status:
        stmt = stmt.where(Alarm.status == args.status)
    with db.session() as s:
        rows = []
        for a in s.scalars(stmt):
            snap = s.scalar(
                select(Evidence.path).where(Evidence.alarm_id == a.id, Evidence.kind == "snapshot")
            )
            rows.append(
                {
                    "id": a.id,
                    "occurred_at": as_utc(a.occurred_at).isoformat(timespec="seconds"),
                    "camera_id": a.camera_id,
                    "scene": a.scene,
                    "region": a.region,
                    "status": a.status,
                    "score": a.score,
                    "message": a.message,
                    "snapshot": str(config.storage.root / snap) if snap else None,
                }
            )
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    if not rows:
        print(f"no alarms in {db.engine.url.render_as_string(hide_password=True)} (config {path})")
        return 0
    print(
        f"{'id':26}  {'occurred (UTC)':25}  {'camera':14}  {'scene':10}  {'region':12}  "
        f"{'status':9}  snapshot"
    )
    for r in rows:
        print(
            f"{r['id']:26}  {r['occurred_at']:25}  {r['camera_id']:14}  {r['scene']:10}  {r['region']:12}  "
            f"{r['status']:9}  {r['snapshot']}"
        )
    return 0
