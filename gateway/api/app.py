"""The aiohttp application: JSON errors, authentication on every route but health and login,
request size limits, and start/stop of the gateway around the server's lifetime."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from aiohttp import web

# One module per resource; importing it registers its routes (gateway/api/http.py's `route`).
from gateway.api import (
    alarms,
    cameras,
    cluster,
    diagnosis,
    enrolments,
    gb28181,
    models,
    samples,
    scenes,
    stats,
    system,
    units,
    uplinks,
    users,
    videos,
)
from gateway.api.cache import CACHE, AnswerCache
from gateway.api.guard import CALLBACK_ROUTES, LoginGuard
from gateway.api.http import PUBLIC, ROUTES, ApiError, Handler, RouteSpec, error_body, language
from gateway.api.keys import GATEWAY, HASH_POOL, LOGIN_GUARD, OPENAPI, PRINCIPAL, SECURITY_LOG
from gateway.api.openapi import build_openapi
from gateway.api.principal_cache import PRINCIPALS, PrincipalCache
from gateway.api.web_security import BROWSER, SESSION_COOKIE, BrowserPolicy, inline_script_hashes
from gateway.app import Gateway
from gateway.auth import AuthError, HashPool, Principal, resolve_token
from gateway.security_log import SecurityLog

log = logging.getLogger(__name__)
RESOURCES = (
    system,
    users,
    alarms,
    cameras,
    scenes,
    gb28181,
    models,
    enrolments,
    samples,
    stats,
    uplinks,
    videos,
    units,
    diagnosis,
    cluster,
)
STATIC = Path(__file__).resolve().parent.parent / "static"
WEB_DIST = Path(__file__).resolve().parent.parent / "web" / "dist"  # `npm run build` in gateway/web
HEALTH_PERSIST_S = 5.0
SWEEP_FIRST_S = 10.0


def package_version() -> str:
    try:
        return version("vigil")
    except PackageNotFoundError:
        return "0.0.0"


SPECS: dict[object, RouteSpec] = {}


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error leaves as JSON with a message that says what to do."""
    try:
        return await handler(request)
    except ApiError as exc:
        body = error_body(exc.status, exc.message, exc.details)
        return web.json_response(body, status=exc.status, headers=exc.headers)
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[GATEWAY].config.server.max_body_mb
        return web.json_response(error_body(413, f"request body too large (limit {limit} MB)"), status=413)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = {
            404: f"no such route: {request.method} {request.path}",
            405: f"method {request.method} not allowed on {request.path}",
        }.get(exc.status, exc.reason)
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None  # 405 says what is
        return web.json_response(error_body(exc.status, message), status=exc.status, headers=allow)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return web.json_response(
            error_body(500, "internal error; the gateway log has the details"), status=500
        )


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        request.app[BROWSER].check_cookie_write(request)  # CSRF: a browser's write shows its origin
    return cookie


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    spec = SPECS.get(getattr(request.match_info.route, "handler", None))
    if spec is None:  # 404/405 and the console's static files
        return await handler(request)
    if spec.scope is PUBLIC:
        return await handler(request)
    token = bearer(request)
    if token is None:
        raise ApiError(
            401, "authentication required: send Authorization: Bearer <token> (POST /api/auth/login)"
        )
    gw = request.app[GATEWAY]

    def resolve() -> Principal:
        with gw.db.session() as s:
            return resolve_token(s, token)

    try:
        who = await request.app[PRINCIPALS].resolve(token, resolve)
        if who.kind == "callback" and (spec.method, spec.path) not in CALLBACK_ROUTES:
            raise AuthError(
                403,
                "a callback token may only read and act on alarms (POST /api/alarms/{id}/confirm|"
                "reject|dispose|clear|update|close, GET /api/alarms/{id}); use a machine token for this",
            )
        if spec.scope:
            who.require(spec.scope)
    except AuthError as exc:
        raise ApiError(exc.status, exc.message) from exc
    request[PRINCIPAL] = who
    return await handler(request)


FALLBACK_NOTE = (
    '<p style="background:#fff3cd;margin:0;padding:8px 16px">The full web console is not built: run '
    "<code>make demo</code>, or <code>npm ci &amp;&amp; npm run build</code> in gateway/web, "
    "then reload. This is the minimal console.</p>"
)


