"""Typed keys for what the aiohttp application holds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from gateway.api.guard import LoginGuard
    from gateway.app import Gateway
    from gateway.auth import HashPool, Principal
    from gateway.security_log import SecurityLog

GATEWAY: web.AppKey[Gateway] = web.AppKey("gateway")
OPENAPI: web.AppKey[dict[str, Any]] = web.AppKey("openapi")
LOGIN_GUARD: web.AppKey[LoginGuard] = web.AppKey("login_guard")
HASH_POOL: web.AppKey[HashPool] = web.AppKey("hash_pool")
SECURITY_LOG: web.AppKey[SecurityLog] = web.AppKey("security_log")
PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("principal")


def principal(request: web.Request) -> Principal:
    return request[PRINCIPAL]
