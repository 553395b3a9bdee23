"""The GB/T 28181 uplink target: alarms to a superior platform through the cascade registration.

It sends MESSAGE Notify CmdType=Alarm (AlarmMethod 5; AlarmType from the alarm type table; the
fine-grained type in AlarmDescription) and counts it delivered only on the superior's response. The
cascade client comes from adapters/gb28181; until one is configured for the target's platform, the
target reports itself unavailable and messages wait in the outbox.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from uplink.records import UplinkMessage
from uplink.targets.base import DeliveryResult, Outcome, TargetContext, TargetKind, register_kind

# (record, idempotency key) -> (delivered?, what the superior answered)
AlarmSender = Callable[[dict[str, Any], str], Awaitable[tuple[bool, str]]]


class Gb28181TargetSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    platform: str | None = Field(
        None,
        description="the superior to alarm (a gb28181.cascade.superiors name); null = the target's name",
    )


class Gb28181Target:
    def __init__(self, name: str, platform: str, sender: AlarmSender | None = None) -> None:
        self.name = name
        self.platform = platform
        self.sender = sender

    @property
    def available(self) -> bool:
        return self.sender is not None

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def deliver(self, message: UplinkMessage) -> DeliveryResult:
        if self.sender is None:
            return DeliveryResult(
                Outcome.RETRY,
                f"unavailable: no GB/T 28181 cascade registration to platform {self.platform!r}",
            )
        try:
            ok, detail = await self.sender(message.body, message.idempotency_key)
        except Exception as exc:  # the SIP layer's failure is transient from the outbox's point of view
            return DeliveryResult(Outcome.RETRY, f"{type(exc).__name__}: {exc}")
        return DeliveryResult(Outcome.DELIVERED if ok else Outcome.RETRY, detail)


def _build(ctx: TargetContext) -> Gb28181Target:
    settings = ctx.settings if isinstance(ctx.settings, Gb28181TargetSettings) else Gb28181TargetSettings()
    platform = settings.platform or ctx.name
    cascade = ctx.cascade
    if cascade is None:
        return Gb28181Target(ctx.name, platform)  # no cascade configured: unavailable, messages wait

    async def send(record: dict[str, Any], key: str) -> tuple[bool, str]:
        return await cascade(platform, record, key)

    return Gb28181Target(ctx.name, platform, send)


KIND = register_kind(
    TargetKind(
        "gb28181",
        _build,
        Gb28181TargetSettings,
        settings_required=False,
        description="gb28181 target: the cascade platform to alarm",
    )
)
