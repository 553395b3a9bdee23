"""Loopback stand-ins for the people-facing upstreams: a WeCom group robot, a DingTalk robot and an HTTP
SMS gateway, each a real aiohttp server that checks what the real service checks and answers as it does.

- WeCom: the webhook ``key`` query parameter must be the robot's key, else ``errcode 93000``.
- DingTalk: ``access_token`` must match, ``timestamp`` must be within an hour of now and ``sign`` must be
  Base64(HMAC-SHA256(secret, "<timestamp>\\n<secret>")), computed here independently of the target's
  code; otherwise ``errcode 310000`` ("sign not match") as DingTalk answers.
- SMS gateway: a bearer token in ``Authorization``, a JSON body; answers ``{"code": 0}``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web


@dataclass
class Received:
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


class _Server:
    def __init__(self) -> None:
        self.received: list[Received] = []  # accepted ones
        self.refused: list[Received] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/send"

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/send", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        got = Received(dict(request.query), dict(request.headers), json.loads(raw) if raw else None)
        error = self.check(got)
        (self.refused if error else self.received).append(got)
        return web.json_response(error or self.ok())

    def check(self, got: Received) -> dict[str, Any] | None:
        raise NotImplementedError

    def ok(self) -> dict[str, Any]:
        return {"errcode": 0, "errmsg": "ok"}


class WecomRobot(_Server):
    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key

    def check(self, got: Received) -> dict[str, Any] | None:
        if got.query.get("key") != self.key:
            return {"errcode": 93000, "errmsg": "invalid webhook url"}
        if not isinstance(got.body, dict) or got.body.get("msgtype") != "text":
            return {"errcode": 40008, "errmsg": "invalid message type"}
        return None


def expected_sign(secret: str, timestamp: str) -> str:
    mac = hmac.new(secret.encode(), (timestamp + "\n" + secret).encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


class DingtalkRobot(_Server):
    def __init__(self, token: str, secret: str) -> None:
        super().__init__()
        self.token = token
        self.secret = secret

    def check(self, got: Received) -> dict[str, Any] | None:
        if got.query.get("access_token") != self.token:
            return {"errcode": 300001, "errmsg": "token is not exist"}
        stamp = got.query.get("timestamp", "")
        if not stamp.isdigit() or abs(int(stamp) - time.time() * 1000) > 3_600_000:
            return {"errcode": 310000, "errmsg": "timestamp is out of range"}
        if not hmac.compare_digest(got.query.get("sign", ""), expected_sign(self.secret, stamp)):
            return {"errcode": 310000, "errmsg": "sign not match"}
        return None


class SmsGateway(_Server):
    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def check(self, got: Received) -> dict[str, Any] | None:
        if got.headers.get("Authorization") != f"Bearer {self.token}":
            return {"code": 401, "message": "bad token"}
        return None

    def ok(self) -> dict[str, Any]:
        return {"code": 0, "message": "queued"}
