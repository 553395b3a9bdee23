"""Keep credentials out of logs, errors and API answers.

A password may hold characters a URL reserves and that people type unencoded: ``@``, ``/``, ``:``,
``#``, ``?``. Such a URL does not parse the standard way (its netloc ends at the password's first
``/``), so the user info is taken as everything between ``scheme://`` and the LAST ``@`` that a host
follows; whatever is there is replaced, wherever the URL appears.
"""

from __future__ import annotations

import re

_HOST_AFTER = r"(?=(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::\d*)?(?:[/?#\s'\"<>,;)\]]|$))"
# greedy user info (no white space or quotes), up to the last '@' that a host name or address follows
_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^\s'\"<>]*@" + _HOST_AFTER, re.IGNORECASE)


def redact_url(url: str) -> str:
    """rtsp://user:pass@host/path -> rtsp://***@host/path (also for a pass with '@' or '/' in it)."""
    return _USERINFO.sub(r"\g<scheme>***@", url, count=1)


def redact_text(text: str) -> str:
    """Redact every URL's user info inside free text (FFmpeg error messages quote the URL)."""
    return _USERINFO.sub(r"\g<scheme>***@", text)
