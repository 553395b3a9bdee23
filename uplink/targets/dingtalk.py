"""DingTalk (钉钉) group robot with its signature ("加签"): a text notice of each alarm revision, @-ing
the recipients by their mobile numbers.

The request goes to ``url?access_token=<token>&timestamp=<ms>&sign=<sign>`` with
sign = Base64(HMAC-SHA256(key = secret, message = "<ms>\\n<secret>")), as DingTalk specifies. The signing
secret comes from ``secret_env``, the access token from the variable ``access_token_env`` names.
Delivered means the robot answered ``errcode: 0``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import time

import httpx
from pydantic import BaseModel, ConfigDict, Field

from uplink.notice import NoticeSettings, notice, phones, robot_answer
from uplink.records import UplinkMessage
from uplink.targets.base import DeliveryResult, Outcome, TargetContext, TargetKind, classified, register_kind

log = logging.getLogger(__name__)

MAX_TEXT = 2000


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's robot signature of a timestamp (milliseconds), before URL encoding."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


class DingtalkTargetSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field("https://oapi.dingtalk.com/robot/send", description="the robot webhook, without query")
    access_token_env: str = Field(description="environment variable holding the robot's access_token")
    timeout_s: float = Field(10.0, gt=0, le=120)
    mention: bool = Field(True, description="@ the recipients by their mobile numbers")
    notice: NoticeSettings = Field(default_factory=lambda: NoticeSettings())


class DingtalkTarget:
    def __init__(
        self, name: str, settings: DingtalkTargetSettings, secret: str | None, token: str | None
    ) -> None:
        self.name = name
        self.settings = settings
        self._secret = secret or ""
        self._token = token or ""
        self._client: httpx.AsyncClient | None = None

    def __repr__(self) -> str:  # never show the secret or the token
        return f"DingtalkTarget({self.name!r})"

    @property
    def available(self) -> bool:
        return bool(self._secret and self._token)

    def _missing(self) -> str | None:
        if not self._secret:
            return "not configured: set secret_env to the variable with the robot's signing secret"
        if not self._token:
            return f"not configured: set {self.settings.access_token_env} to the robot's access_token"
        return None

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
        mobiles = phones(message.body) if self.settings.mention else []
        text = notice(message.body, self.settings.notice).text
        if mobiles:  # DingTalk shows an @ only where the number also appears in the text
            text += "\n" + " ".join(f"@{m}" for m in mobiles)
        return {
            "msgtype": "text",
            "text": {"content": text[:MAX_TEXT]},
            "at": {"atMobiles": mobiles, "isAtAll": False},
        }

    async def _deliver(self, message: UplinkMessage) -> DeliveryResult:
        missing = self._missing()
        if missing is not None:  # messages wait in the outbox until it is configured
            return DeliveryResult(Outcome.RETRY, missing)
        await self.start()
        assert self._client is not None
        stamp = int(time.time() * 1000)
        params = {
            "access_token": self._token,
            "timestamp": str(stamp),
            "sign": dingtalk_sign(self._secret, stamp),
        }
        try:
            r = await self._client.post(self.settings.url, params=params, json=self.body(message))
        except httpx.TimeoutException as exc:
            return DeliveryResult(Outcome.RETRY, f"timeout: {type(exc).__name__}")
        except httpx.HTTPError as exc:
            return DeliveryResult(Outcome.RETRY, f"network: {type(exc).__name__}")
        verdict, detail = robot_answer(r.status_code, r.content)
        return DeliveryResult(Outcome(verdict), detail)


def _build(ctx: TargetContext) -> DingtalkTarget:
    assert isinstance(ctx.settings, DingtalkTargetSettings)  # the config requires the block
    token = os.environ.get(ctx.settings.access_token_env)
    return DingtalkTarget(ctx.name, ctx.settings, ctx.secret, token)


KIND = register_kind(
    TargetKind(
        "dingtalk",
        _build,
        DingtalkTargetSettings,
        description="DingTalk robot (signed): webhook url, access_token_env (secret_env: signing secret)",
        to_people=True,
    )
)
