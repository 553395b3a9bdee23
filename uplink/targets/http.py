"""Generic HTTP(S) JSON target: field map, signing, optional cipher envelope, configurable ACK rule.

"Delivered" means the upstream acknowledged the record at the application level: a success status
and, when ``success.body_field`` is set, one of the OK values in that field of the JSON answer.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import ssl
import time
from functools import partial
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, model_validator

from uplink.fieldmap import FieldMap, Rendered, lookup
from uplink.records import UplinkMessage
from uplink.signing import CipherName, KeyFormat, bearer_headers, decode_key, encrypt, sign_headers
from uplink.targets.base import DeliveryResult, Outcome, TargetContext, TargetKind, classified, register_kind

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 425, 429})
DETAIL_CHARS = 300


class TlsSettings(BaseModel):
    """Server verification and an optional client certificate (mutual TLS)."""

    model_config = ConfigDict(extra="forbid")

    verify: bool = True
    ca_file: Path | None = None  # trust this CA bundle instead of the system store
    cert_file: Path | None = None  # client certificate (PEM)
    key_file: Path | None = None  # its private key (PEM); may be inside cert_file

    @model_validator(mode="after")
    def _key_needs_cert(self) -> TlsSettings:
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("tls.key_file needs tls.cert_file")
        return self

    def context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        if not self.verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self.cert_file is not None:
            ctx.load_cert_chain(str(self.cert_file), str(self.key_file) if self.key_file else None)
        return ctx


class SuccessRule(BaseModel):
    """Which answers mean delivered, duplicate or try-again.

    Body values are compared as text, so YAML ``0`` matches a JSON ``"0"`` and vice versa.
    """

    model_config = ConfigDict(extra="forbid")

    statuses: list[int] | None = None  # None: any 2xx
    body_field: str | None = None  # dotted path in the JSON answer, e.g. "code" or "result.status"
    ok_values: list[Any] = Field(default_factory=lambda: [0, 200, "0", "200", True, "ok", "OK", "success"])
    duplicate_statuses: list[int] = Field(default_factory=lambda: [409])
    duplicate_values: list[Any] = Field(default_factory=list)  # body_field values meaning "already have it"
    retry_values: list[Any] = Field(default_factory=list)  # body_field values meaning "busy, try later"


class HttpTargetSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str
    method: Literal["POST", "PUT"] = "POST"
    timeout_s: float = Field(default=10.0, gt=0)
    headers: dict[str, str] = Field(default_factory=dict)  # static, non-secret headers
    signing: Literal["hmac", "token", "none"] = "none"
    cipher: CipherName = "none"
    cipher_key_format: KeyFormat = "raw"
    cipher_iv: str | None = None  # hex; CBC without it sends a random IV in front of the ciphertext
    field_map: FieldMap = Field(default_factory=FieldMap.default)
    idempotency_field: str | None = "idempotency_key"  # dotted path in the mapped object; None: header only
    multipart_field: str = "payload"  # the form field carrying the JSON when pictures go as file parts
    success: SuccessRule = Field(default_factory=SuccessRule)
    tls: TlsSettings = Field(default_factory=TlsSettings)

    @model_validator(mode="after")
    def _consistent(self) -> HttpTargetSettings:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        if self.cipher != "none" and not self.field_map.envelope.wrap:
            raise ValueError(
                "cipher needs field_map.envelope.wrap: the outer JSON field that carries the ciphertext"
            )
        if self.cipher_iv is not None:
            if not self.cipher.endswith("-cbc"):
                raise ValueError("cipher_iv is only used with a CBC cipher")
            try:
                iv = bytes.fromhex(self.cipher_iv)
            except ValueError as exc:
                raise ValueError("cipher_iv must be hex") from exc
            if len(iv) != 16:
                raise ValueError("cipher_iv must be 16 bytes (32 hex characters)")
        lowered = {k.lower() for k in self.headers}
        if "authorization" in lowered or "idempotency-key" in lowered:
            raise ValueError("headers must not set Authorization or Idempotency-Key; the target sets them")
        return self


class HttpTarget:
    """``HttpTarget(name, settings, secret)``: ``secret`` is the HMAC secret or bearer token.

    ``cipher_key`` is the envelope key; without it the secret doubles as the key.
    """

    def __init__(
        self,
        name: str,
        settings: HttpTargetSettings,
        secret: str | None = None,
        *,
        cipher_key: str | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        if settings.signing != "none" and not secret:
            raise ValueError(f"target {name}: signing {settings.signing!r} needs a secret")
        self._secret = secret
        self._key: bytes | None = None
        if settings.cipher != "none":
            key_text = cipher_key if cipher_key is not None else secret
            if not key_text:
                raise ValueError(f"target {name}: cipher {settings.cipher!r} needs a key")
            self._key = decode_key(key_text, settings.cipher_key_format)
            # Fail at construction, not on the first alarm, when the key does not fit the cipher.
            encrypt(settings.cipher, self._key, b"", self._iv)
        # Built now so a missing CA or key file fails at construction, not on the first alarm.
        self._verify: ssl.SSLContext | bool = (
            settings.tls.context() if settings.url.startswith("https://") else True
        )
        self._client: httpx.AsyncClient | None = None

    def __repr__(self) -> str:  # never show the secret
        return f"HttpTarget({self.name!r}, {self.settings.url!r})"

    @property
    def _iv(self) -> bytes | None:
        return bytes.fromhex(self.settings.cipher_iv) if self.settings.cipher_iv else None

    async def start(self) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.settings.timeout_s),
                verify=self._verify,
                follow_redirects=False,  # a redirect on a POST is a misconfiguration; report it
                headers=self.settings.headers,
            )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def deliver(self, message: UplinkMessage) -> DeliveryResult:
        return await classified(self.name, message, self._deliver, log)

    async def _deliver(self, message: UplinkMessage) -> DeliveryResult:
        await self.start()
        assert self._client is not None
        try:  # reads evidence files: off the event loop
            request = await asyncio.to_thread(self._prepare, message)
        except (OSError, ValueError) as exc:
            return DeliveryResult(Outcome.REJECTED, f"cannot build the request: {exc}")
        try:
            response = await self._client.send(request)
        except httpx.TimeoutException as exc:
            return DeliveryResult(Outcome.RETRY, f"timeout: {type(exc).__name__}")
        except httpx.HTTPError as exc:  # connect refused, reset, protocol error
            return DeliveryResult(Outcome.RETRY, f"network: {type(exc).__name__}: {exc}")
        return self.classify(response.status_code, response.content, response.headers.get("Retry-After"))

    def _render(self, message: UplinkMessage) -> Rendered:
        s = self.settings
        encrypt_fn = None
        if s.cipher != "none":
            assert self._key is not None
            encrypt_fn = partial(encrypt, s.cipher, self._key, iv=self._iv)
        extra = {s.idempotency_field: message.idempotency_key} if s.idempotency_field else None
        return s.field_map.render(message, encrypt=encrypt_fn, extra=extra)

    def _prepare(self, message: UplinkMessage) -> httpx.Request:
        assert self._client is not None
        s = self.settings
        rendered = self._render(message)
        body = json.dumps(rendered.body, ensure_ascii=False, separators=(",", ":"), default=str)
        headers = {"Idempotency-Key": message.idempotency_key}
        if s.field_map.uses_multipart:
            # The JSON travels as its own part so the upstream gets multipart even with no picture.
            files: list[tuple[str, tuple[str | None, bytes, str]]] = [
                (s.multipart_field, (None, body.encode("utf-8"), "application/json"))
            ]
            files += [(p.name, (p.filename, p.path.read_bytes(), p.media_type)) for p in rendered.files]
            request = self._client.build_request(s.method, s.url, files=files, headers=headers)
        else:
            headers["Content-Type"] = "application/json; charset=utf-8"
            content = body.encode("utf-8")
            request = self._client.build_request(s.method, s.url, content=content, headers=headers)
        content = request.read()  # the exact bytes on the wire, multipart boundary included
        if s.signing == "hmac":
            assert self._secret is not None
            path = request.url.raw_path.decode("ascii")
            request.headers.update(sign_headers(self._secret, s.method, path, content))
        elif s.signing == "token":
            assert self._secret is not None
            request.headers.update(bearer_headers(self._secret))
        return request

    def classify(self, status: int, content: bytes, retry_after: str | None = None) -> DeliveryResult:
        """Map an HTTP answer to an outcome (public so the rule can be tested without a server)."""
        rule = self.settings.success
        detail = f"HTTP {status}: {content[:DETAIL_CHARS].decode('utf-8', 'replace')}".strip()
        code: Any = None
        parsed = False
        if rule.body_field:
            try:
                code = lookup(json.loads(content), rule.body_field)
                parsed = True
            except (ValueError, UnicodeDecodeError):
                parsed = False
        if status in rule.duplicate_statuses or (parsed and _matches(code, rule.duplicate_values)):
            return DeliveryResult(Outcome.DUPLICATE, detail)
        if status in RETRY_STATUSES or status >= 500:
            return DeliveryResult(Outcome.RETRY, detail, _retry_after(retry_after))
        ok_status = status in rule.statuses if rule.statuses is not None else 200 <= status < 300
        if not ok_status:
            return DeliveryResult(Outcome.REJECTED, detail)
        if not rule.body_field:
            return DeliveryResult(Outcome.DELIVERED, detail)
        if not parsed:  # e.g. a proxy's HTML page: not an answer from the upstream application
            return DeliveryResult(Outcome.RETRY, f"answer is not JSON: {detail}")
        if _matches(code, rule.ok_values):
            return DeliveryResult(Outcome.DELIVERED, detail)
        if _matches(code, rule.retry_values):
            return DeliveryResult(Outcome.RETRY, detail, _retry_after(retry_after))
        return DeliveryResult(Outcome.REJECTED, f"{rule.body_field}={code!r}: {detail}")


def _matches(value: Any, candidates: list[Any]) -> bool:
    if value is None:
        return False
    text = _text(value)
    return any(_text(c) == text for c in candidates)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _build(ctx: TargetContext) -> HttpTarget:
    assert isinstance(ctx.settings, HttpTargetSettings)  # the config requires the block
    return HttpTarget(ctx.name, ctx.settings, ctx.secret, cipher_key=ctx.cipher_key)


KIND = register_kind(
    TargetKind(
        "http", _build, HttpTargetSettings, description="http target: url, signing, envelope, field map"
    )
)
