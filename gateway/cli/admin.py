"""`vigil config|db|users|tokens`: check the configuration, migrate the database, add people and tokens."""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import sys
from pathlib import Path
from typing import Any

from gateway.auth import create_user, issue_token
from gateway.cli.cameras import LANG_CHOICES, cli_lang
from gateway.cli.common import open_config, open_database
from gateway.config.check import check_file
from gateway.config.schema import GatewayConfig
from gateway.db import current_revision, head_revision, upgrade
from gateway.i18n import t


def register(sub: Any) -> None:
    cfg = sub.add_parser("config", help="check a configuration or write its JSON schema").add_subparsers(
        dest="config_command", required=True
    )
    p = cfg.add_parser("check", help="report every error in a YAML config with its line")
    p.add_argument("file")
    p.add_argument("--lang", choices=LANG_CHOICES, help="language of the messages (default: $LANG)")
    p.set_defaults(func=cmd_config_check)
    p = cfg.add_parser("schema", help="print (or --out FILE) the JSON schema of the configuration")
    p.add_argument("--out")
    p.set_defaults(func=cmd_config_schema)

    dbp = sub.add_parser("db", help="database migrations").add_subparsers(dest="db_command", required=True)
    dbp.add_parser("upgrade", help="migrate the database to the current schema").set_defaults(
        func=cmd_db_upgrade
    )
    dbp.add_parser("current", help="show the database's schema revision").set_defaults(func=cmd_db_current)

    users = sub.add_parser("users", help="people who log in").add_subparsers(
        dest="users_command", required=True
    )
    p = users.add_parser("add", help="add a user (password from a prompt or stdin)")
    p.add_argument("username")
    p.add_argument("--role", choices=["admin", "operator", "viewer"], required=True)
    p.add_argument("--password-stdin", action="store_true")
    p.set_defaults(func=cmd_users_add)

    tokens = sub.add_parser("tokens", help="machine API tokens").add_subparsers(
        dest="tokens_command", required=True
    )
    p = tokens.add_parser("create", help="create a scoped token and print it once")
    p.add_argument("name")
    p.add_argument("--role", choices=["admin", "operator", "viewer"], default="viewer")
    p.add_argument("--kind", choices=["machine", "callback"], default="machine")
    p.add_argument("--scope", action="append", help="repeat for each scope; default: all the role allows")
    p.add_argument("--ttl-days", type=float)
    p.set_defaults(func=cmd_tokens_create)


def cmd_config_check(args: argparse.Namespace) -> int:
    """Every problem in one run, each with its line; exit status 1 when there is any."""
    path, lang = Path(args.file), cli_lang(args)
    result = check_file(path, lang=lang)
    if result.config is None:
        print(t("check.problems", lang, path=path, count=len(result.problems)), file=sys.stderr)
        for problem in result.problems:
            print(f"  {problem.text(path)}", file=sys.stderr)
        return 1
    config = result.config
    scenes = sum(len(c.scenes) for c in config.cameras)
    counts = {"cameras": len(config.cameras), "scenes": scenes, "targets": len(config.uplink)}
    print(t("check.ok", lang, path=path, **counts))
    return 0


def cmd_config_schema(args: argparse.Namespace) -> int:
    schema = GatewayConfig.model_json_schema()
    text = json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:

    config, _ = open_config(args)
    db = open_database(config)
    before = current_revision(db.engine)
    upgrade(db.engine)
    after = current_revision(db.engine)
    print(f"database {db.engine.url.render_as_string(hide_password=True)}: {before or 'empty'} -> {after}")
    return 0


def cmd_db_current(args: argparse.Namespace) -> int:

    config, _ = open_config(args)
    db = open_database(config)
    print(f"current {current_revision(db.engine) or 'empty'}, head {head_revision(db.engine)}")
    return 0


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise SystemExit("the passwords differ; nothing was changed")
    return first


def cmd_users_add(args: argparse.Namespace) -> int:

    config, _ = open_config(args)
    db = open_database(config)
    db.ensure_current()
    password = _read_password(args)
    try:
        with db.session() as s:
            create_user(s, args.username, password, args.role)
    except ValueError as exc:
        print(f"not added: {exc}", file=sys.stderr)
        return 1
    print(f"user {args.username} added with role {args.role}")
    return 0


def cmd_tokens_create(args: argparse.Namespace) -> int:

    config, _ = open_config(args)
    db = open_database(config)
    db.ensure_current()
    ttl = dt.timedelta(days=args.ttl_days) if args.ttl_days else None
    try:
        with db.session() as s:
            secret, _row = issue_token(
                s, args.name, args.kind, args.role, set(args.scope) if args.scope else None, ttl=ttl
            )
    except ValueError as exc:
        print(f"not created: {exc}", file=sys.stderr)
        return 1
    print(secret)
    print("(shown once: store it now)", file=sys.stderr)
    return 0
