"""What a camera's stream address may be, checked the same way in the YAML, the API and the console
(gateway/web/src/components/cameras/streamUrl.ts mirrors these rules).

- ``rtsp://`` / ``rtsps://`` with a host (IP address or host name) and an optional port 1-65535;
- ``gb28181://DEVICE/CHANNEL``: a channel of a registered GB/T 28181 device;
- ``file://PATH``, or a plain path of a video file (offline sources): absolute, ``./``-relative, or
  ending in a video file extension.

Anything else (``http://``, ``rtps://``, ``192.168.1.10/stream`` without a scheme) is refused with a
problem key of gateway/i18n/cameras.py (``url.*``) and its parameters, so each caller words it in the
user's language.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from urllib.parse import urlsplit

SCHEMES = ("rtsp", "rtsps", "gb28181", "file")
MAX_LENGTH = 1024
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".ts", ".flv", ".m4v", ".h264", ".h265", ".264", ".265")
_HOST_NAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}))*$"
)
_LOOKS_LIKE_HOST = re.compile(r"^(\d{1,3}(\.\d{1,3}){3}|[A-Za-z0-9.-]+:\d+)(/|$)")

Problem = tuple[str, dict[str, object]]  # (key in gateway/i18n/cameras.py, its parameters)


def _host_problem(host: str) -> Problem | None:
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    if re.fullmatch(r"[\d.]+", host) or not _HOST_NAME.match(host):
        return ("url.bad_host", {"host": host})
    return None


# user info up to the LAST '@' a host follows (a password may hold '@', '/', ':' typed unencoded)
_USERINFO = re.compile(
    r"^(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<info>[^\s]*)@"
    r"(?=(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::\d*)?(?:[/?#]|$))",
    re.IGNORECASE,
)
_RESERVED = {"@": "%40", "/": "%2F", "?": "%3F", "#": "%23", " ": "%20"}


def encode_userinfo(url: str) -> str:
    """Percent-encode what a user name or password holds that a URL reserves, so the stream opens
    at the right host and the password is never taken for a host or a path:
    rtsp://admin:p@ss/1@10.0.0.5/live -> rtsp://admin:p%40ss%2F1@10.0.0.5/live. Idempotent."""
    m = _USERINFO.match(url)
    if m is None:
        return url
    user, sep, password = m.group("info").partition(":")
    if "/" in user:  # rtsp://host/path@x: an '@' in the path, no user info
        return url
    table = str.maketrans(_RESERVED)
    info = user.translate(table) + sep + password.translate(table | str.maketrans({":": "%3A"}))
    return m.group("scheme") + info + url[m.end() - 1 :]


def stream_url_problem(url: str) -> Problem | None:
    """None when ``url`` is a usable stream address, else what is wrong with it."""
    if not url or not url.strip():
        return ("url.empty", {})
    if len(url) > MAX_LENGTH:
        return ("url.too_long", {"limit": MAX_LENGTH})
    if any(c.isspace() or ord(c) < 32 for c in url):
        return ("url.spaces", {})
    if "://" not in url:
        if _LOOKS_LIKE_HOST.match(url):
            return ("url.no_scheme", {"url": url})
        if url.startswith(("/", "./", "../")) or url.lower().endswith(VIDEO_SUFFIXES):
            return None
        return ("url.not_a_path", {"url": url})
    scheme = url.split("://", 1)[0].lower()
    if scheme not in SCHEMES:
        anagram = [s for s in SCHEMES if sorted(s) == sorted(scheme)]  # rtps:// -> rtsp://
        close = anagram or difflib.get_close_matches(scheme, SCHEMES, n=1, cutoff=0.5)
        return ("url.bad_scheme", {"scheme": scheme, "suggest": close[0] if close else ""})
    if scheme == "file":
        return None if url[len("file://") :] else ("url.no_file", {})
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        return ("url.no_host", {})
    if scheme == "gb28181":
        return None if parts.path.strip("/") else ("url.gb_form", {})
    try:
        port = parts.port
    except ValueError:
        return ("url.bad_port", {})
    if port == 0:
        return ("url.bad_port", {})
    return _host_problem(host)


def url_message(problem: Problem, lang: str = "en") -> str:
    """A problem of ``stream_url_problem`` in words."""
    from gateway.i18n import t

    key, params = problem
    if key == "url.bad_scheme":
        suggest = params.get("suggest")
        params = {**params, "hint": t("url.did_you_mean", lang, scheme=suggest) if suggest else ""}
    return t(key, lang, **params)
