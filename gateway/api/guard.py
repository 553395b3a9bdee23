"""Who may try a password, and what a machine token may call.

LoginGuard slows password guessing per account and per address with a doubling backoff. It counts
attempts *before* the password is checked (an admitted attempt holds a place until its answer), so
100 parallel guesses get no more tries than 100 sequential ones. A success clears only the failures of
the account that succeeded, never those of the address (an attacker's own account does not buy more
guesses). An address over its limit does not lock out everyone behind it (a NAT): an account that
already logged in from that address may still try, limited by its own account counter.

CALLBACK_ROUTES: what a token of kind "callback" (a safety-management system answering an alarm) may
call; everything else answers 403 for it whatever its scopes say.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

# A callback token reads the alarm it answers and moves it through its lifecycle; nothing else.
CALLBACK_ROUTES: frozenset[tuple[str, str]] = frozenset(
    {("GET", "/api/alarms/{alarm_id}"), ("GET", "/api/me")}
    | {
        ("POST", f"/api/alarms/{{alarm_id}}/{action}")
        for action in ("confirm", "reject", "dispose", "clear", "update", "close")
    }
)

MAX_KEYS = 50_000  # accounts and addresses remembered; the quietest are forgotten first


class LoginRefused(Exception):
    def __init__(self, wait_s: float, what: str) -> None:
        self.wait_s = max(1, math.ceil(wait_s))
        self.what = what
        super().__init__(f"too many failed logins for this {what}; try again in {self.wait_s} s")


@dataclass
class _Record:
    failures: deque[float] = field(default_factory=deque)
    pending: int = 0  # admitted attempts whose answer is not known yet
    lockouts: int = 0  # consecutive locks: each one doubles the next wait
    locked_until: float = 0.0


@dataclass(frozen=True)
class Ticket:
    """An admitted attempt: the counters it holds a place in."""

    username: str
    address: str
    keys: tuple[str, ...]


@dataclass(frozen=True)
class Lockout:
    key: str  # "account:NAME" or "address:ADDR"
    seconds: float


class LoginGuard:
    def __init__(
        self,
        per_account: int = 5,
        per_address: int = 30,
        window_s: float = 900.0,
        first_lock_s: float = 2.0,
        max_lock_s: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = {"account": per_account, "address": per_address}
        self.window_s, self.first_lock_s, self.max_lock_s = window_s, first_lock_s, max_lock_s
        self.clock = clock
        self._records: OrderedDict[str, _Record] = OrderedDict()
        self._known: OrderedDict[tuple[str, str], float] = OrderedDict()  # (address, account) that logged in

    def _record(self, key: str) -> _Record:
        rec = self._records.get(key)
        if rec is None:
            rec = self._records[key] = _Record()
            while len(self._records) > MAX_KEYS:
                oldest, old = next(iter(self._records.items()))
                if old.pending:
                    break
                del self._records[oldest]
        else:
            self._records.move_to_end(key)
        cutoff = self.clock() - self.window_s
        while rec.failures and rec.failures[0] < cutoff:
            rec.failures.popleft()
        if not rec.failures and rec.locked_until <= self.clock():
            rec.lockouts = 0
        return rec

    def _refusal(self, key: str) -> float | None:
        """Seconds to wait before this key may try again, None when it may try now."""
        rec = self._record(key)
        now = self.clock()
        if rec.locked_until > now:
            return rec.locked_until - now
        limit = self.limits[key.split(":", 1)[0]]
        if len(rec.failures) >= limit:
            # over the limit and the lock served: one attempt at a time, its failure locks again
            return 1.0 if rec.pending else None
        if len(rec.failures) + rec.pending >= limit:
            return 1.0  # the places left are taken by attempts in flight
        return None

    def admit(self, username: str, address: str) -> Ticket:
        """Take a place for one attempt (raises LoginRefused); call exactly one of failed, succeeded
        or release with the ticket afterwards. Synchronous: check and take happen in one step."""
        account = f"account:{username.casefold()}"
        keys: tuple[str, ...] = (account, f"address:{address}")
        if (address, username.casefold()) in self._known:
            keys = (account,)  # a NAT's known user is not locked out by a neighbour's guessing
        for key in keys:
            wait = self._refusal(key)
            if wait is not None:
                raise LoginRefused(wait, key.split(":", 1)[0])
        for key in keys:
            self._record(key).pending += 1
        return Ticket(username, address, keys)

    def release(self, ticket: Ticket) -> None:
        """The attempt ended without a verdict on the password (busy, error)."""
        for key in ticket.keys:
            rec = self._record(key)
            rec.pending = max(0, rec.pending - 1)

    def failed(self, ticket: Ticket) -> list[Lockout]:
        """A wrong password: counts against the ticket's keys; returns the locks it started."""
        self.release(ticket)
        now = self.clock()
        locks = []
        for key in ticket.keys:
            rec = self._record(key)
            rec.failures.append(now)
            if len(rec.failures) >= self.limits[key.split(":", 1)[0]]:
                rec.lockouts += 1
                seconds = min(self.max_lock_s, self.first_lock_s * 2 ** (rec.lockouts - 1))
                rec.locked_until = now + seconds
                locks.append(Lockout(key, seconds))
        return locks

    def succeeded(self, ticket: Ticket) -> None:
        """The right password: the account's own failures are forgiven (not the address's)."""
        self.release(ticket)
        self._records.pop(f"account:{ticket.username.casefold()}", None)
        pair = (ticket.address, ticket.username.casefold())
        self._known[pair] = self.clock()
        self._known.move_to_end(pair)
        while len(self._known) > MAX_KEYS:
            self._known.popitem(last=False)
