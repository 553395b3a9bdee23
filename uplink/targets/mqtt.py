"""MQTT target: one QoS 1 publish per alarm revision, delivered only once the broker's PUBACK arrives.

aiomqtt's ``Client.publish`` registers the message id and waits for paho's ``on_publish``, which paho
calls for QoS 1 only on PUBACK, so a returned ``publish`` is an acknowledged one. paho keeps its
in-flight state in memory only; the outbox row stays pending until this target says DELIVERED.

A broken connection is dropped and opened afresh on the next ``deliver``: the dispatcher's backoff is
the reconnect policy, so there is no background reconnect loop to race with it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import string
from typing import Any, Literal

import aiomqtt
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from uplink.fieldmap import FieldMap, dumps, lookup
from uplink.records import UplinkMessage
from uplink.targets.base import DeliveryResult, Outcome, TargetContext, TargetKind, classified, register_kind
from uplink.targets.http import TlsSettings

log = logging.getLogger(__name__)

# Topic placeholders and where each comes from in the canonical record.
TOPIC_FIELDS: dict[str, str] = {
    "site_code": "site.site_code",
    "enterprise_code": "site.enterprise_code",
    "scene": "scene",
    "type": "type.code",
    "camera_id": "camera.id",
    "gb_channel_id": "camera.gb_channel_id",
    "action": "action",
    "priority": "priority",
    "alarm_id": "id",
    "revision": "revision",
}
_UNSAFE_LEVEL = re.compile(r"[/+#\x00]")


class MqttTargetSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str
    port: int = Field(default=1883, ge=1, le=65535)
    topic: str = "vigil/{site_code}/alarms/{scene}"
    client_id: str | None = None  # fixed, so the broker recognises the gateway across reconnects
    username: str | None = None  # the password is the target's secret
    tls: TlsSettings | None = None  # None: plain TCP
    qos: Literal[1] = 1
    keepalive_s: int = Field(default=30, ge=5)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    publish_timeout_s: float = Field(default=10.0, gt=0)  # waiting for PUBACK
    field_map: FieldMap = Field(default_factory=FieldMap.default)
    idempotency_field: str | None = "idempotency_key"  # dotted path in the mapped object

    @field_validator("topic")
    @classmethod
    def _known_placeholders(cls, value: str) -> str:
        names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        unknown = names - TOPIC_FIELDS.keys()
        if unknown:
            raise ValueError(
                f"topic placeholders {sorted(unknown)} unknown; known: {', '.join(TOPIC_FIELDS)}"
            )
        if "+" in value or "#" in value:
            raise ValueError("a publish topic must not contain the wildcards + or #")
        return value

    @model_validator(mode="after")
    def _no_multipart(self) -> MqttTargetSettings:
        if self.field_map.uses_multipart:
            raise ValueError("MQTT cannot send multipart pictures; use base64, data_url or url")
        return self


def topic_for(template: str, body: dict[str, Any]) -> str:
    """The topic for one record; a value that would add levels or wildcards is made safe."""
    values: dict[str, str] = {}
    for name, path in TOPIC_FIELDS.items():
        value = lookup(body, path)
        text = "" if value is None else str(value)
        values[name] = _UNSAFE_LEVEL.sub("_", text) or "_"
    return template.format_map(values)


class MqttTarget:
    """``MqttTarget(name, settings, secret)``: ``secret`` is the broker password (or None)."""

    def __init__(self, name: str, settings: MqttTargetSettings, secret: str | None = None) -> None:
        self.name = name
        self.settings = settings
        self._password = secret
        # Built now so a missing CA or key file fails at construction, not on the first alarm.
        self._tls = settings.tls.context() if settings.tls is not None else None
        self._client: aiomqtt.Client | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:  # never show the secret
        return f"MqttTarget({self.name!r}, {self.settings.host}:{self.settings.port})"

    async def start(self) -> None:
        async with self._lock:
            try:
                await self._connected()
            except (aiomqtt.MqttError, OSError, TimeoutError) as exc:  # deliver reports RETRY
                log.warning("uplink %s: broker not reachable at start: %s", self.name, exc)

    async def close(self) -> None:
        async with self._lock:
            await self._drop()

    async def deliver(self, message: UplinkMessage) -> DeliveryResult:
        return await classified(self.name, message, self._deliver, log)

    async def _deliver(self, message: UplinkMessage) -> DeliveryResult:
        try:  # reads evidence files: off the event loop
            payload = await asyncio.to_thread(self._payload, message)
        except (OSError, ValueError) as exc:
            return DeliveryResult(Outcome.REJECTED, f"cannot build the payload: {exc}")
        topic = topic_for(self.settings.topic, message.body)
        async with self._lock:
            try:
                client = await self._connected()
            except (aiomqtt.MqttError, OSError, TimeoutError) as exc:
                await self._drop()
                return DeliveryResult(Outcome.RETRY, f"broker unreachable: {exc}")
            try:
                await client.publish(
                    topic,
                    payload,
                    qos=self.settings.qos,
                    retain=False,
                    timeout=self.settings.publish_timeout_s,
                )
            except (aiomqtt.MqttError, OSError, TimeoutError) as exc:
                # Not acknowledged: the broker may or may not have it; the idempotency key in the
                # payload lets subscribers drop the copy the retry may produce.
                await self._drop()
                return DeliveryResult(Outcome.RETRY, f"publish not acknowledged: {exc}")
        return DeliveryResult(Outcome.DELIVERED, f"PUBACK on {topic}")

    def _payload(self, message: UplinkMessage) -> bytes:
        field = self.settings.idempotency_field
        extra = {field: message.idempotency_key} if field else None
        rendered = self.settings.field_map.render(message, extra=extra)
        return dumps(rendered.body)

    async def _connected(self) -> aiomqtt.Client:
        if self._client is not None:
            return self._client
        s = self.settings
        client = aiomqtt.Client(
            s.host,
            s.port,
            identifier=s.client_id,
            username=s.username,
            password=self._password,
            keepalive=s.keepalive_s,
            timeout=s.connect_timeout_s,
            tls_context=self._tls,
        )
        await client.__aenter__()  # held open across deliveries; closed by _drop
        self._client = client
        log.info("uplink %s: connected to %s:%s", self.name, s.host, s.port)
        return client

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            await client.__aexit__(None, None, None)
        except (aiomqtt.MqttError, OSError, TimeoutError) as exc:
            log.debug("uplink %s: disconnect after failure: %s", self.name, exc)


def _build(ctx: TargetContext) -> MqttTarget:
    assert isinstance(ctx.settings, MqttTargetSettings)  # the config requires the block
    return MqttTarget(ctx.name, ctx.settings, ctx.secret)


KIND = register_kind(
    TargetKind("mqtt", _build, MqttTargetSettings, description="mqtt target: broker, topic, field map, TLS")
)
