"""The `vigil` command line (console script `gateway.cli:main`; also `python -m gateway.cli`).

One module per command group, each with ``register(sub)``; ``common`` holds what they share.
"""

from gateway.cli.common import open_config as _config  # for gateway/evaluate.py and gateway/cli_train.py
from gateway.cli.common import open_database as _database
from gateway.cli.main import build_parser, main

__all__ = ["_config", "_database", "build_parser", "main"]
