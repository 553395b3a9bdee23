"""The `vigil` command line (console script `gateway.cli:main`; also `python -m gateway.cli`).

One module per command group, each with ``register(sub)``; ``common`` holds what they share.
"""

from gateway.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
