"""ONVIF events through a PullPoint subscription (ONVIF Core, real-time pull point notification interface).

The subscription is created with CreatePullPointSubscription on the Events service, messages are fetched
with PullMessages (a long poll: the device answers as soon as it has messages, or when the timeout ends),
the subscription is renewed at 80 % of the time the device granted (in seconds, ``PT60S``: some cameras
misparse minutes), and it is unsubscribed on close. A subscription the device forgot (it rebooted, or
renewal came too late) is created again once before the error reaches the caller.

Everything goes through onvif-zeep-async's own services (events, pullpoint, subscription), so WS-Security
and the measured clock offset apply to every call, as for the rest of ``OnvifClient``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from lxml import etree

from adapters.onvif.client import EVENTS_NAMESPACE, OnvifAuthError, OnvifError, OnvifUnreachable

if TYPE_CHECKING:
    from adapters.onvif.client import OnvifClient

PULLPOINT_KEY = f"{EVENTS_NAMESPACE}/PullPointSubscription"
RENEW_AT = 0.8  # renew after this share of the granted subscription time
MOTION_TOPICS = ("RuleEngine/CellMotionDetector/Motion", "VideoSource/MotionAlarm")


@dataclass(frozen=True)
class OnvifEvent:
    """One notification: its topic, when the device says it happened, and its Source/Data simple items."""

    topic: str  # as the device wrote it, e.g. tns1:RuleEngine/CellMotionDetector/Motion
    utc_time: dt.datetime | None  # the device's UtcTime, as given (device clock, which may be off)
    operation: str | None  # PropertyOperation: Initialized, Changed or Deleted
    source: dict[str, str] = field(default_factory=dict)
    data: dict[str, str] = field(default_factory=dict)
    received_at: dt.datetime | None = None  # our clock, when it was pulled

    @property
    def is_motion(self) -> bool | None:
        """For a motion topic, whether motion is on (IsMotion / State); None for other topics."""
        if not any(self.topic.endswith(t) for t in MOTION_TOPICS):
            return None
        value = self.data.get("IsMotion", self.data.get("State"))
        return None if value is None else value.strip().lower() in ("true", "1")

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "time": self.utc_time.isoformat() if self.utc_time else None,
            "operation": self.operation,
            "source": dict(self.source),
            "data": dict(self.data),
            "received_at": self.received_at.isoformat() if self.received_at else None,
        }


class PullPointSubscription:
    """A PullPoint subscription on one ``OnvifClient``; create it with ``OnvifClient.pullpoint()``.

    ``async with client.pullpoint() as sub:`` then ``await sub.pull()`` (a batch, possibly empty) or
    ``async for event in sub``. ``renewals`` counts successful Renew calls.
    """

    def __init__(
        self,
        client: OnvifClient,
        *,
        ttl: dt.timedelta = dt.timedelta(seconds=60),
        pull_timeout: dt.timedelta = dt.timedelta(seconds=5),
        message_limit: int = 50,
    ) -> None:
        self._client = client
        self.ttl = ttl
        self.pull_timeout = pull_timeout
        self.message_limit = message_limit
        self.renewals = 0
        self.address: str | None = None  # the subscription's endpoint, as the device gave it
        self._manager: Any = None  # subscription service (Renew, Unsubscribe)
        self._pullpoint: Any = None  # pullpoint service (PullMessages)
        self._renew_at = 0.0  # loop time

    @property
    def active(self) -> bool:
        return self._manager is not None

    async def start(self) -> None:
        """Create the subscription; raises OnvifError when the device has no Events service."""
        if self.active:
            return
        client = self._client
        camera = await client._connected()
        if EVENTS_NAMESPACE not in camera.xaddrs:
            raise OnvifError(f"the device at {client.address} does not offer ONVIF events")
        events = await client._service("events")
        result = await client._call(
            "CreatePullPointSubscription",
            events.CreatePullPointSubscription(
                {"InitialTerminationTime": camera.get_next_termination_time(self.ttl)}
            ),
        )
        reference = getattr(getattr(result, "SubscriptionReference", None), "Address", None)
        address = getattr(reference, "_value_1", reference)
        if not address:
            raise OnvifError(
                f"the device at {client.address} created an event subscription without an address"
            )
        self.address = str(address).strip()
        camera.xaddrs[PULLPOINT_KEY] = camera.rewrite_url(self.address)
        self._manager = await client._call(
            "the subscription service", camera.create_subscription_service("PullPointSubscription")
        )
        self._pullpoint = await client._call("the pullpoint service", camera.create_pullpoint_service())
        client._subscriptions.add(self)
        current, termination = getattr(result, "CurrentTime", None), getattr(result, "TerminationTime", None)
        if camera.has_broken_relative_time(self.ttl, current, termination):
            # The device ignored the relative time: the library switches to absolute times; renew now.
            await self.renew()
        else:
            self._schedule(current, termination)

    async def renew(self) -> None:
        client = self._client
        camera = await client._connected()
        result = await client._call("Renew", self._manager.Renew(camera.get_next_termination_time(self.ttl)))
        self.renewals += 1
        self._schedule(getattr(result, "CurrentTime", None), getattr(result, "TerminationTime", None))

    async def pull(self, wait: dt.timedelta | None = None) -> list[OnvifEvent]:
        """The messages waiting on the device, waiting up to ``wait`` (default ``pull_timeout``) for one.

        Renews first when due. A subscription the device no longer knows is created again, once.
        """
        if not self.active:
            await self.start()
        # PullMessages waits whole seconds: renew now rather than in the middle of the next wait.
        if asyncio.get_running_loop().time() >= self._renew_at - 1.0:
            try:
                await self.renew()
            except OnvifError as exc:
                await self._restart(exc)
        wait = wait if wait is not None else self.pull_timeout
        # Never wait past the renewal time, so a quiet camera is still renewed in time.
        until_renew = self._renew_at - asyncio.get_running_loop().time()
        seconds = max(1, int(min(wait.total_seconds(), until_renew)))
        try:
            result = await self._pull(seconds)
        except OnvifError as exc:
            await self._restart(exc)
            result = await self._pull(seconds)
        now = dt.datetime.now(dt.UTC)
        messages = getattr(result, "NotificationMessage", None) or []
        return [replace(e, received_at=now) for e in (_event(m) for m in messages) if e is not None]

    async def close(self) -> None:
        """Unsubscribe (best effort: the device drops the subscription at its termination time anyway)."""
        self._client._subscriptions.discard(self)
        manager, self._manager, self._pullpoint = self._manager, None, None
        if manager is None:
            return
        try:
            await self._client._call("Unsubscribe", manager.Unsubscribe(), timeout_s=3.0)
        except OnvifError:
            pass

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def __aiter__(self) -> AsyncIterator[OnvifEvent]:
        while True:
            for event in await self.pull():
                yield event

    # -- internals ------------------------------------------------------------------------------------

    async def _pull(self, seconds: int) -> Any:
        return await self._client._call(
            "PullMessages",
            self._pullpoint.PullMessages({"Timeout": f"PT{seconds}S", "MessageLimit": self.message_limit}),
            timeout_s=seconds + self._client.timeout_s,
        )

    async def _restart(self, cause: OnvifError) -> None:
        """The subscription failed: credentials and reachability are the caller's; else subscribe again."""
        if isinstance(cause, OnvifAuthError | OnvifUnreachable):
            raise cause
        self._client._subscriptions.discard(self)
        self._manager = self._pullpoint = None
        await self.start()

    def _schedule(self, current: Any, termination: Any) -> None:
        granted = self.ttl
        if isinstance(current, dt.datetime) and isinstance(termination, dt.datetime):
            granted = termination - current
        seconds = max(granted.total_seconds(), 1.0) * RENEW_AT
        self._renew_at = asyncio.get_running_loop().time() + seconds


