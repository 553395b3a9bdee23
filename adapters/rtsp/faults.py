"""Why a stream cannot be opened or broke, as a short code a person's message is looked up by.

FFmpeg's errors reach us as exceptions (PyAV's ``HTTPUnauthorizedError``, ``ConnectionRefusedError``, ...)
or, once a source has failed, as the text of its ``StreamHealth.last_error``; both give the same code:

unreachable, refused, unauthorized, forbidden, not_found, unknown_host, bad_scheme, not_video,
file_missing, stalled, ended, tls, other.
"""

from __future__ import annotations

import errno
import re

import av.error

FAULTS = (
    "unreachable",
    "refused",
    "unauthorized",
    "forbidden",
    "not_found",
    "unknown_host",
    "bad_scheme",
    "not_video",
    "file_missing",
    "stalled",
    "ended",
    "tls",
    "other",
)

# Substrings of FFmpeg's / the sources' messages, most specific first.
_PATTERNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("unauthorized", ("401 unauthorized", "authorization failed")),
    ("forbidden", ("403 forbidden",)),
    ("not_found", ("404 not found", "server returned 4", "method not allowed")),
    ("file_missing", ("video file not found", "no such file or directory")),
    ("refused", ("connection refused",)),
    (
        "unknown_host",
        ("name or service not known", "temporary failure in name resolution", "no address associated"),
    ),
    (
        "unreachable",
        (
            "timed out",
            "timeout",
            "no route to host",
            "network is unreachable",
            "host is unreachable",
            "immediate exit requested",
            "connection reset",
        ),
    ),
    ("bad_scheme", ("protocol not found",)),
    ("tls", ("tls", "ssl", "certificate")),
    ("not_video", ("no video stream", "is not a video", "invalid data found", "not a video")),
    ("stalled", ("stalled",)),
    ("ended", ("ended", "no frames from", "end of file")),
)

_ERRNOS = {
    errno.ECONNREFUSED: "refused",
    errno.ETIMEDOUT: "unreachable",
    errno.EHOSTUNREACH: "unreachable",
    errno.ENETUNREACH: "unreachable",
    errno.ENOENT: "file_missing",
}


_ADDRESS = re.compile(r"\S+://\S*")  # the stream's own address must not decide (a host named "timeout")


def fault_of_text(message: str | None) -> str:
    """The fault code of an error message (a source's ``last_error``); "other" when none fits."""
    text = _ADDRESS.sub(" ", (message or "").lower())
    for code, needles in _PATTERNS:
        if any(n in text for n in needles):
            return code
    return "other"


def fault_of(exc: BaseException) -> str:
    """The fault code of an exception from opening or reading a stream."""
    if isinstance(exc, av.error.HTTPUnauthorizedError):
        return "unauthorized"
    if isinstance(exc, av.error.HTTPForbiddenError):
        return "forbidden"
    if isinstance(exc, av.error.HTTPNotFoundError):
        return "not_found"
    if isinstance(exc, av.error.ProtocolNotFoundError):
        return "bad_scheme"
    if isinstance(exc, av.error.InvalidDataError):
        return "not_video"
    if isinstance(exc, av.error.ExitError | TimeoutError):
        return "unreachable"
    code = _ERRNOS.get(getattr(exc, "errno", None) or -1)
    return code or fault_of_text(str(exc))
