"""Short-lived cache of read answers (alarm list pages, overview, statistics), serialised once.

An answer is kept under its route, query string and language together with the generation of the
data it was read from (gateway/db/changes.py): an alarm written in this process makes every answer
computed before it stale at once; the time to live bounds what other processes' writes and the clock
(today's and this week's totals) may leave behind. Concurrent requests for the same missing answer
wait for one computation instead of each running the same queries (50 consoles polling the home page
cost one query set per interval, not 50).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from aiohttp import web

from gateway.db.changes import generation
from gateway.db.workers import run_db
from gateway.i18n import current_lang

ANSWERS_TTL_S = 2.0
MAX_ANSWERS = 512

Key = tuple[str, str, str]  # (route name, path with query, language)


class AnswerCache:
    """JSON answers by key, valid while their data generation holds and their time to live lasts."""

    def __init__(self, ttl_s: float = ANSWERS_TTL_S, max_entries: int = MAX_ANSWERS) -> None:
        self.ttl_s, self.max_entries = ttl_s, max_entries
        self._answers: OrderedDict[Key, tuple[int, float, bytes]] = OrderedDict()
        self._computing: dict[tuple[Key, int], asyncio.Future[bytes]] = {}
        self.hits = self.misses = 0

    def fresh(self, key: Key, gen: int) -> bytes | None:
        entry = self._answers.get(key)
        if entry is None or entry[0] != gen or time.monotonic() - entry[1] > self.ttl_s:
            return None
        return entry[2]

    def store(self, key: Key, gen: int, body: bytes) -> None:
        self._answers[key] = (gen, time.monotonic(), body)
        self._answers.move_to_end(key)
        while len(self._answers) > self.max_entries:
            self._answers.popitem(last=False)

    def clear(self) -> None:
        self._answers.clear()

    async def answer(self, key: Key, group: str, compute: Callable[[], Any]) -> bytes:
        """The JSON body for ``key``: cached, or computed on a database thread (gateway/db/workers.py),
        one computation for all who ask at the same time, from data of ``group``'s current generation."""
        gen = generation(group)  # read before computing: a write during it leaves the result stale
        body = self.fresh(key, gen)
        if body is not None:
            self.hits += 1
            return body
        flight = self._computing.get((key, gen))
        if flight is not None:
            self.hits += 1
            return await asyncio.shield(flight)
        self.misses += 1
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._computing[(key, gen)] = future
        try:
            body = await run_db(lambda: json.dumps(compute(), ensure_ascii=False).encode())
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody else waited
            raise
        finally:
            self._computing.pop((key, gen), None)
        future.set_result(body)
        self.store(key, gen, body)
        return body


CACHE: web.AppKey[AnswerCache] = web.AppKey("answer_cache")


async def cached_json(
    request: web.Request, name: str, compute: Callable[[], Any], group: str = "alarms"
) -> web.Response:
    """A JSON response for this request from the app's cache (create_app sets it), or from
    ``compute`` run on a database thread."""
    key = (name, request.path_qs, current_lang() or "")
    body = await request.app[CACHE].answer(key, group, compute)
    return web.Response(body=body, content_type="application/json", charset="utf-8")
