"""What a browser needs to keep the console safe: security headers on every answer, no version banner,
HSTS under TLS, an Origin check on cookie-authenticated writes (CSRF) and on the WebSocket feed, and the
TLS context the server listens with."""

from __future__ import annotations

import base64
import hashlib
import re
import ssl
from collections.abc import Iterable
from pathlib import Path

from aiohttp import hdrs, web

from gateway.api.http import ApiError, Handler
from gateway.config.schema import ServerConfig
from gateway.security_log import SecurityLog

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_COOKIE = "vigil_session"


def inline_script_hashes(pages: Iterable[Path]) -> list[str]:
    """CSP hashes of the inline scripts of our own pages (the minimal console has one)."""
    found = []
    for page in pages:
        if not page.is_file():
            continue
        for body in re.findall(r"<script>(.*?)</script>", page.read_text(encoding="utf-8"), flags=re.S):
            digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode()
            found.append(f"'sha256-{digest}'")
    return found


def content_security_policy(script_hashes: Iterable[str] = ()) -> str:
    scripts = " ".join(["'self'", *script_hashes])
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src {scripts}",
            "style-src 'self' 'unsafe-inline'",  # Vue's style bindings set style attributes
            "img-src 'self' data: blob:",
            "media-src 'self' blob:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


class BrowserPolicy:
    """Headers and origin rules for one server configuration."""

    def __init__(self, server: ServerConfig, journal: SecurityLog, script_hashes: Iterable[str] = ()) -> None:
        self.tls = server.tls_cert is not None
        self.allowed = {o.rstrip("/").lower() for o in server.allowed_origins}
        self.journal = journal
        self.headers = {
            "Content-Security-Policy": content_security_policy(script_hashes),
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "same-origin",  # other sites get no Referer; ours keeps it (CSRF fallback)
            "Cross-Origin-Opener-Policy": "same-origin",
            "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
            hdrs.SERVER: "vigil",  # no Python/aiohttp versions
        }
        if self.tls and server.hsts_max_age_s:
            self.headers["Strict-Transport-Security"] = f"max-age={server.hsts_max_age_s}; includeSubDomains"

    async def add_headers(self, _request: web.Request, response: web.StreamResponse) -> None:
        """on_response_prepare: every answer, the console's files and errors included."""
        for name, value in self.headers.items():
            response.headers[name] = value

    def own_origin(self, request: web.Request) -> str:
        return f"{request.scheme}://{request.host}".lower()

    def origin_allowed(self, request: web.Request, origin: str) -> bool:
        origin = origin.rstrip("/").lower()
        return origin == self.own_origin(request) or origin in self.allowed

    def _refuse(self, request: web.Request, origin: str, what: str) -> ApiError:
        self.journal.record(
            "origin_refused", origin=origin, method=request.method, path=request.path, address=request.remote
        )
        return ApiError(
            403,
            f"{what} from origin {origin[:100]} refused: open the console from this gateway's own address, "
            "or add that origin to server.allowed_origins",
        )

    @web.middleware
    async def check_origin(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """A write or a WebSocket upgrade sent by a page of another origin is refused (CSRF,
        cross-site WebSocket hijacking). Clients that are no browser send no Origin and pass."""
        origin = request.headers.get(hdrs.ORIGIN)
        upgrade = request.headers.get(hdrs.UPGRADE, "").lower() == "websocket"
        if (upgrade or request.method not in SAFE_METHODS) and origin is not None:
            if not self.origin_allowed(request, origin):
                raise self._refuse(request, origin, "WebSocket connection" if upgrade else "request")
        return await handler(request)

    def check_cookie_write(self, request: web.Request) -> None:
        """A write authenticated by the session cookie (a browser) must show where it comes from:
        an Origin or Referer of this gateway (a foreign Origin was refused already)."""
        if request.method in SAFE_METHODS or request.headers.get(hdrs.ORIGIN) not in (None, "null"):
            return
        referer = request.headers.get(hdrs.REFERER, "")
        m = re.match(r"^([a-z][a-z0-9+.-]*://[^/]+)", referer, flags=re.I)
        if m is None or not self.origin_allowed(request, m.group(1)):
            raise self._refuse(
                request, referer[:100] or "(none)", "cookie-authenticated write without this gateway's Origin"
            )


BROWSER: web.AppKey[BrowserPolicy] = web.AppKey("browser_policy")


def tls_context(server: ServerConfig) -> ssl.SSLContext | None:
    """The server's TLS context (TLS 1.2 or newer) when a certificate is configured."""
    if server.tls_cert is None or server.tls_key is None:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(str(server.tls_cert), str(server.tls_key))
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(
            f"cannot load server.tls_cert {server.tls_cert} / tls_key {server.tls_key}: {exc}; "
            "give PEM files the gateway can read (certificate chain and its unencrypted key)"
        ) from exc
    return ctx
