"""People log in with a password (argon2id); machines use scoped bearer tokens.

Every route names the scope it needs. A token carries a role and scopes; a request passes when the
token's role grants the scope (roles) and the token itself lists it (scopes).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.db.schema import ApiToken, User, utcnow
from gateway.times import as_utc

ROLES = ("viewer", "operator", "admin")  # in order of what they may do
T = TypeVar("T")

# What each role may do. Scopes are "<area>:<read|write>"; admin holds every scope.
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "viewer": frozenset(
        {
            "alarms:read",
            "cameras:read",
            "models:read",
            "stats:read",
            "metrics:read",
            "samples:read",
            "units:read",
        }
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
            "units:read",
            "diagnosis:write",  # take a camera's current picture as its video diagnosis reference
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
            "units:read",
            "units:write",  # unit run states: give the plant's systems a token with only this scope
            "diagnosis:write",
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


@dataclass(frozen=True)
class LoginCandidate:
    """What a login needs from the database before the (slow) password check."""

    user_id: int | None
    password_hash: str


def login_candidate(session: Session, username: str) -> LoginCandidate:
    """The user's hash, or a dummy one (a disabled or unknown user costs the same check)."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.enabled:
        return LoginCandidate(None, _DUMMY_HASH)
    return LoginCandidate(user.id, user.password_hash)


def verify_password(password_hash: str, password: str) -> bool:
    """The argon2id check (CPU-heavy: run it on the HashPool, never on the loop or the DB pool)."""
    try:
        return bool(_hasher.verify(password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


def complete_login(session: Session, user_id: int, password_hash: str, password: str) -> User | None:
    """After a good password: the user (None when disabled or changed meanwhile), rehashed if due."""
    user = session.get(User, user_id)
    if user is None or not user.enabled or user.password_hash != password_hash:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.last_login_at = utcnow()
    return user


def authenticate_user(session: Session, username: str, password: str) -> User | None:
    """All three steps in one thread (CLI and tests); the API splits them over its pools."""
    found = login_candidate(session, username)
    if not verify_password(found.password_hash, password) or found.user_id is None:
        return None
    return complete_login(session, found.user_id, found.password_hash, password)


class HashPoolBusy(Exception):
    """Every hashing thread is busy and the waiting line is full."""


class HashPool:
    """Password hashing on its own threads, apart from the database and file work, with a bounded
    waiting line: a flood of logins waits here (or is refused) instead of queueing everyone's
    requests behind it."""

    def __init__(self, workers: int = 2, queue: int = 16) -> None:
        self.capacity = workers + queue
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vigil-hash")
        self._admitted = 0

    @property
    def admitted(self) -> int:
        return self._admitted

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn on a hashing thread; HashPoolBusy at once when the line is full (call on the loop)."""
        if self._admitted >= self.capacity:
            raise HashPoolBusy(f"{self._admitted} password checks are waiting")
        self._admitted += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        finally:
            self._admitted -= 1

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def create_user(
    session: Session,
    username: str,
    password: str,
    role: str,
    display_name: str = "",
    *,
    password_hash: str | None = None,
) -> User:
    """A new user; ``password_hash``: the password already hashed (by the API on its HashPool), so that
    no argon2 work runs on the caller's thread."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    check_password_strength(password)
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise ValueError(f"user {username!r} exists already")
    user = User(
        username=username,
        password_hash=password_hash or hash_password(password),
        role=role,
        display_name=display_name,
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
    name, role = row.name, row.role
    if row.user_id is not None:
        user = session.get(User, row.user_id)
        if user is None or not user.enabled:
            raise AuthError(401, "the token's user is disabled")
        name = user.username
        # A person's tokens never act above the person's role now (a demoted admin's open session).
        if ROLES.index(user.role) < ROLES.index(role):
            role = user.role
    last = as_utc(row.last_used_at)
    if last is None or now - last > dt.timedelta(minutes=1):  # avoid a write on every request
        row.last_used_at = now
    scopes = frozenset(row.scopes) & ROLE_SCOPES[role]
    return Principal(name, role, scopes, row.id, row.user_id, row.kind)
