"""The `vigil` command line: the top-level parser, one sub-command group per module of gateway/cli."""

from __future__ import annotations

import argparse
import logging
import sys

from gateway.cli import (
    admin,
    alarms,
    cameras,
    discover,
    enrol,
    evaluate,
    models,
    node,
    samples,
    security,
    seed,
    serve,
    train,
    uplink,
    video,
)
from gateway.config.schema import ConfigError
from gateway.db.engine import SchemaOutdated

log = logging.getLogger("vigil")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vigil", description="vigil video-analytics gateway")
    parser.add_argument("--config", help="gateway YAML (default: $VIGIL_CONFIG or config/demo.yaml)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    serve.register(sub)  # `serve`, `demo`
    admin.register(sub)  # `config`, `db`, `users`, `tokens`
    alarms.register(sub)
    cameras.register(sub)  # `cameras`: state and fault reason of each camera, `cameras test URL`
    models.register(sub)  # `models` (pack and versions), `scenes`
    video.register(sub)  # `video import`, `replay`: history replay over the video library
    uplink.register(sub)
    samples.register(sub)  # `samples` and `tasks`
    train.register(sub)  # `train TASK` (needs the `train` extra: PyTorch CPU)
    evaluate.register(sub)
    enrol.register(sub)  # `enrol`: a plant's uniforms, extinguishers, role markers
    discover.register(sub)
    node.register(sub)  # `node start`, `cluster status|rebalance`: scale-out on Ray
    seed.register(sub)  # `seed`: realistic cameras and alarms for load tests
    security.register(sub)  # `secrets rotate|new-key`, `audit`
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.INFO
    logging.basicConfig(level=level, format=LOG_FORMAT)
    # onvif-zeep-async calls logging.basicConfig() when imported, which made the call above a no-op:
    # its plain stderr handler gets our format (with timestamps) and the root logger our level.
    for handler in logging.getLogger().handlers:
        if type(handler) is logging.StreamHandler:
            handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logging.getLogger().setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"configuration error in {exc.path}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    except SchemaOutdated as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