async def console(_request: web.Request) -> web.StreamResponse:
    """The built console (gateway/web/dist) when present, else the minimal page with a build hint.
    No auth here: the page is public, the API behind it is not."""
    index = WEB_DIST / "index.html"
    if index.is_file():
        return web.FileResponse(index, headers={"Cache-Control": "no-cache"})
    page = (STATIC / "index.html").read_text(encoding="utf-8").replace("<body>", "<body>" + FALLBACK_NOTE, 1)
    return web.Response(text=page, content_type="text/html", headers={"Cache-Control": "no-cache"})


async def console_asset(request: web.Request) -> web.StreamResponse:
    """Hashed build assets: their names change with their content, so browsers may keep them a year."""
    root = (WEB_DIST / "assets").resolve()
    path = (root / request.match_info["name"]).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise ApiError(404, f"no console asset {request.match_info['name']}; rebuild the console")
    return web.FileResponse(path, headers={"Cache-Control": "public, max-age=31536000, immutable"})


def create_app(gateway: Gateway, start_gateway: bool = True) -> web.Application:
    server = gateway.config.server
    journal = SecurityLog(gateway.config.storage.root / "security.log")
    browser = BrowserPolicy(server, journal, inline_script_hashes([STATIC / "index.html"]))
    app = web.Application(
        middlewares=[language, errors, browser.check_origin, authenticate],
        client_max_size=int(server.max_body_mb * 1024 * 1024),
    )
    app.on_response_prepare.append(browser.add_headers)
    app[GATEWAY] = gateway
    app[OPENAPI] = build_openapi(package_version())
    app[SECURITY_LOG] = journal
    app[BROWSER] = browser
    app[LOGIN_GUARD] = LoginGuard(
        server.login_failures_per_account, server.login_failures_per_address, server.login_window_s
    )
    app[HASH_POOL] = HashPool(server.hash_workers, server.hash_queue)
    app[CACHE] = AnswerCache()  # alarm list pages, overview, statistics (gateway/api/cache.py)
    app[PRINCIPALS] = PrincipalCache()
    for spec in ROUTES:
        app.router.add_route(spec.method, spec.path, spec.handler)
        SPECS[spec.handler] = spec
    app.router.add_get("/", console)
    app.router.add_get("/assets/{name:.+}", console_asset)
    if STATIC.is_dir():
        app.router.add_static("/static", STATIC)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        if start_gateway:
            await asyncio.to_thread(gateway.start)
            await gateway.onvif.start()  # its tasks live on this loop
            await gateway.unit_feeds.start()  # unit run states from MQTT / OPC UA
            await gateway.gb28181.start(gateway.gb_cameras)  # SIP roles and GB channel players
            await gateway.uplinks.start()  # dispatchers drain the outbox on this loop
        tasks = [
            asyncio.create_task(_persist_health(gateway)),
            asyncio.create_task(uplinks.publish_stats(gateway)),
            asyncio.create_task(_sweep(gateway)),
            asyncio.create_task(gateway.escalation.run()),  # alarms not confirmed/disposed in time
        ]
        yield
        await gateway.onvif.stop()
        await gateway.unit_feeds.stop()
        await gateway.uplinks.stop()
        await gateway.gb28181.stop()  # BYE to played channels, unregister from superiors
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # Graceful: camera threads and inference workers end, status is saved, connections close.
        await asyncio.to_thread(gateway.stop)

    async def end_feeds(app: web.Application) -> None:
        # Screens hold their feed open for days; the server waits for open handlers before it stops.
        for hub in gateway.uplinks.hubs.values():
            hub.going_away()

    async def end_hashing(app: web.Application) -> None:
        app[HASH_POOL].shutdown()

    app.on_shutdown.append(end_feeds)
    app.on_cleanup.append(end_hashing)
    app.cleanup_ctx.append(lifecycle)
    return app


async def _sweep(gateway: Gateway) -> None:
    """Evidence retention and the quota check: soon after start, then every sweep interval."""
    await asyncio.sleep(SWEEP_FIRST_S)
    while True:
        try:
            await asyncio.to_thread(gateway.retention.sweep)
        except Exception:
            log.exception("evidence retention sweep failed")
        await asyncio.sleep(gateway.config.storage.sweep_interval_s)


async def _persist_health(gateway: Gateway) -> None:
    while True:
        await asyncio.sleep(HEALTH_PERSIST_S)
        try:
            await asyncio.to_thread(gateway.persist_health)
        except Exception:
            log.exception("could not save camera status")
