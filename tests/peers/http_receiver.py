"""A real upstream for HTTP target tests: an aiohttp server on 127.0.0.1 that records what it gets.

It behaves like a strict regulator platform: it checks the HMAC signature with
``uplink.signing.verify`` (401 when wrong) or the bearer token, decrypts cipher envelopes, answers
``{"code": 0}`` for a new idempotency key and 409 ``{"code": "DUPLICATE"}`` for one it already
accepted, and can be told to misbehave:

    receiver.fail(503, times=2)      # the next two requests get 503 (times=None: until clear());
                                     # retry_after="7" adds that Retry-After header
    receiver.stall(seconds=30)       # the next request hangs, then gets 504 and is not accepted
    receiver.poison("A1:1")          # that idempotency key always gets 400
    receiver.clear()                 # behave again

Run it in the test's loop (``await start()`` / ``await stop()``) or in a background thread with its
own loop (``start_in_thread()`` / ``stop_thread()``) for synchronous callers.
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from uplink.signing import CipherName, NonceCache, SignatureError, decrypt, verify


@dataclass
class Part:
    name: str
    filename: str | None
    content_type: str
    data: bytes


@dataclass
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    raw: bytes
    body: Any = None  # the parsed JSON body (the JSON part when multipart)
    payload: Any = None  # body with the cipher envelope opened, else body
    parts: dict[str, Part] = field(default_factory=dict)
    signature_error: str | None = None
    client_cert_subject: str | None = None  # the TLS client certificate's commonName, when one was sent
    status: int = 0  # what the receiver answered
    received_at: float = 0.0  # time.time() when the request arrived

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("Idempotency-Key")


class HttpReceiver:
    def __init__(
        self,
        *,
        secret: str | None = None,  # HMAC secret: verify X-Vigil-* signatures
        token: str | None = None,  # bearer token to require
        cipher: CipherName = "none",
        key: bytes | None = None,
        iv: bytes | None = None,
        wrap: str = "data",  # envelope field carrying the ciphertext
        multipart_field: str = "payload",
        path: str = "/alarms",
        ssl_context: ssl.SSLContext | None = None,  # serve HTTPS (client certs if it demands them)
    ) -> None:
        self.secret = secret
        self.token = token
        self.cipher: CipherName = cipher
        self.key = key
        self.iv = iv
        self.wrap = wrap
        self.multipart_field = multipart_field
        self.path = path
        self.ssl_context = ssl_context
        self.requests: list[ReceivedRequest] = []
        self.accepted: dict[str, ReceivedRequest] = {}  # idempotency key -> first accepted request
        self.port = 0
        self._nonces = NonceCache()
        self._fail_status = 0
        self._fail_left: int | None = None
        self._retry_after: str | None = None
        self._stall_s = 0.0
        self._stall_left = 0
        self._poisoned: set[str] = set()
        self._release: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}{self.path}"

    # --- behaviour -----------------------------------------------------------------------------------

    def fail(self, status: int, times: int | None = 1, retry_after: str | None = None) -> None:
        self._fail_status, self._fail_left, self._retry_after = status, times, retry_after

    def stall(self, seconds: float, times: int = 1) -> None:
        self._stall_s, self._stall_left = seconds, times

    def poison(self, key: str) -> None:
        self._poisoned.add(key)

    def clear(self) -> None:
        self._fail_status, self._fail_left, self._retry_after = 0, None, None
        self._stall_s, self._stall_left = 0.0, 0
        self._poisoned.clear()

    # --- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> str:
        self._release = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, "127.0.0.1", self.port, ssl_context=self.ssl_context
        )  # 0 = any; a restart keeps its port
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self.url

    async def stop(self) -> None:
        if self._release is not None:
            self._release.set()  # let stalled handlers finish so cleanup does not wait on them
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def start_in_thread(self) -> str:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            loop.run_until_complete(self.start())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.close()

        self._thread = threading.Thread(target=run, name="http-receiver", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("http receiver did not start")
        return self.url

    def stop_thread(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._thread = self._loop = None

    # --- the upstream --------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        rec = ReceivedRequest(request.method, request.raw_path, dict(request.headers), raw)
        rec.received_at = time.time()
        peer_cert = request.transport.get_extra_info("peercert") if request.transport else None
        rec.client_cert_subject = _subject(peer_cert)
        self.requests.append(rec)
        status, answer = await self._answer(request, rec)
        rec.status = status
        headers = {"Retry-After": self._retry_after} if self._retry_after and status >= 400 else None
        return web.json_response(answer, status=status, headers=headers)

    async def _answer(self, request: web.Request, rec: ReceivedRequest) -> tuple[int, Any]:
        if self.secret is not None:
            try:
                verify(self.secret, rec.method, rec.path, request.headers, rec.raw, nonces=self._nonces)
            except SignatureError as exc:
                rec.signature_error = str(exc)
                return 401, {"code": "BAD_SIGNATURE", "msg": str(exc)}
        if self.token is not None and request.headers.get("Authorization") != f"Bearer {self.token}":
            return 401, {"code": "BAD_TOKEN"}
        try:
            self._parse(request, rec)
        except ValueError as exc:
            return 400, {"code": "BAD_BODY", "msg": str(exc)}
        if self._stall_left > 0:
            self._stall_left -= 1
            assert self._release is not None
            try:
                await asyncio.wait_for(self._release.wait(), self._stall_s)
            except TimeoutError:
                pass
            # The client gave up long ago; not accepting keeps the retry's answer deterministic.
            return 504, {"code": "STALLED"}
        if self._fail_status and (self._fail_left is None or self._fail_left > 0):
            if self._fail_left is not None:
                self._fail_left -= 1
            return self._fail_status, {"code": "FAIL", "msg": f"told to answer {self._fail_status}"}
        key = rec.idempotency_key
        if key in self._poisoned:
            return 400, {"code": "INVALID", "msg": "poisoned key"}
        if key is not None and key in self.accepted:
            return 409, {"code": "DUPLICATE"}
        if key is not None:
            self.accepted[key] = rec
        return 200, {"code": 0, "msg": "ok"}

    def _parse(self, request: web.Request, rec: ReceivedRequest) -> None:
        """Parse JSON or multipart (from the recorded bytes) and open the cipher envelope."""
        if request.content_type == "multipart/form-data":
            rec.parts = _multipart(request.headers["Content-Type"], rec.raw)
            part = rec.parts.get(self.multipart_field)
            if part is None:
                raise ValueError(f"multipart without a {self.multipart_field!r} part")
            rec.body = json.loads(part.data)
        else:
            rec.body = json.loads(rec.raw)
        rec.payload = rec.body
        if self.cipher != "none":
            if not isinstance(rec.body, dict) or not isinstance(rec.body.get(self.wrap), str):
                raise ValueError(f"no ciphertext in {self.wrap!r}")
            assert self.key is not None
            rec.payload = json.loads(decrypt(self.cipher, self.key, rec.body[self.wrap], self.iv))


def _multipart(content_type: str, raw: bytes) -> dict[str, Part]:
    """Split a multipart/form-data body; the stdlib email parser does the MIME work."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
    parts: dict[str, Part] = {}
    for item in message.iter_parts():
        name = item.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        data = item.get_payload(decode=True)
        assert isinstance(data, bytes)
        parts[name] = Part(name, item.get_filename(), item.get_content_type(), data)
    return parts


def _subject(cert: Any) -> str | None:
    if not isinstance(cert, dict):
        return None
    for rdn in cert.get("subject", ()):
        for name, value in rdn:
            if name == "commonName":
                return str(value)
    return None
