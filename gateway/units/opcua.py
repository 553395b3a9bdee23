"""Unit run states from the plant's OPC UA server (optional extra ``opcua``: asyncua, LGPL-3.0-or-later,
used unmodified as an installed library, so it stays an optional dependency of this Apache-2.0
project). One subscription watches a node per unit (``plant.opcua.nodes``); a value is the state name
(``hot_work``) or its index in running, shut_down, maintenance, hot_work, lifting. Each change goes to
``UnitStates`` (audited, ``via`` "opcua"); the session is re-established every ``retry_s`` when lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

from asyncua import Client, Node

from analyzers.scenes.unit_rules import UNIT_STATES
from gateway.config.plant import UnitsOpcUaConfig
from gateway.units.states import UnitError, UnitStates

log = logging.getLogger(__name__)

PUBLISH_MS = 500
WARN_EVERY_S = 60.0


def state_of(value: object) -> object:
    """A node value as a state name: names pass, an index picks from UNIT_STATES."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and 0 <= value < len(UNIT_STATES):
        return UNIT_STATES[value]
    return value.strip() if isinstance(value, str) else value


class _Changes:
    """asyncua's subscription handler: data changes of the watched nodes."""

    def __init__(self, owner: UnitsOpcUaClient, units_by_node: dict[str, str]) -> None:
        self.owner = owner
        self.units_by_node = units_by_node

    async def datachange_notification(self, node: Node, value: Any, data: Any) -> None:
        unit = self.units_by_node.get(node.nodeid.to_string())
        if unit is not None:
            await self.owner.apply(unit, value)


class UnitsOpcUaClient:
    """``await start()`` on the serving loop, ``await stop()`` at shutdown."""

    def __init__(
        self, config: UnitsOpcUaConfig, units: UnitStates, environ: Mapping[str, str] | None = None
    ) -> None:
        self.config = config
        self.units = units
        self._environ = os.environ if environ is None else environ
        self._task: asyncio.Task[None] | None = None
        self.connected = False
        self.rejected = 0
        self._last_warning = 0.0

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="units-opcua")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        cfg = self.config
        while True:
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep trying whatever the server did; the message says what
                self._warn(f"unit states: OPC UA server {cfg.url}: {type(exc).__name__}: {exc}; retrying")
            finally:
                self.connected = False
            await asyncio.sleep(cfg.retry_s)

    async def _session(self) -> None:
        cfg = self.config
        client = Client(url=cfg.url, timeout=10)
        if cfg.username:
            client.set_user(cfg.username)
            client.set_password(self._environ.get(cfg.password_env or "", ""))
        async with client:
            nodes = {unit: client.get_node(node_id) for unit, node_id in cfg.nodes.items()}
            handler = _Changes(self, {n.nodeid.to_string(): unit for unit, n in nodes.items()})
            subscription = await client.create_subscription(PUBLISH_MS, handler)
            await subscription.subscribe_data_change(list(nodes.values()))
            self.connected = True
            log.info("unit states: subscribed to %d OPC UA nodes on %s", len(nodes), cfg.url)
            while True:
                await asyncio.sleep(1.0)
                await client.check_connection()

    async def apply(self, unit: str, value: object) -> None:
        try:
            await asyncio.to_thread(self.units.set_state, unit, state_of(value), "opcua", "opcua", True)
        except UnitError as exc:
            self.rejected += 1
            self._warn(f"unit states: OPC UA value for {unit} dropped: {exc}")

    def _warn(self, text: str) -> None:
        now = time.monotonic()
        if now - self._last_warning >= WARN_EVERY_S:
            self._last_warning = now
            log.warning("%s", text)
