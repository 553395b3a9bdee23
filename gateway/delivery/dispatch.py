"""One dispatcher per uplink target: drains its outbox rows in order per alarm, never losing one.

- A row stays ``pending`` until the target acknowledges it at the application level, so a crash at
  any point means the row is delivered again after the restart; the idempotency key (alarm id +
  revision) in every message makes that repeat harmless, and a "duplicate" answer counts as delivered.
- Ordering per alarm: only the oldest pending row of an alarm is eligible, so revision 3 never
  overtakes revision 2; different alarms are delivered concurrently.
- Transient failures back off exponentially with jitter (tenacity's wait strategy); after
  ``max_attempts``, or at once for a message the upstream rejects as invalid (poison), the row goes
  to ``dead``, where it blocks nothing and waits for an admin's replay.
- A circuit breaker stops hammering an upstream that is down: after ``breaker_failures`` consecutive
  transient failures it opens for ``breaker_open_s``, then lets one trial through (half-open).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import cast

from sqlalchemy import and_, exists, select
from sqlalchemy.orm import aliased
from tenacity import RetryCallState, wait_exponential_jitter

from gateway.db import Database
from gateway.db.files import EvidenceStore
from gateway.db.schema import Evidence, OutboxRow, UplinkTarget, utcnow
from uplink.records import UplinkMessage
from uplink.targets.base import DeliveryResult, Outcome, Target

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DispatchPolicy:
    max_attempts: int = 12
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 300.0
    concurrency: int = 8  # alarms delivered at once (one row per alarm at a time)
    breaker_failures: int = 5
    breaker_open_s: float = 30.0
    poll_s: float = 1.0  # a safety net; commits wake the dispatcher at once


class CircuitBreaker:
    def __init__(self, failures: int, open_s: float) -> None:
        self.threshold, self.open_s = failures, open_s
        self.failures = 0
        self.opened_at: float | None = None

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "open" if time.monotonic() - self.opened_at < self.open_s else "half_open"

    def wait_s(self) -> float:
        """Seconds until a delivery may be tried (0 when closed or half-open)."""
        if self.opened_at is None:
            return 0.0
        return max(0.0, self.open_s - (time.monotonic() - self.opened_at))

    def success(self) -> None:
        self.failures, self.opened_at = 0, None

    def failure(self) -> None:
        self.failures += 1
        if self.failures >= self.threshold or self.opened_at is not None:  # a failed trial re-opens it
            self.opened_at = time.monotonic()


class Dispatcher:
    def __init__(
        self,
        db: Database,
        store: EvidenceStore,
        target_id: int,
        target: Target,
        policy: DispatchPolicy | None = None,
    ) -> None:
        self.db, self.store, self.target_id, self.target = db, store, target_id, target
        self.policy = policy or DispatchPolicy()
        self.breaker = CircuitBreaker(self.policy.breaker_failures, self.policy.breaker_open_s)
        self._wait = wait_exponential_jitter(
            multiplier=self.policy.backoff_initial_s,
            max=self.policy.backoff_max_s,
            jitter=self.policy.backoff_initial_s,
        )
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def wake(self) -> None:
        """Thread-safe: new rows were committed."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self.target.start()
        try:
            while True:
                pause = self.breaker.wait_s()
                if pause > 0:
                    await self._sleep(pause)
                    continue
                rows = await asyncio.to_thread(self._claim, 1 if self.breaker.state == "half_open" else None)
                if not rows:
                    await self._sleep(self.policy.poll_s)
                    continue
                results = await asyncio.gather(*(self._deliver(m) for m in rows))
                await asyncio.to_thread(self._record, list(zip(rows, results, strict=True)))
        finally:
            await self.target.close()

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        except TimeoutError:
            pass

    async def _deliver(self, message: UplinkMessage) -> DeliveryResult:
        try:
            return await self.target.deliver(message)
        except Exception as exc:  # a target must not raise; if one does, it is a transient failure
            log.exception("uplink %s: delivering %s raised", self.target.name, message.idempotency_key)
            return DeliveryResult(Outcome.RETRY, f"{type(exc).__name__}: {exc}")

    def _claim(self, limit: int | None) -> list[UplinkMessage]:
        """The due head row of each alarm's queue for this target, oldest first."""
        earlier = aliased(OutboxRow)
        blocked = exists().where(
            and_(
                earlier.target_id == OutboxRow.target_id,
                earlier.alarm_id == OutboxRow.alarm_id,
                earlier.status == "pending",
                earlier.id < OutboxRow.id,
            )
        )
        with self.db.session() as s:
            rows = list(
                s.scalars(
                    select(OutboxRow)
                    .where(
                        OutboxRow.target_id == self.target_id,
                        OutboxRow.status == "pending",
                        OutboxRow.next_attempt_at <= utcnow(),
                        ~blocked,
                    )
                    .order_by(OutboxRow.id)
                    .limit(limit or self.policy.concurrency)
                )
            )
            files: dict[str, dict[str, Path]] = {}
            if rows:
                for ev in s.scalars(
                    select(Evidence).where(Evidence.alarm_id.in_({r.alarm_id for r in rows}))
                ):
                    assert ev.alarm_id is not None
                    try:
                        files.setdefault(ev.alarm_id, {})[ev.kind] = self.store.path(ev.path)
                    except ValueError:
                        continue
            return [
                UplinkMessage(
                    target=self.target.name,
                    alarm_id=r.alarm_id,
                    revision=r.alarm_revision,
                    body=r.payload,
                    attachments=files.get(r.alarm_id, {}),
                    sequence=r.id,
                )
                for r in rows
            ]

    def _backoff_s(self, attempts: int) -> float:
        return float(self._wait(cast(RetryCallState, SimpleNamespace(attempt_number=attempts))))

    def _record(self, outcomes: list[tuple[UplinkMessage, DeliveryResult]]) -> None:
        now = utcnow()
        with self.db.session() as s:
            target = s.get(UplinkTarget, self.target_id)
            for message, result in outcomes:
                row = s.get(OutboxRow, message.sequence)
                if row is None or row.status != "pending":
                    continue
                row.attempts += 1
                if result.done:
                    row.status, row.delivered_at, row.last_error = "delivered", now, None
                    if result.outcome is Outcome.DUPLICATE:
                        row.last_error = f"duplicate: {result.detail}"[:500]
                    self.breaker.success()
                    if target is not None:  # delivered again: the last error is history, not the state
                        target.last_delivered_at, target.last_error = now, None
                    continue
                row.last_error = f"{result.outcome.value}: {result.detail}"[:2000]
                if target is not None:
                    target.last_error = row.last_error
                if result.outcome is Outcome.REJECTED:
                    # The upstream is alive and refuses this message: dead-letter it, keep the breaker closed.
                    self.breaker.success()
                    row.status = "dead"
                    log.error(
                        "uplink %s: %s rejected, dead-lettered: %s",
                        self.target.name,
                        row.idempotency_key,
                        result.detail,
                    )
                    continue
                self.breaker.failure()
                if row.attempts >= self.policy.max_attempts:
                    row.status = "dead"
                    log.error(
                        "uplink %s: %s dead after %d attempts",
                        self.target.name,
                        row.idempotency_key,
                        row.attempts,
                    )
                    continue
                delay = self._backoff_s(row.attempts)
                if result.retry_after_s is not None:
                    delay = max(delay, min(result.retry_after_s, self.policy.backoff_max_s))
                row.next_attempt_at = now + dt.timedelta(seconds=delay)
                log.warning(
                    "uplink %s: %s attempt %d failed (%s); next in %.1f s",
                    self.target.name,
                    row.idempotency_key,
                    row.attempts,
                    result.detail,
                    delay,
                )
            if target is not None:
                target.circuit_state = self.breaker.state
