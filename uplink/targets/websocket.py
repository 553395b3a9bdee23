"""The big-screen feed as an uplink target: alarms (and live statistics) to WebSocket and SSE clients.

Each delivered record is numbered with its outbox row id, which only grows. A screen remembers the
last number it saw and reconnects with ``since=N``: the hub replays what it still holds in memory,
and the gateway reads older records back from the outbox table (the durable log). A client that
cannot keep up is dropped rather than buffered without bound; it reconnects and replays.
Statistics are not numbered: a screen only ever wants the latest.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import Any

from uplink.records import UplinkMessage
from uplink.targets.base import DeliveryResult, Outcome, TargetContext, TargetKind, register_kind

log = logging.getLogger(__name__)


def feed_item(sequence: int, body: dict[str, Any]) -> dict[str, Any]:
    """What a screen receives for one alarm revision: the record without its bulky details."""
    alarm = {k: v for k, v in body.items() if k not in ("details", "evidence", "recipients")}
    # Only an alarm with a snapshot links one (a device's own alarm has no frame: no link, not a 404).
    has_snapshot = any(e.get("kind") == "snapshot" for e in body.get("evidence") or [])
    alarm["snapshot_url"] = f"/api/alarms/{body.get('id')}/snapshot" if has_snapshot else None
    return {"type": "alarm", "seq": sequence, "alarm": alarm}


class Subscriber:
    def __init__(self, depth: int) -> None:
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=depth)
        self.dropped = False
        self.going_away = False  # the gateway shuts down: the screen reconnects to the next one

    def take_all(self) -> list[dict[str, Any] | None]:
        """Everything queued now, without waiting."""
        out = []
        while not self.queue.empty():
            out.append(self.queue.get_nowait())
        return out


class FeedHub:
    def __init__(self, name: str, keep: int = 2000, client_depth: int = 500) -> None:
        self.name = name
        self.keep = keep
        self.client_depth = client_depth
        self.items: collections.deque[dict[str, Any]] = collections.deque(maxlen=keep)
        self.subscribers: set[Subscriber] = set()
        self.latest_stats: dict[str, Any] | None = None

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self.going_away()

    def going_away(self) -> None:
        """End every screen's stream (the gateway stops): their handlers return at once."""
        for sub in list(self.subscribers):
            sub.going_away = True
            self._drop(sub)

    async def deliver(self, message: UplinkMessage) -> DeliveryResult:
        """Accepted into the feed = delivered; the outbox row is the durable copy screens replay from."""
        item = feed_item(message.sequence, message.body)
        if self.items and self.items[-1]["seq"] >= message.sequence:
            return DeliveryResult(Outcome.DUPLICATE, f"seq {message.sequence} already in the feed")
        self.items.append(item)
        self._broadcast(item)
        return DeliveryResult(Outcome.DELIVERED, f"{len(self.subscribers)} screen(s) connected")

    def publish_stats(self, stats: dict[str, Any]) -> None:
        self.latest_stats = {"type": "stats", **stats}
        self._broadcast(self.latest_stats)

    def since(self, seq: int) -> list[dict[str, Any]] | None:
        """Items after ``seq`` held in memory, or None when some are older than the memory (read the log)."""
        if not self.items or seq < self.items[0]["seq"]:
            return None  # the memory may not hold everything after seq (gaps are other targets' rows)
        return [i for i in self.items if i["seq"] > seq]

    def subscribe(self) -> Subscriber:
        sub = Subscriber(self.client_depth)
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    def _broadcast(self, item: dict[str, Any]) -> None:
        for sub in list(self.subscribers):
            try:
                sub.queue.put_nowait(item)
            except asyncio.QueueFull:
                log.warning(
                    "feed %s: a screen fell %d items behind; dropping it (it replays)",
                    self.name,
                    self.client_depth,
                )
                self._drop(sub)

    def _drop(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)
        sub.dropped = True
        while not sub.queue.empty():
            sub.queue.get_nowait()
        sub.queue.put_nowait(None)


def _build(ctx: TargetContext) -> FeedHub:
    return FeedHub(ctx.name)


# A feed keeps its sequence order for replay: delivered one at a time.
KIND = register_kind(TargetKind("websocket", _build, ordered=True))
