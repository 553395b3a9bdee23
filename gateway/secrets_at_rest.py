"""Secrets at rest: camera stream and ONVIF credentials are sealed (AES-256-GCM) before they reach the
database, under a key that never lives there.

The key comes from, in this order: ``VIGIL_SECRET_KEY`` (one or more base64url keys separated by commas,
the first one seals), ``VIGIL_SECRET_KEY_FILE`` (a file with one key a line, the first one seals), or
the key file the gateway configures (``storage.secret_key_file``, default ``<storage.root>/secret.key``,
created with mode 0600 on first use). A sealed value reads ``vigil-sealed:v1:<key id>:<base64url>``;
the key id lets several keys coexist while ``vigil secrets rotate`` re-seals every value under the
newest one. A value without that prefix (stored before this module existed) reads as it is and is
sealed by the next rotation.

A column holding a secret is declared with the type :class:`SealedText`; the ORM seals on write and
opens on read, so the rest of the code sees plain values and never has to remember to seal.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Text, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql.schema import MetaData
from sqlalchemy.types import TypeDecorator

PREFIX = "vigil-sealed:v1:"
ENV_KEY = "VIGIL_SECRET_KEY"
ENV_KEY_FILE = "VIGIL_SECRET_KEY_FILE"
_AAD = b"vigil secret at rest"
log = logging.getLogger(__name__)
_NONCE = 12


def default_key_file() -> Path:
    """The key file of a process that was given none: $XDG_CONFIG_HOME/vigil/secret.key."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "vigil" / "secret.key"


class SecretKeyError(Exception):
    """No usable key, a malformed key, or a sealed value no known key opens."""


def new_key() -> str:
    """A fresh 256-bit key as base64url text (what the key file and VIGIL_SECRET_KEY hold)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def _decode_key(text: str, where: str) -> bytes:
    text = text.strip()
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise SecretKeyError(
            f"{where}: a key must be base64url text (`vigil secrets new-key` makes one)"
        ) from exc
    if len(raw) != 32:
        raise SecretKeyError(f"{where}: a key must be 32 bytes (base64url), got {len(raw)}")
    return raw


def key_id(raw: bytes) -> str:
    """A short public name of a key (never the key): the first 8 hex digits of its SHA-256."""
    return hashlib.sha256(raw).hexdigest()[:8]


@dataclass
class _KeyFile:
    path: Path
    mtime: float = -1.0


class KeyRing:
    """Every key this process knows (to open values) and the one that seals new values.

    Keys come from the environment or from key files; a key file changed on disk (by a rotation in
    another process) is read again before the next seal and when a value names an unknown key.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, AESGCM] = {}
        self._current: str | None = None
        self._files: list[_KeyFile] = []
        self._env_loaded = False

    # --- where keys come from ---------------------------------------------------------------------

    def use_key_file(self, path: Path, create: bool = True) -> None:
        """Add a key file (the gateway's configured one); created with a new key when missing.
        The environment, when it names a key, still decides which key seals."""
        path = Path(path)
        with self._lock:
            if os.environ.get(ENV_KEY) or os.environ.get(ENV_KEY_FILE):
                self._load_env()
                return
            if create and not path.exists():
                write_key_file(path, [new_key()])
            for known in self._files:
                if known.path == path:
                    self._files.remove(known)
                    break
            self._files.append(_KeyFile(path))
            self._reload(force=True)
            # the last file configured seals: a process serving one gateway configures one file
            self._current = self._first_of(self._files[-1].path)

    def _load_env(self) -> None:
        if self._env_loaded:
            return
        env_keys = os.environ.get(ENV_KEY, "")
        env_file = os.environ.get(ENV_KEY_FILE, "")
        if env_keys:
            first = None
            for i, text in enumerate(k for k in env_keys.split(",") if k.strip()):
                raw = _decode_key(text, f"{ENV_KEY} (key {i + 1})")
                self._keys[key_id(raw)] = AESGCM(raw)
                first = first or key_id(raw)
            self._current = first
        elif env_file:
            path = Path(env_file)
            if not path.is_file():
                raise SecretKeyError(f"{ENV_KEY_FILE} names {path}, which does not exist")
            self._files = [_KeyFile(path)]
            self._reload(force=True)
            self._current = self._first_of(path)
        self._env_loaded = True

    def _first_of(self, path: Path) -> str:
        keys = read_key_file(path)
        if not keys:
            raise SecretKeyError(f"{path} holds no key")
        return key_id(keys[0])

    def _reload(self, force: bool = False) -> None:
        for kf in self._files:
            try:
                mtime = kf.path.stat().st_mtime
            except OSError as exc:
                raise SecretKeyError(f"cannot read the secret key file {kf.path}: {exc.strerror}") from exc
            if force or mtime != kf.mtime:
                keys = read_key_file(kf.path)
                for raw in keys:
                    self._keys[key_id(raw)] = AESGCM(raw)
                if keys and self._files[-1] is kf:
                    self._current = key_id(keys[0])
                kf.mtime = mtime

    def _ensure(self) -> None:
        self._load_env()
        if self._current is None:
            # A process that opened the database without the gateway's config (a tool, a script): the
            # user's own key file, so what it seals stays readable by the next such process.
            fallback = default_key_file()
            log.warning(
                "no secret key configured: using %s (set %s or storage.secret_key_file)", fallback, ENV_KEY
            )
            if not fallback.exists():
                write_key_file(fallback, [new_key()])
            self._files.append(_KeyFile(fallback))
            self._reload(force=True)
            self._current = self._first_of(fallback)

    # --- sealing -------------------------------------------------------------------------------------

    @property
    def current_id(self) -> str:
        with self._lock:
            self._ensure()
            self._reload()
            assert self._current is not None
            return self._current

    def seal(self, plain: str) -> str:
        with self._lock:
            self._ensure()
            self._reload()
            kid = self._current
            assert kid is not None
            aead = self._keys[kid]
        nonce = secrets.token_bytes(_NONCE)
        sealed = aead.encrypt(nonce, plain.encode("utf-8"), _AAD)
        return f"{PREFIX}{kid}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def unseal(self, text: str) -> str:
        if not is_sealed(text):
            return text  # stored before sealing existed; the next rotation seals it
        try:
            kid, body = text[len(PREFIX) :].split(":", 1)
            blob = base64.urlsafe_b64decode(body)
        except (ValueError, binascii.Error) as exc:
            raise SecretKeyError("a sealed secret in the database is damaged") from exc
        with self._lock:
            self._load_env()
            if kid not in self._keys:
                self._reload(force=True)
            aead = self._keys.get(kid)
        if aead is None:
            raise SecretKeyError(
                f"a secret in the database was sealed with key {kid}, which this gateway does not have: "
                f"restore that key ({ENV_KEY}, {ENV_KEY_FILE} or storage.secret_key_file)"
            )
        try:
            return aead.decrypt(blob[:_NONCE], blob[_NONCE:], _AAD).decode("utf-8")
        except InvalidTag as exc:
            raise SecretKeyError(
                f"a secret sealed with key {kid} does not open: damaged or a wrong key"
            ) from exc

    def forget(self) -> None:
        """Drop every key and source (tests; a process that reconfigures itself)."""
        with self._lock:
            self._keys.clear()
            self._files.clear()
            self._current = None
            self._env_loaded = False


