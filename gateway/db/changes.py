"""Which data this process has changed: a generation number per group of tables, raised whenever a
transaction that wrote to one of the group's tables commits.

A cache keyed by the generation it read *before* computing never serves what a later write made
stale (gateway/api/cache.py). The number is raised twice: when the commit starts and again when the
connection goes back to the pool (after the database has committed), so a reader that starts between
the two stores its result under a generation that is already gone.

Only this process's writes are seen; writes by another process (a second gateway on the same
PostgreSQL) reach a cache when its entry's time to live runs out.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from sqlalchemy import Engine, event

# group -> the tables whose writes make the group's cached answers stale. Not the cameras: running
# cameras write their health every few seconds; camera names and health in cached answers (overview,
# the list's text search) may be as old as the cache's time to live.
GROUPS: dict[str, frozenset[str]] = {
    "alarms": frozenset({"alarms", "alarm_revisions", "alarm_disposals", "evidence"}),
    "auth": frozenset({"users", "api_tokens"}),
}
_BY_TABLE = {table: group for group, tables in GROUPS.items() for table in tables}
_WRITE = re.compile(r'^\s*(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)"?', re.IGNORECASE)
_PENDING = "vigil_written_groups"

_lock = threading.Lock()
_generations: dict[str, int] = dict.fromkeys(GROUPS, 0)


def generation(group: str) -> int:
    """The group's current generation (any committed write in this process raises it)."""
    return _generations[group]


def bump(groups: set[str] | frozenset[str]) -> None:
    with _lock:
        for group in groups:
            _generations[group] += 1


def written_group(statement: str) -> str | None:
    """The group an INSERT/UPDATE/DELETE statement writes to, if any."""
    found = _WRITE.match(statement)
    return _BY_TABLE.get(found.group(1).lower()) if found else None


def watch(engine: Engine) -> None:
    """Follow the engine's writes to the watched tables (called once per engine)."""

    @event.listens_for(engine, "before_cursor_execute")
    def _note(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        group = written_group(statement)
        if group is not None:
            conn.info.setdefault(_PENDING, set()).add(group)

    @event.listens_for(engine, "commit")
    def _committing(conn: Any) -> None:
        pending = conn.info.get(_PENDING)
        if pending:
            bump(pending)

    @event.listens_for(engine, "rollback")
    def _rolled_back(conn: Any) -> None:
        conn.info.pop(_PENDING, None)

    @event.listens_for(engine.pool, "checkin")
    def _returned(_dbapi_conn: Any, record: Any) -> None:
        if record is None:
            return
        pending = record.info.pop(_PENDING, None)
        if pending:
            bump(pending)
