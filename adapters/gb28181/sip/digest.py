"""HTTP digest (MD5, qop=auth or none) for SIP, as server and as client (RFC 2617 / RFC 3261 §22)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from typing import Literal


class DigestError(ValueError):
    pass


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def parse_auth_header(value: str) -> tuple[str, dict[str, str]]:
    """``Digest a="b", c=d`` -> ("digest", {"a": "b", "c": "d"}). Raises DigestError."""
    value = value.strip()
    scheme, _, rest = value.partition(" ")
    if not scheme or len(value) > 4096:
        raise DigestError("empty or oversized auth header")
    params: dict[str, str] = {}
    i = 0
    n = len(rest)
    while i < n:
        while i < n and rest[i] in " ,\t":
            i += 1
        if i >= n:
            break
        eq = rest.find("=", i)
        if eq < 0:
            raise DigestError("auth parameter without '='")
        key = rest[i:eq].strip().lower()
        i = eq + 1
        while i < n and rest[i] == " ":
            i += 1
        if i < n and rest[i] == '"':
            end = rest.find('"', i + 1)
            if end < 0:
                raise DigestError("unterminated quoted auth value")
            val = rest[i + 1 : end]
            i = end + 1
        else:
            end = rest.find(",", i)
            end = n if end < 0 else end
            val = rest[i:end].strip()
            i = end
        if not key:
            raise DigestError("empty auth parameter name")
        params[key] = val
    return scheme.lower(), params


def ha1_of(username: str, realm: str, password: str) -> str:
    """HA1 = MD5(username:realm:password): what a registrar may store instead of the password."""
    return _md5(f"{username}:{realm}:{password}")


@dataclass(frozen=True)
class Ha1:
    """A stored digest secret for one realm, in place of a password. As good as the password against
    this realm: its repr hides the value so it never reaches a log."""

    value: str = field(repr=False)
    realm: str


Secret = str | Ha1  # a password, or the HA1 stored for it


def compute_response(
    *,
    username: str,
    realm: str,
    password: str = "",
    method: str,
    uri: str,
    nonce: str,
    nc: str | None = None,
    cnonce: str | None = None,
    qop: str | None = None,
    ha1: str | None = None,
) -> str:
    ha1 = ha1.lower() if ha1 is not None else ha1_of(username, realm, password)
    ha2 = _md5(f"{method}:{uri}")
    if qop:
        return _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return _md5(f"{ha1}:{nonce}:{ha2}")


Verdict = Literal["ok", "wrong", "stale", "replay", "unknown"]


@dataclass
class _Nonce:
    issued: float
    nc: int = 0  # the highest nonce count seen with it
    used: bool = False


@dataclass
class DigestServer:
    """Issues challenges and verifies Authorization headers against issued nonces.

    Nonces are one-time: the first answer to a nonce (right or wrong) uses it up, so a captured
    Authorization header cannot be replayed (:meth:`check` says ``replay``; answer with a fresh 401), and
    each wrong password costs a new challenge. The nonce count must grow (RFC 2617 §3.2.2). A nonce is
    signed with a per-server key and carries its issue time, so one of ours that expired (or was evicted)
    is told from a made-up one: ``stale`` (answer with ``stale=true``)."""

    realm: str
    nonce_ttl: float = 300.0
    qop: bool = True
    max_nonces: int = 4096
    _nonces: dict[str, _Nonce] = field(default_factory=dict)
    _key: bytes = field(default_factory=lambda: secrets.token_bytes(16), repr=False)

    def _sign(self, stamp: str) -> str:
        return hmac.new(self._key, stamp.encode(), hashlib.sha256).hexdigest()[:16]

    def _new_nonce(self, now: float) -> str:
        stamp = f"{int(now * 1000) & 0xFFFFFFFFFFFF:012x}{secrets.token_hex(8)}"
        return stamp + self._sign(stamp)

    def _genuine(self, nonce: str) -> bool:
        return len(nonce) == 44 and hmac.compare_digest(self._sign(nonce[:28]), nonce[28:])

    def challenge(self, stale: bool = False) -> str:
        now = time.monotonic()
        if len(self._nonces) >= self.max_nonces:
            self._nonces = {k: n for k, n in self._nonces.items() if now - n.issued < self.nonce_ttl}
            while len(self._nonces) >= self.max_nonces:  # a flood of challenges: the oldest go first
                del self._nonces[next(iter(self._nonces))]
        nonce = self._new_nonce(now)
        self._nonces[nonce] = _Nonce(now)
        value = f'Digest realm="{self.realm}",nonce="{nonce}",algorithm=MD5'
        if self.qop:
            value += ',qop="auth"'
        if stale:
            value += ",stale=true"
        return value

    def username(self, authorization: str) -> str | None:
        try:
            _, p = parse_auth_header(authorization)
        except DigestError:
            return None
        return p.get("username")

    def knows_nonce(self, authorization: str) -> bool:
        """Whether the header answers a nonce of ours that is still fresh and not used up."""
        try:
            _, p = parse_auth_header(authorization)
        except DigestError:
            return False
        state = self._nonces.get(p.get("nonce", ""))
        return state is not None and not state.used and time.monotonic() - state.issued < self.nonce_ttl

    def verify(self, authorization: str, method: str, password: Secret) -> bool:
        """True when the response matches a fresh nonce of ours (which is then used up)."""
        return self.check(authorization, method, password) == "ok"

    def check(self, authorization: str, method: str, password: Secret) -> Verdict:
        """``ok``; ``wrong`` (bad response or malformed header); ``stale`` (the right answer to one of our
        nonces that expired); ``replay`` (a nonce already answered, or a nonce count that did not grow);
        ``unknown`` (not a nonce of ours). ``uri`` is taken from the header (SIPp puts the transport
        address there, not the Request-URI). With an :class:`Ha1` the answer must name its realm."""
        try:
            scheme, p = parse_auth_header(authorization)
        except DigestError:
            return "wrong"
        nonce = p.get("nonce", "")
        state = self._nonces.get(nonce)
        now = time.monotonic()
        if state is None or now - state.issued >= self.nonce_ttl:
            if state is not None:
                del self._nonces[nonce]
            if not self._genuine(nonce):
                return "unknown"
            return "stale" if self._matches(p, method, password) else "wrong"
        if state.used:
            return "replay"
        state.used = True  # one answer per nonce, right or wrong
        nc_text = p.get("nc")
        if p.get("qop"):
            try:
                nc = int(nc_text or "", 16)
            except ValueError:
                return "wrong"
            if nc <= state.nc:
                return "replay"
            state.nc = nc
        if scheme != "digest" or p.get("algorithm", "MD5").upper() not in ("MD5", ""):
            return "wrong"
        return "ok" if self._matches(p, method, password) else "wrong"

    def _matches(self, p: dict[str, str], method: str, password: Secret) -> bool:
        realm = p.get("realm", self.realm)
        if isinstance(password, Ha1) and realm != password.realm:
            return False  # HA1 binds the realm: any other cannot be checked
        try:
            expected = compute_response(
                username=p["username"],
                realm=realm,
                password=password if isinstance(password, str) else "",
                ha1=password.value if isinstance(password, Ha1) else None,
                method=method,
                uri=p["uri"],
                nonce=p["nonce"],
                nc=p.get("nc"),
                cnonce=p.get("cnonce"),
                qop=p.get("qop"),
            )
        except KeyError:
            return False
        return secrets.compare_digest(expected, p.get("response", "").lower())


@dataclass
class DigestClient:
    """Answers a 401/407 challenge; keeps the nonce count per nonce."""

    username: str
    password: str
    _nc: int = 0
    _nonce: str = ""

    def authorization(self, challenge: str, method: str, uri: str) -> str:
        scheme, p = parse_auth_header(challenge)
        if scheme != "digest":
            raise DigestError(f"unsupported auth scheme {scheme!r}")
        if "nonce" not in p:
            raise DigestError("challenge without nonce")
        realm = p.get("realm", "")
        nonce = p["nonce"]
        if nonce != self._nonce:
            self._nonce, self._nc = nonce, 0
        qop_offered = [q.strip().lower() for q in p.get("qop", "").split(",") if q.strip()]
        qop = "auth" if "auth" in qop_offered else None
        out = f'Digest username="{self.username}",realm="{realm}",nonce="{nonce}",uri="{uri}"'
        if qop:
            self._nc += 1
            nc = f"{self._nc:08x}"
            cnonce = secrets.token_hex(8)
            resp = compute_response(
                username=self.username,
                realm=realm,
                password=self.password,
                method=method,
                uri=uri,
                nonce=nonce,
                nc=nc,
                cnonce=cnonce,
                qop=qop,
            )
            out += f',response="{resp}",cnonce="{cnonce}",nc={nc},qop={qop}'
        else:
            resp = compute_response(
                username=self.username,
                realm=realm,
                password=self.password,
                method=method,
                uri=uri,
                nonce=nonce,
            )
            out += f',response="{resp}"'
        out += ",algorithm=MD5"
        if "opaque" in p:
            out += f',opaque="{p["opaque"]}"'
        return out
