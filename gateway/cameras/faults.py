"""A camera's stream fault in words: the code of its last error (adapters/rtsp/faults.py) and the
message a person reads in the list and detail pages, in their language, instead of FFmpeg's text."""

from __future__ import annotations

from typing import Any

from adapters.rtsp.faults import fault_of_text
from gateway.i18n import t

FAULTY_STATES = frozenset({"offline", "error"})


def fault_message(code: str, lang: str, detail: str | None = None) -> str:
    return t(f"fault.{code}", lang, detail=detail or "")


def camera_fault(status: str | None, last_error: str | None, lang: str) -> dict[str, Any] | None:
    """{"code", "message"} for a camera whose stream is down (with the technical detail kept
    separately in ``last_error``); None while it is fine or stopped on purpose."""
    if status not in FAULTY_STATES or not last_error:
        return None
    code = fault_of_text(last_error)
    return {"code": code, "message": fault_message(code, lang, last_error)}
