"""WeCom (企业微信) group robot: a text notice of each alarm revision to a group, @-mentioning the
recipients by their mobile numbers.

The robot's webhook key is a secret (``secret_env``); the URL is ``url`` + ``?key=<key>``. Delivered
means the robot answered ``errcode: 0``.
"""

from __future__ import annotations

import logging

import httpx
from pydantic import BaseModel, ConfigDict, Field

from uplink.notice import NoticeSettings, notice, phones, robot_answer
from uplink.records import UplinkMessage
from uplink.targets.base import DeliveryResult, Outcome, TargetContext, TargetKind, classified, register_kind

log = logging.getLogger(__name__)

MAX_TEXT = 2000  # the robot's limit is 2048 bytes of text content


class WecomTargetSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        "https://qyapi.weixin.qq.com/cgi-bin/webhook/send", description="the robot webhook, without ?key="
    )
    timeout_s: float = Field(10.0, gt=0, le=120)
    mention: bool = Field(True, description="@-mention the recipients by their mobile numbers")
    notice: NoticeSettings = Field(default_factory=lambda: NoticeSettings())


class WecomTarget:
    def __init__(self, name: str, settings: WecomTargetSettings, key: str | None) -> None:
        self.name = name
        self.settings = settings
        self._key = key or ""
        self._client: httpx.AsyncClient | None = None

    def __repr__(self) -> str:  # never show the key
        return f"WecomTarget({self.name!r})"

    @property
    def available(self) -> bool:
        return bool(self._key)

    async def start(self) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.settings.timeout_s, follow_redirects=False)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def deliver(self, message: UplinkMessage) -> DeliveryResult:
        return await classified(self.name, message, self._deliver, log)

    def body(self, message: UplinkMessage) -> dict[str, object]:
        text = notice(message.body, self.settings.notice).text[:MAX_TEXT]
        content: dict[str, object] = {"content": text}
        if self.settings.mention:
            content["mentioned_mobile_list"] = phones(message.body)
        return {"msgtype": "text", "text": content}

    async def _deliver(self, message: UplinkMessage) -> DeliveryResult:
        if not self._key:  # messages wait in the outbox until the key is set
            return DeliveryResult(
                Outcome.RETRY, "not configured: set secret_env to the variable with the robot key"
            )
        await self.start()
        assert self._client is not None
        try:
            r = await self._client.post(self.settings.url, params={"key": self._key}, json=self.body(message))
        except httpx.TimeoutException as exc:
            return DeliveryResult(Outcome.RETRY, f"timeout: {type(exc).__name__}")
        except httpx.HTTPError as exc:
            return DeliveryResult(Outcome.RETRY, f"network: {type(exc).__name__}")
        verdict, detail = robot_answer(r.status_code, r.content)
        return DeliveryResult(Outcome(verdict), detail)


def _build(ctx: TargetContext) -> WecomTarget:
    settings = ctx.settings if isinstance(ctx.settings, WecomTargetSettings) else WecomTargetSettings()
    return WecomTarget(ctx.name, settings, ctx.secret)


KIND = register_kind(
    TargetKind(
        "wecom",
        _build,
        WecomTargetSettings,
        settings_required=False,
        description="WeCom group robot: webhook url (key in secret_env), mentions, notice language and zone",
        to_people=True,
    )
)
