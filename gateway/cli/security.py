"""`vigil secrets rotate|new-key` (the key that seals credentials in the database) and `vigil audit`
(the security log: failed logins, lockouts, refused origins, rotations)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any

from gateway.cli.common import open_config, open_database
from gateway.db.schema import Base
from gateway.secrets_at_rest import (
    ENV_KEY,
    ENV_KEY_FILE,
    RING,
    SecretKeyError,
    new_key,
    reseal_all,
    write_key_file,
)
from gateway.security_log import SecurityLog


def register(sub: Any) -> None:
    sec = sub.add_parser("secrets", help="the key that seals credentials in the database").add_subparsers(
        dest="secrets_command", required=True
    )
    p = sec.add_parser(
        "rotate",
        help="make a new key and re-seal every stored credential under it (the key file keeps "
        "the old keys only with --keep-old)",
    )
    p.add_argument("--keep-old", action="store_true", help="keep the old keys in the key file")
    p.set_defaults(func=cmd_secrets_rotate)
    sec.add_parser("new-key", help=f"print a new key (for {ENV_KEY})").set_defaults(func=cmd_secrets_new_key)

    p = sub.add_parser("audit", help="the security log: failed logins, lockouts, refused origins")
    p.add_argument("--limit", type=int, default=50, help="newest N records (default 50)")
    p.add_argument("--event", help="only this event, e.g. login_failed, login_locked")
    p.add_argument("--json", action="store_true", help="one JSON object a line")
    p.set_defaults(func=cmd_audit)


def key_file_of(args: argparse.Namespace) -> tuple[Path | None, Path]:
    """(the key file rotation writes, or None when the key comes from VIGIL_SECRET_KEY; storage root)."""
    config, _ = open_config(args)
    if os.environ.get(ENV_KEY):
        return None, config.storage.root
    if os.environ.get(ENV_KEY_FILE):
        return Path(os.environ[ENV_KEY_FILE]), config.storage.root
    return config.storage.secret_key_file or config.storage.root / "secret.key", config.storage.root


def cmd_secrets_rotate(args: argparse.Namespace) -> int:
    config, _ = open_config(args)
    db = open_database(config)  # loads the configured key ring
    db.ensure_current()
    path, root = key_file_of(args)
    journal = SecurityLog(root / "security.log")
    old: list[str] = []
    fresh = ""
    if path is None:
        print(
            f"the key comes from {ENV_KEY}: put the new key (`vigil secrets new-key`) first in it, "
            "keep the old ones after it, and run this again to re-seal under the first key",
            file=sys.stderr,
        )
    else:
        old = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln and ln[0] != "#"]
        fresh = new_key()
        write_key_file(path, [fresh, *old])  # both readable while re-sealing: nothing is ever unreadable
    try:
        with db.session() as s:
            written = reseal_all(s, Base.metadata)
    except SecretKeyError as exc:
        print(f"not rotated: {exc}", file=sys.stderr)
        return 2
    kid = RING.current_id
    if path is not None and not args.keep_old:
        write_key_file(path, [fresh])
    journal.record("secrets_rotated", key=kid, values=written, by="cli")
    where = "environment" if path is None else str(path)
    print(f"re-sealed {written} stored credential(s) under key {kid} ({where})")
    if path is not None and old and not args.keep_old:
        print(
            "the old key(s) are gone from the key file: a gateway running now picks up the new one by itself"
        )
    return 0


def cmd_secrets_new_key(args: argparse.Namespace) -> int:
    print(new_key())
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    config, _ = open_config(args)
    records = SecurityLog(config.storage.root / "security.log").read(limit=args.limit, event=args.event)
    for r in records:
        if args.json:
            print(json.dumps(r, ensure_ascii=False))
            continue
        at = dt.datetime.fromisoformat(r["at"]).strftime("%Y-%m-%d %H:%M:%S")
        rest = " ".join(f"{k}={v}" for k, v in r.items() if k not in ("at", "event"))
        print(f"{at} {r['event']:<20} {rest}")
    if not records:
        print("no security events recorded", file=sys.stderr)
    return 0
