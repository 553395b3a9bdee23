"""The threads that run the API's database reads, apart from asyncio's default pool.

The default pool (min(32, CPUs + 4) threads: 6 on a 2-core box) also serves file I/O (snapshots,
evidence, exports) and everything else that calls ``asyncio.to_thread``; a slow download or a burst
of exports there would hold up every page's queries. The read paths that matter under load (token
lookups, alarm list and detail, overview, statistics: gateway/api/cache.py, principal_cache.py) run
here instead, on at most DB_THREADS threads, fewer than PostgreSQL's pool of 10 connections
(gateway/db/engine.py) so a read never waits for a connection.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
DB_THREADS = 8

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(DB_THREADS, thread_name_prefix="vigil-db")
        return _pool


async def run_db(work: Callable[[], T]) -> T:
    """Run ``work`` on a database thread, in the caller's context (its language, for one)."""
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(_executor(), context.run, work)
