"""What every uplink target implements, and what a delivery attempt can end in.

A target turns one outbox message (a canonical alarm record at one revision) into its upstream's
wire format and reports how the upstream answered. "Delivered" means acknowledged at the
application level (HTTP 2xx with the expected body code, MQTT PUBACK, a GB/T 28181 Response OK),
never merely "sent". The dispatcher owns retries, backoff, the circuit breaker and dead letters.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

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