def is_sealed(text: str | None) -> bool:
    return bool(text) and str(text).startswith(PREFIX)


def read_key_file(path: Path) -> list[bytes]:
    lines = [ln.strip() for ln in Path(path).read_text(encoding="utf-8").splitlines()]
    return [
        _decode_key(ln, f"{path} line {i + 1}") for i, ln in enumerate(lines) if ln and not ln.startswith("#")
    ]


def write_key_file(path: Path, keys: Iterable[str]) -> None:
    """Write keys (newest first) to a file only its owner reads, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("# vigil secret keys, newest first; keep a copy apart from the database backups\n")
        for key in keys:
            fh.write(key + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


RING = KeyRing()


def seal(plain: str) -> str:
    """Seal a secret for storing (under the current key)."""
    return RING.seal(plain)


def unseal(text: str) -> str:
    """Open a stored secret (a value stored before sealing existed comes back as it is)."""
    return RING.unseal(text)


class SealedText(TypeDecorator[str]):
    """A text column whose values are sealed in the database and plain in Python."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None or is_sealed(value):
            return value
        return RING.seal(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else RING.unseal(value)


def sealed_columns(metadata: MetaData) -> list[tuple[Any, list[Any], list[Any]]]:
    """(table, primary key columns, sealed columns) of every table with a SealedText column."""
    found = []
    for table in metadata.sorted_tables:
        cols = [c for c in table.columns if isinstance(c.type, SealedText)]
        if cols:
            found.append((table, list(table.primary_key.columns), cols))
    return found


def reseal_all(session: Session, metadata: MetaData) -> int:
    """Re-seal every sealed column's value under the current key (legacy plain values included);
    returns how many values were written. Runs in the caller's transaction: all or nothing."""
    written = 0
    for table, pk, cols in sealed_columns(metadata):
        for row in session.execute(select(*pk, *cols)).all():  # opened on read (any known key)
            where = [c == v for c, v in zip(pk, row[: len(pk)], strict=True)]
            values = {c.name: v for c, v in zip(cols, row[len(pk) :], strict=True) if v is not None}
            if values:  # SealedText seals them again under the current key
                session.execute(update(table).where(*where).values(**values))
                written += len(values)
    return written


def use_key_file(path: Path) -> None:
    """The gateway's configured key file (created when missing); the environment overrides it."""
    RING.use_key_file(path)
