"""HTTP digest (MD5, qop=auth or none) for SIP, as server and as client (RFC 2617 / RFC 3261 §22)."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field


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


@dataclass
class DigestServer:
    """Issues challenges and verifies Authorization headers against issued nonces."""

    realm: str
    nonce_ttl: float = 300.0
    qop: bool = True
    _nonces: dict[str, float] = field(default_factory=dict)

    def challenge(self) -> str:
        now = time.monotonic()
        if len(self._nonces) > 4096:
            self._nonces = {k: t for k, t in self._nonces.items() if now - t < self.nonce_ttl}
        nonce = secrets.token_hex(16)
        self._nonces[nonce] = now
        value = f'Digest realm="{self.realm}",nonce="{nonce}",algorithm=MD5'
        if self.qop:
            value += ',qop="auth"'
        return value

    def username(self, authorization: str) -> str | None:
        try:
            _, p = parse_auth_header(authorization)
        except DigestError:
            return None
        return p.get("username")

    def knows_nonce(self, authorization: str) -> bool:
        try:
            _, p = parse_auth_header(authorization)
        except DigestError:
            return False
        issued = self._nonces.get(p.get("nonce", ""))
        return issued is not None and time.monotonic() - issued < self.nonce_ttl

    def verify(self, authorization: str, method: str, password: Secret) -> bool:
        """True when the response matches; ``uri`` is taken from the header (SIPp puts the transport
        address there, not the Request-URI). With an :class:`Ha1` the answer must name its realm."""
        try:
            scheme, p = parse_auth_header(authorization)
        except DigestError:
            return False
        if scheme != "digest" or p.get("algorithm", "MD5").upper() not in ("MD5", ""):
            return False
        if not self.knows_nonce(authorization):
            return False
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
