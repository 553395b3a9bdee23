"""People and machines: login and logout, who am I, users (list, add, change) and API tokens."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select, update

from gateway.api.guard import LoginRefused
from gateway.api.http import AUTHENTICATED, PUBLIC, ApiError, parse_body, query_int, route
from gateway.api.keys import GATEWAY, HASH_POOL, LOGIN_GUARD, SECURITY_LOG, principal
from gateway.app import Gateway
from gateway.auth import (
    ALL_SCOPES,
    ROLES,
    HashPoolBusy,
    LoginCandidate,
    check_password_strength,
    complete_login,
    create_user,
    hash_password,
    issue_token,
    login_candidate,
    verify_password,
)
from gateway.db.schema import (
    ApiToken,
    User,
    utcnow,
)
from gateway.i18n import t_request
from gateway.times import iso

Role = Literal["admin", "operator", "viewer"]

# --- answers (documented in the OpenAPI document) ---------------------------------------------


class SessionAnswer(BaseModel):
    token: str = Field(description="the session token (also set as the HttpOnly vigil_session cookie)")
    role: Role
    username: str
    expires_at: str | None


class MeAnswer(BaseModel):
    name: str
    role: Role
    kind: Literal["session", "machine", "callback"]
    scopes: list[str]


class UserAnswer(BaseModel):
    id: int
    username: str
    display_name: str
    role: Role
    enabled: bool
    last_login_at: str | None


class UserList(BaseModel):
    items: list[UserAnswer]


class TokenAnswer(BaseModel):
    id: int
    name: str
    kind: Literal["machine", "callback"]
    prefix: str
    role: Role
    scopes: list[str]
    created_at: str | None
    expires_at: str | None
    last_used_at: str | None
    revoked: bool


class TokenList(BaseModel):
    items: list[TokenAnswer]


class SecurityEvent(BaseModel):
    model_config = ConfigDict(extra="allow")
    at: str = Field(description="ISO 8601 UTC")
    event: str = Field(description="login_failed, login_locked, origin_refused, secrets_rotated, ...")


class AuditList(BaseModel):
    items: list[SecurityEvent]


class Done(BaseModel):
    ok: bool


# --- users --------------------------------------------------------------------------------------


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["admin", "operator", "viewer"] | None = None
    disabled: bool | None = Field(None, description="true: the user can no longer log in")
    enabled: bool | None = Field(None, description="the opposite of disabled (as GET /api/users shows it)")
    password: str | None = Field(None, min_length=10, max_length=256)
    display_name: str | None = Field(None, max_length=100)


@route(
    "PATCH",
    "/api/users/{user_id}",
    scope="users:write",
    body=UserPatch,
    tag="users",
    summary="Change a user's role, disable or enable them, set a new password; their other sessions end",
)
async def patch_user(request: web.Request) -> web.Response:
    gw, who = request.app[GATEWAY], principal(request)
    try:
        user_id = int(request.match_info["user_id"])
    except ValueError as exc:
        raise ApiError(400, t_request("api.user_id")) from exc
    body = await parse_body(request, UserPatch)
    if body.disabled is not None and body.enabled is not None and body.disabled == body.enabled:
        raise ApiError(422, t_request("api.enabled_contradiction"))
    enabled = (
        body.enabled if body.enabled is not None else None if body.disabled is None else not body.disabled
    )
    if body.password is not None:
        try:
            check_password_strength(body.password)
        except ValueError as exc:
            raise ApiError(422, str(exc), [{"field": "password", "problem": str(exc)}]) from exc
    new_hash = None
    if body.password is not None:  # hashed on the password threads, not the shared pool
        try:
            new_hash = await request.app[HASH_POOL].run(hash_password, body.password)
        except HashPoolBusy as exc:
            raise ApiError(503, t_request("api.hash_busy")) from exc
    assert body.role is None or body.role in ROLES

    def work() -> dict[str, Any]:
        with gw.db.session() as s:
            user = s.get(User, user_id, with_for_update=True)
            if user is None:
                raise ApiError(404, t_request("api.no_user", user=user_id))
            role = body.role or user.role
            active = user.enabled if enabled is None else enabled
            if user.role == "admin" and user.enabled and (role != "admin" or not active):
                others = s.scalar(
                    select(func.count())
                    .select_from(User)
                    .where(User.role == "admin", User.enabled.is_(True), User.id != user.id)
                )
                if not others:
                    raise ApiError(409, t_request("api.last_admin", user=user.username))
            changed = []
            if role != user.role:
                user.role = role
                changed.append("role")
            if active != user.enabled:
                user.enabled = active
                changed.append("enabled")
            if body.password is not None:
                assert new_hash is not None
                user.password_hash = new_hash
                changed.append("password")
            if body.display_name is not None and body.display_name != user.display_name:
                user.display_name = body.display_name
                changed.append("display_name")
            ended = 0
            if {"role", "enabled", "password"} & set(changed):
                # Sessions carry the role they were issued with: end them (the caller's own stays).
                result = s.execute(
                    update(ApiToken)
                    .where(
                        ApiToken.user_id == user.id,
                        ApiToken.kind == "session",
                        ApiToken.revoked_at.is_(None),
                        ApiToken.id != who.token_id,
                    )
                    .values(revoked_at=utcnow())
                )
                ended = int(getattr(result, "rowcount", 0) or 0)  # an UPDATE's CursorResult
            return {
                "id": user.id,
                "username": user.username,
                "display_name": user.display_name,
                "role": user.role,
                "enabled": user.enabled,
                "last_login_at": iso(user.last_login_at),
                "changed": changed,
                "sessions_ended": int(ended or 0),
            }

    answer = await asyncio.to_thread(work)
    if answer["changed"]:
        request.app[SECURITY_LOG].record(
            "user_changed",
            by=who.name,
            username=answer["username"],
            changed=",".join(answer["changed"]),
            role=answer["role"],
            enabled=answer["enabled"],
        )
    return web.json_response(answer)


class LoginBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


@route(
    "POST",
    "/api/auth/login",
    scope=PUBLIC,
    summary="Log in; returns a session token (429 after repeated failures, 503 while busy checking)",
    body=LoginBody,
    tag="auth",
    response=SessionAnswer,
)
async def login(request: web.Request) -> web.Response:
    body = await parse_body(request, LoginBody)
    gw = request.app[GATEWAY]
    guard, hashing, journal = request.app[LOGIN_GUARD], request.app[HASH_POOL], request.app[SECURITY_LOG]
    address = request.remote or "?"
    try:
        ticket = guard.admit(body.username, address)  # counted before the check: parallel guesses too
    except LoginRefused as exc:
        locked = t_request(f"api.login_locked_{exc.what}", wait=exc.wait_s)
        raise ApiError(429, locked, headers={"Retry-After": str(exc.wait_s)}) from exc
    try:
        found = await asyncio.to_thread(_candidate, gw, body.username)
        good = await hashing.run(verify_password, found.password_hash, body.password)
    except HashPoolBusy as exc:
        guard.release(ticket)
        raise ApiError(
            503,
            t_request("api.login_busy"),
            headers={"Retry-After": "2"},
        ) from exc
    except BaseException:
        guard.release(ticket)
        raise
    result = None
    if good and found.user_id is not None:
        result = await asyncio.to_thread(_complete, gw, found, body.password)
    if result is None:
        locks = guard.failed(ticket)
        journal.record("login_failed", username=body.username, address=address)
        for lock in locks:
            kind, who = lock.key.split(":", 1)
            journal.record("login_locked", **{kind: who}, seconds=lock.seconds, username=body.username)
        raise ApiError(401, t_request("api.wrong_login"))
    guard.succeeded(ticket)
    response = web.json_response(result)
    response.set_cookie(
        "vigil_session",
        result["token"],
        httponly=True,
        samesite="Strict",
        secure=gw.config.server.tls_cert is not None,
        max_age=int(gw.config.server.session_hours * 3600),
    )
    return response


def _candidate(gw: Gateway, username: str) -> LoginCandidate:
    with gw.db.session() as s:
        return login_candidate(s, username)


def _complete(gw: Gateway, found: LoginCandidate, password: str) -> dict[str, Any] | None:
    assert found.user_id is not None
    with gw.db.session() as s:
        user = complete_login(s, found.user_id, found.password_hash, password)
        if user is None:
            return None
        ttl = dt.timedelta(hours=gw.config.server.session_hours)
        secret, row = issue_token(
            s, f"session:{user.username}", "session", user.role, user_id=user.id, ttl=ttl
        )
        return {
            "token": secret,
            "role": user.role,
            "username": user.username,
            "expires_at": iso(row.expires_at),
        }


@route(
    "GET",
    "/api/audit",
    scope="users:read",
    tag="users",
    summary="The security log: failed logins, lockouts, refused origins, key rotations (newest last)",
    query=(
        ("limit", "integer", "newest N records (1..1000, default 100)"),
        ("event", "string", "only this event, e.g. login_failed, login_locked"),
    ),
    response=AuditList,
)
async def audit(request: web.Request) -> web.Response:
    journal = request.app[SECURITY_LOG]
    limit = query_int(request, "limit", 100, 1, 1000)
    event = request.query.get("event") or None
    return web.json_response({"items": await asyncio.to_thread(journal.read, limit, event)})


@route(
    "POST",
    "/api/auth/logout",
    scope=AUTHENTICATED,
    summary="Revoke the calling session token",
    tag="auth",
    response=Done,
)
async def logout(request: web.Request) -> web.Response:
    gw, who = request.app[GATEWAY], principal(request)

    def work() -> None:
        with gw.db.session() as s:
            row = s.get(ApiToken, who.token_id)
            if row is not None and row.kind == "session":
                row.revoked_at = utcnow()

    await asyncio.to_thread(work)
    response = web.json_response({"ok": True})
    response.del_cookie("vigil_session")
    return response


@route(
    "GET", "/api/me", scope=AUTHENTICATED, summary="Who the token belongs to", tag="auth", response=MeAnswer
)
async def me(request: web.Request) -> web.Response:
    who = principal(request)
    return web.json_response(
        {"name": who.name, "role": who.role, "kind": who.kind, "scopes": sorted(who.scopes)}
    )


class UserBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(pattern=r"^[A-Za-z0-9_.-]{2,64}$")
    password: str = Field(min_length=10, max_length=256)
    role: Role
    display_name: str = Field("", max_length=100)


@route("GET", "/api/users", scope="users:read", summary="List users", tag="users", response=UserList)
async def list_users(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]

    def work() -> list[dict[str, Any]]:
        with gw.db.session() as s:
            return [
                {
                    "id": u.id,
                    "username": u.username,
                    "display_name": u.display_name,
                    "role": u.role,
                    "enabled": u.enabled,
                    "last_login_at": iso(u.last_login_at),
                }
                for u in s.scalars(select(User).order_by(User.username))
            ]

    return web.json_response({"items": await asyncio.to_thread(work)})


@route(
    "POST", "/api/users", scope="users:write", summary="Add a user", body=UserBody, tag="users", status=201
)
async def add_user(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    body = await parse_body(request, UserBody)
    try:  # hashed on the password threads, not the shared pool (as a login or a password change)
        new_hash = await request.app[HASH_POOL].run(hash_password, body.password)
    except HashPoolBusy as exc:
        raise ApiError(503, t_request("api.hash_busy")) from exc

    def work() -> dict[str, Any]:
        with gw.db.session() as s:
            user = create_user(
                s, body.username, body.password, body.role, body.display_name, password_hash=new_hash
            )
            return {"id": user.id, "username": user.username, "role": user.role}

    try:
        answer = await asyncio.to_thread(work)
    except ValueError as exc:
        raise ApiError(409, str(exc)) from exc
    request.app[SECURITY_LOG].record(
        "user_added", by=principal(request).name, username=answer["username"], role=answer["role"]
    )
    return web.json_response(answer, status=201)


class TokenBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    role: Role = "viewer"
    kind: Literal["machine", "callback"] = "machine"
    scopes: list[str] | None = Field(None, description=f"subset of: {', '.join(sorted(ALL_SCOPES))}")
    ttl_days: float | None = Field(None, gt=0, le=3650)


@route(
    "POST",
    "/api/tokens",
    scope="users:write",
    body=TokenBody,
    tag="users",
    summary="Create a scoped API token; the secret is returned only in this answer",
    status=201,
)
async def add_token(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    body = await parse_body(request, TokenBody)

    def work() -> dict[str, Any]:
        with gw.db.session() as s:
            ttl = dt.timedelta(days=body.ttl_days) if body.ttl_days else None
            secret, row = issue_token(
                s,
                body.name,
                body.kind,
                body.role,
                set(body.scopes) if body.scopes is not None else None,
                ttl=ttl,
            )
            return {
                "id": row.id,
                "name": row.name,
                "token": secret,
                "role": row.role,
                "scopes": row.scopes,
                "expires_at": iso(row.expires_at),
            }

    try:
        answer = await asyncio.to_thread(work)
    except ValueError as exc:
        raise ApiError(422, str(exc)) from exc
    request.app[SECURITY_LOG].record(
        "token_created",
        by=principal(request).name,
        id=answer["id"],
        name=answer["name"],
        kind=body.kind,
        role=answer["role"],
        scopes=",".join(answer["scopes"]),
    )
    return web.json_response(answer, status=201)


@route(
    "GET",
    "/api/tokens",
    scope="users:read",
    summary="List tokens (never their secrets)",
    tag="users",
    response=TokenList,
)
async def list_tokens(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]

    def work() -> list[dict[str, Any]]:
        with gw.db.session() as s:
            rows = s.scalars(select(ApiToken).where(ApiToken.kind != "session").order_by(ApiToken.id))
            return [
                {
                    "id": t.id,
                    "name": t.name,
                    "kind": t.kind,
                    "prefix": t.prefix,
                    "role": t.role,
                    "scopes": t.scopes,
                    "created_at": iso(t.created_at),
                    "expires_at": iso(t.expires_at),
                    "last_used_at": iso(t.last_used_at),
                    "revoked": t.revoked_at is not None,
                }
                for t in rows
            ]

    return web.json_response({"items": await asyncio.to_thread(work)})


@route(
    "DELETE",
    "/api/tokens/{token_id}",
    scope="users:write",
    summary="Revoke a token",
    tag="users",
    response=Done,
)
async def revoke_token(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    try:
        token_id = int(request.match_info["token_id"])
    except ValueError as exc:
        raise ApiError(400, t_request("api.token_id")) from exc

    def work() -> bool:
        with gw.db.session() as s:
            row = s.get(ApiToken, token_id)
            if row is None:
                return False
            row.revoked_at = row.revoked_at or utcnow()
            return True

    if not await asyncio.to_thread(work):
        raise ApiError(404, t_request("api.no_token", token=token_id))
    request.app[SECURITY_LOG].record("token_revoked", by=principal(request).name, id=token_id)
    return web.json_response({"ok": True})
