"""The uplink service: builds each configured target, runs its dispatcher, and answers the admin.

Secrets come from the environment variable a target names (``secret_env``); they are never stored
in the database, logged, or returned by the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
from typing import Any

from sqlalchemy import select

from gateway.config.schema import UplinkTargetConfig
from gateway.db import Database
from gateway.db.files import EvidenceStore
from gateway.db.schema import OutboxRow, UplinkTarget, utcnow
from gateway.delivery.dispatch import Dispatcher, DispatchPolicy
from gateway.delivery.outbox import Outbox, backfill, backlog, replay_dead
from gateway.times import as_utc, iso
from uplink.targets import KINDS, TargetContext
from uplink.targets.base import CascadeSend, Target
from uplink.targets.websocket import FeedHub

log = logging.getLogger(__name__)


class UnknownTarget(LookupError):
    def __init__(self, message: str, key: str | None = None, **params: object) -> None:
        super().__init__(message)
        self.key, self.params = key, params  # the message in gateway.i18n's tables (the API words it)


def build_target(
    cfg: UplinkTargetConfig, environ: dict[str, str] | None = None, cascade: CascadeSend | None = None
) -> Target:
    """One target, built by its kind (uplink/targets/*.py) from its typed settings and the secrets its
    config names; a ``gb28181`` target alarms through ``cascade`` (the GB service's link to its
    platform; None when no cascade is configured)."""
    env = os.environ if environ is None else environ
    secret = env.get(cfg.secret_env) if cfg.secret_env else None
    if cfg.secret_env and not secret:
        log.warning("uplink %s: %s is not set; sending without a secret", cfg.name, cfg.secret_env)
    cipher_key = env.get(cfg.cipher_key_env) if cfg.cipher_key_env else None
    context = TargetContext(cfg.name, cfg.settings, secret, cipher_key, cascade)
    return KINDS[cfg.kind].build(context)


def policy(cfg: UplinkTargetConfig) -> DispatchPolicy:
    d = cfg.dispatch
    return DispatchPolicy(
        max_attempts=d.max_attempts,
        backoff_initial_s=d.backoff_initial_s,
        backoff_max_s=d.backoff_max_s,
        # A feed must keep its sequence order for replay; other targets only keep order per alarm.
        concurrency=1 if KINDS[cfg.kind].ordered else d.concurrency,
        breaker_failures=d.breaker_failures,
        breaker_open_s=d.breaker_open_s,
    )


class UplinkService:
    def __init__(
        self,
        targets: list[UplinkTargetConfig],
        db: Database,
        store: EvidenceStore,
        outbox: Outbox,
        cascade: CascadeSend | None = None,
    ) -> None:
        self._targets, self._db, self._store, self._outbox = targets, db, store, outbox
        self._cascade = cascade
        self.dispatchers: dict[str, Dispatcher] = {}
        self.hubs: dict[str, FeedHub] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Start one dispatcher per enabled configured target (call on the serving loop)."""
        ids = await asyncio.to_thread(self._target_ids)
        for cfg in self._targets:
            if not cfg.enabled or cfg.name not in ids:
                continue
            target = build_target(cfg, cascade=self._cascade)
            if isinstance(target, FeedHub):
                self.hubs[cfg.name] = target
            dispatcher = Dispatcher(self._db, self._store, ids[cfg.name], target, policy(cfg))
            self.dispatchers[cfg.name] = dispatcher
            self._outbox.subscribe(dispatcher.wake)
            self._tasks.append(asyncio.create_task(dispatcher.run(), name=f"uplink-{cfg.name}"))
            log.info("uplink %s (%s, %s) started", cfg.name, cfg.kind, cfg.tier)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    def _target_ids(self) -> dict[str, int]:
        with self._db.session() as s:
            return {t.name: t.id for t in s.scalars(select(UplinkTarget))}

    def feed(self, name: str | None = None) -> FeedHub:
        if name is None:
            if not self.hubs:
                raise UnknownTarget("no websocket (big-screen) uplink target is configured", "api.no_feed")
            return next(iter(self.hubs.values()))
        if name not in self.hubs:
            raise UnknownTarget(f"no websocket uplink target {name!r}", "api.no_feed_target", target=name)
        return self.hubs[name]

    def status(self) -> list[dict[str, Any]]:
        """Every target with its health and backlog; never its secret."""
        with self._db.session() as s:
            counts = backlog(s)
            out = []
            for t in s.scalars(select(UplinkTarget).order_by(UplinkTarget.id)):
                c = counts.get(t.id, {"pending": 0, "dead": 0, "delivered": 0, "oldest_pending": None})
                oldest = as_utc(c["oldest_pending"])
                live = self.dispatchers.get(t.name)
                out.append(
                    {
                        "id": t.id,
                        "name": t.name,
                        "kind": t.kind,
                        "tier": t.tier,
                        "enabled": t.enabled,
                        "running": live is not None,
                        "available": getattr(live.target, "available", True) if live else False,
                        "circuit": live.breaker.state if live else t.circuit_state,
                        "pending": c["pending"],
                        "dead": c["dead"],
                        "delivered": c["delivered"],
                        "oldest_pending_s": round((utcnow() - oldest).total_seconds(), 1) if oldest else None,
                        "last_error": t.last_error,
                        "last_delivered_at": iso(t.last_delivered_at),
                    }
                )
            return out

    def _target(self, s: Any, name: str) -> UplinkTarget:
        row = s.scalar(select(UplinkTarget).where(UplinkTarget.name == name))
        if row is None:
            raise UnknownTarget(f"no uplink target {name!r}", "api.no_target", target=name)
        return row

    def dead_letters(self, name: str, limit: int = 100) -> list[dict[str, Any]]:
        with self._db.session() as s:
            target = self._target(s, name)
            rows = s.scalars(
                select(OutboxRow)
                .where(OutboxRow.target_id == target.id, OutboxRow.status == "dead")
                .order_by(OutboxRow.id)
                .limit(limit)
            )
            return [
                {
                    "id": r.id,
                    "alarm_id": r.alarm_id,
                    "revision": r.alarm_revision,
                    "attempts": r.attempts,
                    "last_error": r.last_error,
                    "created_at": iso(r.created_at),
                }
                for r in rows
            ]

    def replay(self, name: str, row_ids: list[int] | None = None) -> int:
        with self._db.session() as s:
            count = replay_dead(s, self._target(s, name).id, row_ids)
        self._wake(name)
        return count

    def backfill(self, name: str, since: dt.datetime, until: dt.datetime) -> dict[str, int]:
        with self._db.session() as s:
            result = backfill(s, self._outbox, self._target(s, name), since, until)
        self._wake(name)
        return result

    def _wake(self, name: str) -> None:
        if name in self.dispatchers:
            self.dispatchers[name].wake()
