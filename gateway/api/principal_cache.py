"""Who a token is, remembered for a moment: most requests skip the token and user lookups.

Every API request resolves its token (two queries and often a worker-thread hop behind the other
requests). Under load the same few tokens ask again and again, so a resolved principal is kept for
PRINCIPAL_TTL_S under the token's hash, valid while the users and tokens tables are unchanged in this
process (gateway/db/changes.py): a revocation, a disabled user or a changed role made here applies
to the very next request. What another process changes (or a token's expiry) applies within the time
to live. Failures are never kept: a wrong token is looked up every time.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from aiohttp import web

from gateway.auth import Principal, hash_token
from gateway.db.changes import generation
from gateway.db.workers import run_db

PRINCIPAL_TTL_S = 2.0
MAX_PRINCIPALS = 1024


class PrincipalCache:
    def __init__(self, ttl_s: float = PRINCIPAL_TTL_S, max_entries: int = MAX_PRINCIPALS) -> None:
        self.ttl_s, self.max_entries = ttl_s, max_entries
        self._known: OrderedDict[str, tuple[int, float, Principal]] = OrderedDict()

    async def resolve(self, token: str, lookup: Callable[[], Principal]) -> Principal:
        """The token's principal, from the cache or from ``lookup`` (run on a database thread; its
        AuthError passes through)."""
        key, gen = hash_token(token), generation("auth")
        entry = self._known.get(key)
        if entry is not None and entry[0] == gen and time.monotonic() - entry[1] <= self.ttl_s:
            return entry[2]
        who = await run_db(lookup)
        self._known[key] = (gen, time.monotonic(), who)
        self._known.move_to_end(key)
        while len(self._known) > self.max_entries:
            self._known.popitem(last=False)
        return who


PRINCIPALS: web.AppKey[PrincipalCache] = web.AppKey("principal_cache")
