"""The security log: failed logins, lockouts, refused origins, key rotations, role changes.

One JSON object a line in ``<storage.root>/security.log`` (rolled over at ``MAX_BYTES`` into ``.1`` ..
``.{KEEP}``), readable with ``vigil audit`` and ``GET /api/audit``. Each record is also logged at
WARNING on the ``vigil.security`` logger. Records never hold a password or a token: callers pass
names, addresses and reasons only.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger("vigil.security")

MAX_BYTES = 10 * 1024 * 1024
KEEP = 5
MAX_FIELD = 200  # a user name or address an attacker chose is cut, never logged whole


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return value[:MAX_FIELD].replace("\r", "\\r").replace("\n", "\\n")
    if isinstance(value, int | float | bool) or value is None:
        return value
    return _clean(str(value))


class SecurityLog:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def record(self, event: str, **fields: Any) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "event": event,
        }
        entry.update({k: _clean(v) for k, v in fields.items()})
        line = json.dumps(entry, ensure_ascii=False)
        log.warning("%s", line)
        with self._lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                if self.path.exists() and self.path.stat().st_size > MAX_BYTES:
                    self._roll()
                with self.path.open("a", encoding="utf-8") as fh:
                    fh.write(line + "\n")
            except OSError:
                log.exception("could not write the security log %s", self.path)
        return entry

    def _roll(self) -> None:
        for i in range(KEEP - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{i + 1}"))
        self.path.replace(self.path.with_name(f"{self.path.name}.1"))

    def _lines(self) -> Iterator[str]:
        for i in range(KEEP, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            if older.exists():
                yield from older.read_text(encoding="utf-8").splitlines()
        if self.path.exists():
            yield from self.path.read_text(encoding="utf-8").splitlines()

    def read(
        self, limit: int = 100, event: str | None = None, since: dt.datetime | None = None
    ) -> list[dict[str, Any]]:
        """The newest `limit` records (oldest first), optionally of one event kind and after a time."""
        out: list[dict[str, Any]] = []
        with self._lock:
            lines = list(self._lines())
        for line in lines:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if event is not None and entry.get("event") != event:
                continue
            if since is not None and dt.datetime.fromisoformat(entry["at"]) <= since:
                continue
            out.append(entry)
        return out[-limit:] if limit else out
