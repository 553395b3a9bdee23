"""Unit run states from the plant's MQTT broker: the gateway subscribes to ``<prefix>/+/state`` (QoS 1)
and applies each message to ``UnitStates`` (audited, ``via`` "mqtt"). The payload is the state name
(``hot_work``) or JSON ``{"state": "hot_work", "actor": "DCS-2"}``. A message the gateway cannot use is
logged (throttled) and dropped; the connection is retried every ``retry_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Mapping

import aiomqtt

from gateway.config.plant import UnitsMqttConfig
from gateway.units.states import UnitError, UnitStates

log = logging.getLogger(__name__)

MAX_PAYLOAD = 4096
WARN_EVERY_S = 60.0


def parse_payload(payload: bytes) -> tuple[str, str | None]:
    """(state, actor) from a message body; raises UnitError when it is neither form."""
    if len(payload) > MAX_PAYLOAD:
        raise UnitError(f"message larger than {MAX_PAYLOAD} bytes", f"消息超过 {MAX_PAYLOAD} 字节", 413)
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise UnitError("message is not UTF-8 text", "消息不是 UTF-8 文本") from exc
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UnitError(f"malformed JSON ({exc})", f"JSON 格式错误（{exc}）") from exc
        if not isinstance(data, dict) or not isinstance(data.get("state"), str):
            raise UnitError('JSON needs a string "state"', 'JSON 需要字符串字段 "state"')
        actor = data.get("actor")
        return data["state"], actor if isinstance(actor, str) else None
    return text, None


class UnitsMqttSubscriber:
    """``await start()`` on the serving loop, ``await stop()`` at shutdown."""

    def __init__(
        self, config: UnitsMqttConfig, units: UnitStates, environ: Mapping[str, str] | None = None
    ) -> None:
        self.config = config
        self.units = units
        self._environ = os.environ if environ is None else environ
        self._task: asyncio.Task[None] | None = None
        self.connected = False
        self.received = 0
        self.rejected = 0
        self._last_warning = 0.0
        self._held_back = 0

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="units-mqtt")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        cfg = self.config
        password = self._environ.get(cfg.password_env) if cfg.password_env else None
        topic = f"{cfg.topic_prefix}/+/state"
        while True:
            try:
                async with aiomqtt.Client(
                    cfg.host,
                    cfg.port,
                    identifier=cfg.client_id,
                    username=cfg.username,
                    password=password,
                    clean_session=False,
                ) as client:
                    await client.subscribe(topic, qos=1)
                    self.connected = True
                    log.info("unit states: subscribed to %s on %s:%d", topic, cfg.host, cfg.port)
                    async for message in client.messages:
                        await self._apply(str(message.topic), bytes(message.payload or b""))
            except asyncio.CancelledError:
                raise
            except (aiomqtt.MqttError, OSError) as exc:
                self._warn(
                    f"unit states: MQTT broker {cfg.host}:{cfg.port}: {exc}; retrying in {cfg.retry_s:.0f} s"
                )
            finally:
                self.connected = False
            await asyncio.sleep(cfg.retry_s)

    async def _apply(self, topic: str, payload: bytes) -> None:
        self.received += 1
        prefix = self.config.topic_prefix + "/"
        unit_id = topic[len(prefix) : -len("/state")] if topic.startswith(prefix) else ""
        try:
            if not unit_id or "/" in unit_id:
                raise UnitError(
                    f"topic {topic!r} is not {prefix}<unit>/state",
                    f"主题 {topic!r} 不是 {prefix}<装置>/state",
                )
            state, actor = parse_payload(payload)
            await asyncio.to_thread(self.units.set_state, unit_id, state, actor or "mqtt", "mqtt", True)
        except UnitError as exc:
            self.rejected += 1
            self._warn(f"unit states: message on {topic} dropped: {exc}")

    def _warn(self, text: str) -> None:
        now = time.monotonic()
        if now - self._last_warning < WARN_EVERY_S:
            self._held_back += 1
            return
        held, self._held_back, self._last_warning = self._held_back, 0, now
        log.warning("%s%s", text, f" ({held} more held back)" if held else "")
