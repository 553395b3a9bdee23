"""Request signing and payload envelopes for HTTP uplinks.

HMAC mode (what an upstream implementer needs to know)
------------------------------------------------------
Each request carries three headers::

    X-Vigil-Timestamp: 1767225600                      Unix seconds when it was signed
    X-Vigil-Nonce:     3f0c9a...                       32 random hex characters, never reused
    X-Vigil-Signature: 9b1d...                         lowercase hex HMAC-SHA256(secret, canonical)

over the canonical string (five lines joined by "\\n", no trailing newline)::

    METHOD                  upper case, e.g. POST
    path                    the request target as sent: percent-encoded path plus "?query" if any
    timestamp               the X-Vigil-Timestamp value
    nonce                   the X-Vigil-Nonce value
    sha256(body)            lowercase hex SHA-256 of the exact body bytes (of b"" when empty)

A receiver recomputes it with ``verify()``, compares in constant time, rejects timestamps outside
its replay window and, given a ``NonceCache``, nonces it has already seen inside that window.

Token mode sends ``Authorization: Bearer <secret>``.

Envelopes
---------
Some upstreams want the payload encrypted and base64-encoded inside a JSON field: AES-128/192/256
or SM4, ECB or CBC, PKCS#7 padding. CBC uses the configured IV; without one, a random IV is put in
front of the ciphertext (base64(iv || ciphertext)), which ``decrypt`` understands.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from typing import Literal

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

TIMESTAMP_HEADER = "X-Vigil-Timestamp"
NONCE_HEADER = "X-Vigil-Nonce"
SIGNATURE_HEADER = "X-Vigil-Signature"
DEFAULT_WINDOW_S = 300.0

CipherName = Literal["none", "aes-ecb", "aes-cbc", "sm4-ecb", "sm4-cbc"]
KeyFormat = Literal["raw", "hex", "base64"]


class SignatureError(ValueError):
    """A request's signature is missing, wrong, stale or replayed."""


class EnvelopeError(ValueError):
    """A key, IV or ciphertext does not fit the chosen cipher."""


# --- HMAC signing -----------------------------------------------------------------------------------


def canonical_string(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    return "\n".join((method.upper(), path, timestamp, nonce, hashlib.sha256(body).hexdigest()))


def signature(secret: str, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    message = canonical_string(method, path, timestamp, nonce, body).encode("utf-8")
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign_headers(
    secret: str,
    method: str,
    path: str,
    body: bytes,
    *,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The three X-Vigil-* headers for one request."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or secrets.token_hex(16)
    return {
        TIMESTAMP_HEADER: ts,
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: signature(secret, method, path, ts, nonce, body),
    }


def bearer_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class NonceCache:
    """Nonces seen inside the replay window; older ones are forgotten (their timestamps fail anyway)."""

    def __init__(self, window_s: float = DEFAULT_WINDOW_S) -> None:
        self.window_s = window_s
        self._seen: dict[str, float] = {}

    def add(self, nonce: str, now: float) -> bool:
        """Remember ``nonce``; False when it was already seen within the window."""
        horizon = now - 2 * self.window_s
        if len(self._seen) > 1024:
            self._seen = {n: t for n, t in self._seen.items() if t >= horizon}
        seen_at = self._seen.get(nonce)
        if seen_at is not None and seen_at >= horizon:
            return False
        self._seen[nonce] = now
        return True


def verify(
    secret: str,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    window_s: float = DEFAULT_WINDOW_S,
    nonces: NonceCache | None = None,
    now: float | None = None,
) -> None:
    """Check an HMAC-signed request; raises ``SignatureError`` saying why it is refused.

    ``headers`` may be any mapping; names are matched case-insensitively.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    ts = lowered.get(TIMESTAMP_HEADER.lower())
    nonce = lowered.get(NONCE_HEADER.lower())
    given = lowered.get(SIGNATURE_HEADER.lower())
    if not ts or not nonce or not given:
        raise SignatureError("missing signature headers")
    try:
        signed_at = int(ts)
    except ValueError as exc:
        raise SignatureError("timestamp is not Unix seconds") from exc
    current = time.time() if now is None else now
    if abs(current - signed_at) > window_s:
        raise SignatureError("timestamp outside the replay window")
    expected = signature(secret, method, path, ts, nonce, body)
    if not hmac.compare_digest(expected, given.strip().lower()):
        raise SignatureError("signature mismatch")
    if nonces is not None and not nonces.add(nonce, current):
        raise SignatureError("nonce replayed")


# --- envelopes --------------------------------------------------------------------------------------


def decode_key(text: str, key_format: KeyFormat = "raw") -> bytes:
    """Key (or IV) bytes from configuration text: as UTF-8, hex or base64."""
    try:
        if key_format == "hex":
            return bytes.fromhex(text)
        if key_format == "base64":
            return base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise EnvelopeError(f"key is not valid {key_format}") from exc
    return text.encode("utf-8")


def _cipher(name: CipherName, key: bytes, iv: bytes | None) -> Cipher[modes.ECB] | Cipher[modes.CBC]:
    family, mode = name.split("-")
    algorithm: algorithms.AES | algorithms.SM4
    if family == "aes":
        if len(key) not in (16, 24, 32):
            raise EnvelopeError(f"AES needs a 16, 24 or 32 byte key, got {len(key)}")
        algorithm = algorithms.AES(key)
    elif family == "sm4":
        if len(key) != 16:
            raise EnvelopeError(f"SM4 needs a 16 byte key, got {len(key)}")
        algorithm = algorithms.SM4(key)
    else:
        raise EnvelopeError(f"unknown cipher {name!r}")
    if mode == "ecb":
        return Cipher(algorithm, modes.ECB())  # noqa: S305 - upstream specs mandate ECB
    if iv is None or len(iv) != 16:
        raise EnvelopeError("CBC needs a 16 byte IV")
    return Cipher(algorithm, modes.CBC(iv))


def encrypt(name: CipherName, key: bytes, plaintext: bytes, iv: bytes | None = None) -> str:
    """base64(ciphertext) with PKCS#7 padding; CBC without an IV prepends a random one."""
    if name == "none":
        return base64.b64encode(plaintext).decode("ascii")
    prefix = b""
    if name.endswith("-cbc") and iv is None:
        iv = prefix = secrets.token_bytes(16)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = _cipher(name, key, iv).encryptor()
    return base64.b64encode(prefix + encryptor.update(padded) + encryptor.finalize()).decode("ascii")


def decrypt(name: CipherName, key: bytes, text: str, iv: bytes | None = None) -> bytes:
    """The inverse of ``encrypt``; raises ``EnvelopeError`` for a wrong key or corrupt text."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise EnvelopeError("ciphertext is not base64") from exc
    if name == "none":
        return raw
    if name.endswith("-cbc") and iv is None:
        iv, raw = raw[:16], raw[16:]
    if not raw or len(raw) % 16:
        raise EnvelopeError("ciphertext length is not a multiple of the block size")
    decryptor = _cipher(name, key, iv).decryptor()
    padded = decryptor.update(raw) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError as exc:
        raise EnvelopeError("bad padding: wrong key or IV") from exc
