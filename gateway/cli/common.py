"""What every `vigil` command module shares: the configuration and database it opens, the actor it
records, error-to-exit-status mapping and JSON output.

Exit status: 0 done, 2 bad input or refused (the reason on stderr), 3 refused by the promotion gate.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from analyzers.evaluation import EvalError, parse_class_map
from gateway.config.schema import GatewayConfig, default_config_path, load_config
from gateway.db import Database
from gateway.models.versions import GateRefused, ModelVersionError
from gateway.samples.library import SampleError
from gateway.secrets_at_rest import use_key_file
from gateway.times import as_utc

EXIT_BAD = 2
EXIT_GATE = 3

Command = Callable[[argparse.Namespace], int]


def open_config(args: argparse.Namespace) -> tuple[GatewayConfig, Path]:
    """The configuration named by --config (default: $VIGIL_CONFIG or config/demo.yaml) and its path."""
    path = Path(args.config) if args.config else default_config_path()
    return load_config(path), path


def open_database(config: GatewayConfig) -> Database:
    use_key_file(config.storage.secret_key_file or config.storage.root / "secret.key")  # sealed secrets
    return Database(config.database.url, config.database.echo)


def open_checked(args: argparse.Namespace) -> tuple[Database, Path]:
    """The gateway's database (checked current) and storage root."""
    config, _ = open_config(args)
    db = open_database(config)
    db.ensure_current()
    return db, config.storage.root


def actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def guard(name: str, run: Command) -> Command:
    """Library errors become one line on stderr and a non-zero exit status."""

    def wrapped(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except GateRefused as exc:
            print(f"vigil {name}: {exc}", file=sys.stderr)
            return EXIT_GATE
        except (SampleError, ModelVersionError, ValueError) as exc:
            print(f"vigil {name}: {exc}", file=sys.stderr)
            return EXIT_BAD

    return wrapped


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def parse_time(raw: str) -> dt.datetime:
    """An ISO 8601 time from the command line; one without zone is UTC."""
    return as_utc(dt.datetime.fromisoformat(raw))


def parse_map(text: str | None) -> dict[str, str] | None:
    if not text:
        return None

    try:
        return parse_class_map(text)
    except EvalError as exc:
        raise ValueError(str(exc)) from exc
