"""What every uplink target implements, and what a delivery attempt can end in.

A target turns one outbox message (a canonical alarm record at one revision) into its upstream's
wire format and reports how the upstream answered. "Delivered" means acknowledged at the
application level (HTTP 2xx with the expected body code, MQTT PUBACK, a GB/T 28181 Response OK),
never merely "sent". The dispatcher owns retries, backoff, the circuit breaker and dead letters.

Every kind of target registers itself from its own file (``register_kind``): its kind key, the typed
settings read from the config's ``<kind>:`` block, and how to build it. ``uplink.targets`` imports
every module of the package, so ``KINDS`` holds them all; the gateway's config turns them into a
union keyed by ``kind``. Adding a target = one file here (plus its tests).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel

from uplink.records import UplinkMessage


class Outcome(enum.Enum):
    DELIVERED = "delivered"  # acknowledged by the upstream
    DUPLICATE = "duplicate"  # the upstream already had this idempotency key: counts as delivered
    RETRY = "retry"  # transient: network error, timeout, 5xx, 429, broker away
    REJECTED = "rejected"  # permanent: the upstream refuses this message (4xx, bad body): dead-letter it


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    outcome: Outcome
    detail: str = ""  # what the upstream said, for the outbox row's last_error / the console
    retry_after_s: float | None = None  # an upstream's Retry-After, when it gave one

    @property
    def done(self) -> bool:
        return self.outcome in (Outcome.DELIVERED, Outcome.DUPLICATE)


class TargetUnavailable(Exception):
    """The target cannot deliver at all right now (not configured, its transport is not running)."""


class Target(Protocol):
    name: str

    async def start(self) -> None:
        """Open connections; must not raise for an unreachable upstream (deliver reports RETRY)."""

    async def deliver(self, message: UplinkMessage) -> DeliveryResult:
        """Deliver one message and report the upstream's application-level answer; never raises."""

    async def close(self) -> None:
        """Release connections."""


async def classified(
    name: str,
    message: UplinkMessage,
    attempt: Callable[[UplinkMessage], Awaitable[DeliveryResult]],
    log: logging.Logger,
) -> DeliveryResult:
    """Run a target's delivery attempt under the contract (classify, never raise) and log the outcome."""
    key = message.idempotency_key
    try:
        result = await attempt(message)
    except Exception as exc:
        log.exception("uplink %s %s: unexpected error", name, key)
        result = DeliveryResult(Outcome.RETRY, f"internal error: {type(exc).__name__}: {exc}")
    log.info("uplink %s %s: %s %s", name, key, result.outcome.value, result.detail)
    return result


# How a target alarms a GB/T 28181 superior: (platform, record, idempotency key) -> (ok, detail).
CascadeSend = Callable[[str, dict[str, Any], str], Awaitable[tuple[bool, str]]]


@dataclass(frozen=True, slots=True)
class TargetContext:
    """What building one target may use: its name, typed settings, secrets and the gateway's links."""

    name: str
    settings: BaseModel | None  # the kind's settings model (None where the kind has none or it is left out)
    secret: str | None = None
    cipher_key: str | None = None
    cascade: CascadeSend | None = None  # the GB service's cascade link; None when none is configured


@dataclass(frozen=True, slots=True)
class TargetKind:
    """One kind of uplink target, declared in its own file."""

    kind: str  # the config's ``kind:`` value, and the key of its settings block
    build: Callable[[TargetContext], Target]
    settings: type[BaseModel] | None = None  # typed settings under ``<kind>:``; None = the kind has none
    settings_required: bool = True
    description: str = ""  # what the settings block holds (the config schema's description)
    ordered: bool = False  # delivered one at a time, in sequence order (a replayable feed)
    to_people: bool = False  # addresses the record's recipients (robots, e-mail, SMS): escalations reach it


KINDS: dict[str, TargetKind] = {}


def register_kind(kind: TargetKind) -> TargetKind:
    if kind.kind in KINDS and KINDS[kind.kind] is not kind:
        raise ValueError(f"uplink target kind {kind.kind!r} declared twice")
    KINDS[kind.kind] = kind
    return kind
