"""SMS through the plant's (or a carrier's) HTTP SMS gateway, described by a request template.

Each request is built from ``body`` (JSON or a form) and ``headers``, where these placeholders in any
string are replaced: ``{phone}`` (one recipient, with ``per_recipient``), ``{phones}`` (all of them,
comma-separated), ``{text}`` (the notice, at most ``max_chars``), ``{alarm_id}``, ``{key}`` (the
revision's idempotency key) and ``{secret}`` (the value of ``secret_env``, e.g. an API token). A
success status and, when ``ok_field`` is set, one of ``ok_values`` in that field of the JSON answer mean
delivered. The recipients are the record's phone numbers (the camera's recipients, or an escalation's).
"""

from __future__ import annotations

import json
import logging
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field

from uplink.fieldmap import lookup
from uplink.notice import NoticeSettings, notice, phones
from uplink.records import UplinkMessage
from uplink.targets.base import DeliveryResult, Outcome, TargetContext, TargetKind, classified, register_kind

log = logging.getLogger(__name__)


class SmsTargetSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="the SMS gateway's endpoint (http:// or https://)", pattern=r"^https?://")
    method: Literal["POST", "PUT", "GET"] = "POST"
    format: Literal["json", "form"] = Field("json", description="how body is sent (GET: as the query)")
    headers: dict[str, str] = Field(default_factory=dict, description="request headers; placeholders allowed")
    body: dict[str, Any] = Field(
        default_factory=lambda: {"to": "{phone}", "text": "{text}"},
        description="the request template; placeholders in its strings are replaced",
    )
    per_recipient: bool = Field(True, description="one request per phone number; false: one with {phones}")
    max_chars: int = Field(300, ge=20, le=2000, description="the notice is cut to this many characters")
    ok_field: str | None = Field(None, description="dotted path in the JSON answer that says it was accepted")
    ok_values: list[Any] = Field(default_factory=lambda: [0, "0", "ok", "OK", True, "success"])
    timeout_s: float = Field(10.0, gt=0, le=120)
    notice: NoticeSettings = Field(default_factory=lambda: NoticeSettings())


def fill(template: Any, values: dict[str, str]) -> Any:
    """The template with each {placeholder} in its strings replaced (plain replacement, no format())."""
    if isinstance(template, str):
        for name, value in values.items():
            template = template.replace("{" + name + "}", value)
        return template
    if isinstance(template, dict):
        return {k: fill(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, values) for v in template]
    return template


class SmsTarget:
    def __init__(self, name: str, settings: SmsTargetSettings, secret: str | None) -> None:
        self.name = name
        self.settings = settings
        self._secret = secret or ""
        self._client: httpx.AsyncClient | None = None

    def __repr__(self) -> str:  # never show the secret
        return f"SmsTarget({self.name!r}, {self.settings.url!r})"

    async def start(self) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.settings.timeout_s, follow_redirects=False)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def deliver(self, message: UplinkMessage) -> DeliveryResult:
        return await classified(self.name, message, self._deliver, log)

    def requests(self, message: UplinkMessage) -> list[tuple[dict[str, str], Any]]:
        """(headers, body) of each request the message needs."""
        s = self.settings
        numbers = phones(message.body)
        text = notice(message.body, s.notice).text[: s.max_chars]
        common = {
            "phones": ",".join(numbers),
            "text": text,
            "alarm_id": message.alarm_id,
            "key": message.idempotency_key,
            "secret": self._secret,
        }
        groups = [[n] for n in numbers] if s.per_recipient else ([numbers] if numbers else [])
        out = []
        for group in groups:
            values = {**common, "phone": group[0] if len(group) == 1 else ",".join(group)}
            out.append((fill(s.headers, values), fill(s.body, values)))
        return out

    async def _deliver(self, message: UplinkMessage) -> DeliveryResult:
        todo = self.requests(message)
        if not todo:
            return DeliveryResult(Outcome.DELIVERED, "nobody to text: no recipient has a phone number")
        await self.start()
        assert self._client is not None
        s = self.settings
        for headers, body in todo:
            kwargs: dict[str, Any] = {"headers": headers}
            if s.method == "GET":
                kwargs["params"] = body
            elif s.format == "json":
                kwargs["json"] = body
            else:
                kwargs["data"] = body
            try:
                r = await self._client.request(s.method, s.url, **kwargs)
            except httpx.TimeoutException as exc:
                return DeliveryResult(Outcome.RETRY, f"timeout: {type(exc).__name__}")
            except httpx.HTTPError as exc:
                return DeliveryResult(Outcome.RETRY, f"network: {type(exc).__name__}")
            result = self.classify(r.status_code, r.content)
            if not result.done:
                return result
        return DeliveryResult(Outcome.DELIVERED, f"{len(todo)} request(s) accepted")

    def classify(self, status: int, content: bytes) -> DeliveryResult:
        detail = f"HTTP {status}: {content[:300].decode('utf-8', 'replace')}".strip()
        if status == 429 or status >= 500:
            return DeliveryResult(Outcome.RETRY, detail)
        if not 200 <= status < 300:
            return DeliveryResult(Outcome.REJECTED, detail)
        if not self.settings.ok_field:
            return DeliveryResult(Outcome.DELIVERED, detail)
        try:
            code = lookup(json.loads(content), self.settings.ok_field)
        except (ValueError, UnicodeDecodeError):
            return DeliveryResult(Outcome.RETRY, f"answer is not JSON: {detail}")
        if str(code) in {str(v) for v in self.settings.ok_values}:
            return DeliveryResult(Outcome.DELIVERED, detail)
        return DeliveryResult(Outcome.REJECTED, f"{self.settings.ok_field}={code!r}: {detail}")


def _build(ctx: TargetContext) -> SmsTarget:
    assert isinstance(ctx.settings, SmsTargetSettings)  # the config requires the block
    return SmsTarget(ctx.name, ctx.settings, ctx.secret)


KIND = register_kind(
    TargetKind(
        "sms",
        _build,
        SmsTargetSettings,
        description="SMS through an HTTP gateway: url, request template with {phone} {text} {secret}",
        to_people=True,
    )
)