def _event(message: Any) -> OnvifEvent | None:
    topic_obj = getattr(message, "Topic", None)
    topic = getattr(topic_obj, "_value_1", topic_obj)
    payload = getattr(getattr(message, "Message", None), "_value_1", None)
    if topic is None or payload is None:
        return None
    if isinstance(payload, etree._Element):
        return _event_from_xml(str(topic).strip(), payload)
    return OnvifEvent(
        topic=str(topic).strip(),
        utc_time=_time(getattr(payload, "UtcTime", None)),
        operation=_opt(getattr(payload, "PropertyOperation", None)),
        source=_items(getattr(payload, "Source", None)),
        data=_items(getattr(payload, "Data", None)),
    )


def _event_from_xml(topic: str, payload: etree._Element) -> OnvifEvent:
    def items(part: str) -> dict[str, str]:
        found = payload.find(f"{{*}}{part}")
        if found is None:
            return {}
        return {str(i.get("Name")): str(i.get("Value", "")) for i in found.iterfind("{*}SimpleItem")}

    return OnvifEvent(
        topic=topic,
        utc_time=_time(payload.get("UtcTime")),
        operation=payload.get("PropertyOperation"),
        source=items("Source"),
        data=items("Data"),
    )


def _items(part: Any) -> dict[str, str]:
    items = getattr(part, "SimpleItem", None) or []
    return {str(i.Name): "" if i.Value is None else str(i.Value) for i in items if getattr(i, "Name", None)}


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)


def _time(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, str) and value.strip():
        try:
            parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return None
