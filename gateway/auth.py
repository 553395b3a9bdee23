"""People log in with a password (argon2id); machines use scoped bearer tokens.

Every route names the scope it needs. A token carries a role and scopes; a request passes when the
token's role grants the scope (roles) and the token itself lists it (scopes).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.db.schema import ApiToken, User, utcnow
from gateway.times import as_utc

ROLES = ("viewer", "operator", "admin")

# What each role may do. Scopes are "<area>:<read|write>"; admin holds every scope.
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "viewer": frozenset(
        {"alarms:read", "cameras:read", "models:read", "stats:read", "metrics:read", "samples:read"}
    ),
    "operator": frozenset(
        {
            "alarms:read",
            "alarms:write",
            "cameras:read",
            "models:read",
            "stats:read",
            "metrics:read",
            "samples:read",
            "samples:write",
        }
    ),
    "admin": frozenset(
        {
            "alarms:read",
            "alarms:write",
            "cameras:read",
            "cameras:write",
            "models:read",
            "models:write",
            "stats:read",
            "metrics:read",
            "samples:read",
            "samples:write",
            "users:read",
            "users:write",
            "uplink:read",
            "uplink:write",
        }
    ),
}
ALL_SCOPES = ROLE_SCOPES["admin"]
TOKEN_PREFIX = "vgl_"  # noqa: S105 (a marker, not a secret)

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verifying against this keeps the timing of "no such user" like that of "wrong password".
_DUMMY_HASH = _hasher.hash("not-a-real-password")


class AuthError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Principal:
    """Who is calling: a person's session or a machine token."""

    name: str
    role: str
    scopes: frozenset[str]
    token_id: int
    user_id: int | None
    kind: str

    def require(self, scope: str) -> None:
        if scope not in ROLE_SCOPES.get(self.role, frozenset()):
            raise AuthError(403, f"role {self.role!r} may not use this ({scope} needed)")
        if scope not in self.scopes:
            raise AuthError(403, f"this token lacks the scope {scope!r}")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password_strength(password: str) -> None:
    if len(password) < 10:
        raise ValueError("a password needs at least 10 characters")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def authenticate_user(session: Session, username: str, password: str) -> User | None:
    user = session.scalar(select(User).where(User.username == username))
    try:
        if user is None or not user.enabled:
            _hasher.verify(_DUMMY_HASH, password)
            return None
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.last_login_at = utcnow()
    return user


def create_user(session: Session, username: str, password: str, role: str, display_name: str = "") -> User:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    check_password_strength(password)
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise ValueError(f"user {username!r} exists already")
    user = User(
        username=username, password_hash=hash_password(password), role=role, display_name=display_name
    )
    session.add(user)
    session.flush()
    return user


def issue_token(
    session: Session,
    name: str,
    kind: str,
    role: str,
    scopes: frozenset[str] | set[str] | None = None,
    user_id: int | None = None,
    ttl: dt.timedelta | None = None,
) -> tuple[str, ApiToken]:
    """Create a token; returns the secret (shown once) and its row."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    granted = ROLE_SCOPES[role]
    wanted = frozenset(granted if scopes is None else scopes)
    unknown = wanted - ALL_SCOPES
    if unknown:
        raise ValueError(
            f"unknown scopes: {', '.join(sorted(unknown))}; known: {', '.join(sorted(ALL_SCOPES))}"
        )
    beyond = wanted - granted
    if beyond:
        raise ValueError(f"role {role!r} cannot hold scopes {', '.join(sorted(beyond))}")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        name=name,
        kind=kind,
        token_hash=hash_token(secret),
        prefix=secret[:10],
        user_id=user_id,
        role=role,
        scopes=sorted(wanted),
        expires_at=utcnow() + ttl if ttl else None,
    )
    session.add(row)
    session.flush()
    return secret, row


def resolve_token(session: Session, secret: str) -> Principal:
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(secret)))
    now = utcnow()
    if row is None or row.revoked_at is not None:
        raise AuthError(401, "invalid or revoked token; log in again or ask an admin for a new token")
    expires = as_utc(row.expires_at)
    if expires is not None and expires <= now:
        raise AuthError(401, "token expired; log in again")
    name = row.name
    if row.user_id is not None:
        user = session.get(User, row.user_id)
        if user is None or not user.enabled:
            raise AuthError(401, "the token's user is disabled")
        name = user.username
    last = as_utc(row.last_used_at)
    if last is None or now - last > dt.timedelta(minutes=1):  # avoid a write on every request
        row.last_used_at = now
    return Principal(name, row.role, frozenset(row.scopes), row.id, row.user_id, row.kind)
