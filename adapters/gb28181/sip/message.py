"""Lenient SIP message codec.

Accepts what GB/T 28181 devices send: all-digit hosts (``sip:34020000001320000001@3402000000``),
compact header names, folded header lines, bare LF line ends, bodies as raw bytes. Anything that cannot be
understood raises :class:`SipParseError` with a reason; no other exception escapes :func:`parse_message`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

MAX_MESSAGE_BYTES = 65_535
MAX_HEADER_BYTES = 16_384
MAX_HEADERS = 128
MAX_BODY_BYTES = MAX_MESSAGE_BYTES


class SipParseError(ValueError):
    """Malformed SIP input; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


COMPACT = {
    "i": "Call-ID",
    "m": "Contact",
    "e": "Content-Encoding",
    "l": "Content-Length",
    "c": "Content-Type",
    "f": "From",
    "s": "Subject",
    "k": "Supported",
    "t": "To",
    "v": "Via",
    "o": "Event",
    "u": "Allow-Events",
    "r": "Refer-To",
}
_CANON = {
    n.lower(): n
    for n in (
        "Call-ID",
        "CSeq",
        "WWW-Authenticate",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Authorization",
        "Content-Length",
        "Content-Type",
        "Max-Forwards",
        "User-Agent",
        "X-GB-Ver",
        "Subscription-State",
        "MIME-Version",
        "Record-Route",
    )
}

METHOD_RE = re.compile(r"^[A-Za-z][A-Za-z0-9._!%*+`'~-]*$")


def canonical_name(name: str) -> str:
    """Header name in its usual spelling; compact forms expanded."""
    name = name.strip()
    low = name.lower()
    if low in COMPACT:
        return COMPACT[low]
    if low in _CANON:
        return _CANON[low]
    return "-".join(part[:1].upper() + part[1:].lower() for part in low.split("-"))


class Headers:
    """Ordered, case-insensitive multi-map of header lines."""

    def __init__(self, items: list[tuple[str, str]] | None = None) -> None:
        self._items: list[tuple[str, str]] = []
        for name, value in items or []:
            self.add(name, value)

    def add(self, name: str, value: str) -> None:
        self._items.append((canonical_name(name), str(value)))

    def get(self, name: str, default: str | None = None) -> str | None:
        key = canonical_name(name).lower()
        for n, v in self._items:
            if n.lower() == key:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        key = canonical_name(name).lower()
        return [v for n, v in self._items if n.lower() == key]

    def set(self, name: str, value: str) -> None:
        self.remove(name)
        self.add(name, value)

    def remove(self, name: str) -> None:
        key = canonical_name(name).lower()
        self._items = [(n, v) for n, v in self._items if n.lower() != key]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def copy(self) -> Headers:
        return Headers(list(self._items))


# --------------------------------------------------------------------------------------------- URIs

_URI_RE = re.compile(
    r"^(?P<scheme>sips?|tel):(?:(?P<userinfo>[^@;?]*)@)?(?P<hostport>[^;?]+)(?P<rest>.*)$", re.I
)


@dataclass
class SipUri:
    user: str | None
    host: str
    port: int | None = None
    scheme: str = "sip"
    params: dict[str, str | None] = field(default_factory=dict)
    headers: str = ""

    def __str__(self) -> str:
        out = f"{self.scheme}:"
        if self.user is not None:
            out += f"{self.user}@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        out += host
        if self.port is not None:
            out += f":{self.port}"
        for k, v in self.params.items():
            out += f";{k}" if v is None else f";{k}={v}"
        if self.headers:
            out += "?" + self.headers
        return out


def _parse_params(text: str) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        if "=" in part:
            k, v = part.split("=", 1)
            out[k.strip().lower()] = v.strip()
        else:
            out[part.lower()] = None
    return out


def _split_hostport(hostport: str) -> tuple[str, int | None]:
    hostport = hostport.strip()
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise SipParseError("unterminated IPv6 host")
        host = hostport[1:end]
        tail = hostport[end + 1 :]
        if not tail:
            return host, None
        if not tail.startswith(":"):
            raise SipParseError("junk after IPv6 host")
        port_s = tail[1:]
    elif hostport.count(":") == 1:
        host, port_s = hostport.split(":")
    else:
        host, port_s = hostport, ""
        if ":" in hostport:
            raise SipParseError("ambiguous host:port")
        return host, None
    if not port_s.isdigit() or len(port_s) > 5 or not 0 < int(port_s) < 65536:
        raise SipParseError(f"bad port {port_s[:16]!r}")
    if not host:
        raise SipParseError("empty host")
    return host, int(port_s)


_HOST_RE = re.compile(r"^[A-Za-z0-9._:-]+$")


def parse_uri(text: str) -> SipUri:
    """Parse a SIP URI leniently (all-digit hosts are fine)."""
    m = _URI_RE.match(text.strip())
    if not m:
        raise SipParseError(f"not a SIP URI: {text[:64]!r}")
    host, port = _split_hostport(m.group("hostport"))
    if not _HOST_RE.match(host):
        raise SipParseError(f"bad host {host[:64]!r}")
    rest = m.group("rest")
    headers = ""
    if "?" in rest:
        rest, headers = rest.split("?", 1)
    userinfo = m.group("userinfo")
    user = userinfo.split(":", 1)[0] if userinfo is not None else None
    return SipUri(user, host, port, m.group("scheme").lower(), _parse_params(rest), headers)


@dataclass
class NameAddr:
    """``"Display" <sip:user@host>;tag=x`` as used in From/To/Contact."""

    uri: SipUri
    display: str = ""
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def __str__(self) -> str:
        out = f'"{self.display}" ' if self.display else ""
        out += f"<{self.uri}>"
        for k, v in self.params.items():
            out += f";{k}" if v is None else f";{k}={v}"
        return out


def parse_name_addr(text: str) -> NameAddr:
    text = text.strip()
    if "<" in text:
        lt = text.index("<")
        gt = text.find(">", lt)
        if gt < 0:
            raise SipParseError("unterminated <uri>")
        display = text[:lt].strip().strip('"')
        uri = parse_uri(text[lt + 1 : gt])
        return NameAddr(uri, display, _parse_params(text[gt + 1 :]))
    # bare URI: parameters after ';' belong to the header
    base, _, params = text.partition(";")
    return NameAddr(parse_uri(base), "", _parse_params(params))


@dataclass
class Via:
    transport: str
    host: str
    port: int | None
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    def __str__(self) -> str:
        out = f"SIP/2.0/{self.transport} {self.host}"
        if self.port is not None:
            out += f":{self.port}"
        for k, v in self.params.items():
            out += f";{k}" if v is None else f";{k}={v}"
        return out


_VIA_RE = re.compile(
    r"^SIP\s*/\s*2\.0\s*/\s*(?P<transport>[A-Za-z]+)\s+(?P<sentby>[^;]+)(?P<params>.*)$", re.I
)


def parse_via(text: str) -> Via:
    m = _VIA_RE.match(text.strip())
    if not m:
        raise SipParseError(f"bad Via: {text[:64]!r}")
    host, port = _split_hostport(m.group("sentby"))
    return Via(m.group("transport").upper(), host, port, _parse_params(m.group("params")))


def split_header_list(value: str) -> list[str]:
    """Split a comma-separated header value, respecting quotes and angle brackets."""
    out: list[str] = []
    cur: list[str] = []
    quoted = False
    angle = 0
    for ch in value:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "<":
            angle += 1
        elif not quoted and ch == ">":
            angle = max(0, angle - 1)
        if ch == "," and not quoted and angle == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if "".join(cur).strip():
        out.append("".join(cur).strip())
    return out


# ------------------------------------------------------------------------------------------ messages


@dataclass
class SipMessage:
    """A request (``method``/``uri`` set) or a response (``status`` set)."""

    method: str | None = None
    uri: str | None = None
    status: int | None = None
    reason: str = ""
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    @property
    def is_request(self) -> bool:
        return self.method is not None

    # convenience accessors; they raise SipParseError when the header is missing or malformed
    @property
    def call_id(self) -> str:
        v = self.headers.get("Call-ID")
        if not v:
            raise SipParseError("missing Call-ID")
        return v.strip()

    @property
    def cseq(self) -> tuple[int, str]:
        v = self.headers.get("CSeq")
        if not v:
            raise SipParseError("missing CSeq")
        parts = v.split()
        if len(parts) != 2 or not parts[0].isdigit() or len(parts[0]) > 10:
            raise SipParseError(f"bad CSeq {v[:32]!r}")
        return int(parts[0]), parts[1].upper()

    @property
    def from_(self) -> NameAddr:
        v = self.headers.get("From")
        if not v:
            raise SipParseError("missing From")
        return parse_name_addr(v)

    @property
    def to(self) -> NameAddr:
        v = self.headers.get("To")
        if not v:
            raise SipParseError("missing To")
        return parse_name_addr(v)

    @property
    def vias(self) -> list[Via]:
        out: list[Via] = []
        for line in self.headers.get_all("Via"):
            out.extend(parse_via(v) for v in split_header_list(line))
        return out

    @property
    def top_via(self) -> Via:
        vias = self.vias
        if not vias:
            raise SipParseError("missing Via")
        return vias[0]

    @property
    def content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()

    def to_bytes(self) -> bytes:
        if self.is_request:
            start = f"{self.method} {self.uri} SIP/2.0"
        else:
            start = f"SIP/2.0 {self.status} {self.reason}"
        lines = [start]
        for name, value in self.headers:
            if name == "Content-Length":
                continue
            lines.append(f"{name}: {value}")
        lines.append(f"Content-Length: {len(self.body)}")
        head = "\r\n".join(lines) + "\r\n\r\n"
        return head.encode("utf-8") + self.body

    def summary(self) -> str:
        if self.is_request:
            return f"{self.method} {self.uri}"
        return f"{self.status} {self.reason}"


def _decode_head(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("gb18030", errors="replace")


def _split_head(data: bytes) -> tuple[bytes, bytes]:
    idx = data.find(b"\r\n\r\n")
    lf = data.find(b"\n\n")
    if idx >= 0 and (lf < 0 or idx <= lf):
        return data[:idx], data[idx + 4 :]
    if lf >= 0:
        return data[:lf], data[lf + 2 :]
    return data, b""


def parse_message(data: bytes, *, stream: bool = False) -> SipMessage:
    """Parse one SIP message.

    ``stream`` is set for TCP frames (already cut by Content-Length): a missing Content-Length is then an
    error per RFC 3261, while on UDP the body is the rest of the datagram.
    """
    if not isinstance(data, bytes | bytearray):
        raise SipParseError("input is not bytes")
    if len(data) > MAX_MESSAGE_BYTES:
        raise SipParseError(f"message too large ({len(data)} bytes)")
    data = bytes(data).lstrip(b"\r\n")
    if not data:
        raise SipParseError("empty message")
    head_raw, rest = _split_head(data)
    if len(head_raw) > MAX_HEADER_BYTES:
        raise SipParseError("header section too large")
    if b"\x00" in head_raw:
        raise SipParseError("NUL byte in headers")
    text = _decode_head(head_raw).replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    start = lines[0].strip()
    msg = SipMessage()
    parts = start.split(" ", 2)
    if start.upper().startswith("SIP/"):
        if len(parts) < 2 or parts[0].upper() != "SIP/2.0":
            raise SipParseError(f"bad status line {start[:64]!r}")
        code = parts[1]
        if not (code.isdigit() and len(code) == 3 and 100 <= int(code) <= 699):
            raise SipParseError(f"bad status code {code[:16]!r}")
        msg.status = int(code)
        msg.reason = parts[2].strip() if len(parts) > 2 else ""
    else:
        if len(parts) != 3 or parts[2].strip().upper() != "SIP/2.0":
            raise SipParseError(f"bad request line {start[:64]!r}")
        if not METHOD_RE.match(parts[0]) or len(parts[0]) > 32:
            raise SipParseError(f"bad method {parts[0][:32]!r}")
        msg.method = parts[0].upper()
        msg.uri = parts[1]
        if parts[1].lower().startswith("sip"):
            parse_uri(parts[1])
    # unfold continuation lines
    header_lines: list[str] = []
    for line in lines[1:]:
        if not line.strip():
            continue
        if line[:1] in (" ", "\t") and header_lines:
            header_lines[-1] += " " + line.strip()
        else:
            header_lines.append(line)
    if len(header_lines) > MAX_HEADERS:
        raise SipParseError("too many headers")
    for line in header_lines:
        name, sep, value = line.partition(":")
        if not sep or not name.strip() or " " in name.strip():
            raise SipParseError(f"bad header line {line[:64]!r}")
        msg.headers.add(name, value.strip())
    for required in ("Call-ID", "CSeq", "From", "To", "Via"):
        if required not in msg.headers:
            raise SipParseError(f"missing {required}")
    cseq_no, cseq_method = msg.cseq
    if msg.is_request and cseq_method != msg.method:
        raise SipParseError("CSeq method does not match request line")
    msg.from_  # noqa: B018  (validate)
    msg.to  # noqa: B018
    msg.top_via  # noqa: B018
    cl = msg.headers.get("Content-Length")
    if cl is None:
        if stream and rest:
            raise SipParseError("missing Content-Length on a stream")
        body = rest
    else:
        cl = cl.strip()
        if not cl.isdigit() or len(cl) > 7:
            raise SipParseError(f"bad Content-Length {cl[:16]!r}")
        n = int(cl)
        if n > MAX_BODY_BYTES:
            raise SipParseError("body too large")
        if len(rest) < n:
            raise SipParseError(f"truncated body ({len(rest)} of {n} bytes)")
        body = rest[:n]
    msg.body = bytes(body)
    return msg


def bad_request_response(data: bytes, reason: str) -> SipMessage | None:
    """A 400 for a request :func:`parse_message` refused, when enough of it parses to answer: a request
    line with a method (not ACK, which is never answered) and a top Via that parses. The headers a
    response copies (Via, From, To, Call-ID, CSeq) are copied as they came, when present. None otherwise."""
    try:
        head, _ = _split_head(bytes(data[:MAX_MESSAGE_BYTES]).lstrip(b"\r\n"))
        lines = _decode_head(head[:MAX_HEADER_BYTES]).replace("\r\n", "\n").split("\n")
        parts = lines[0].split()
        if len(parts) < 2 or lines[0].upper().startswith("SIP/"):
            return None
        method = parts[0].upper()
        if not METHOD_RE.match(method) or len(method) > 32 or method == "ACK":
            return None
        copied = Headers()
        for line in lines[1:MAX_HEADERS]:
            name, sep, value = line.partition(":")
            if sep and name.strip() and " " not in name.strip():
                if canonical_name(name) in ("Via", "From", "To", "Call-ID", "CSeq"):
                    copied.add(name, value.strip())
        vias = copied.get_all("Via")
        if not vias:
            return None
        parse_via(split_header_list(vias[0])[0])
    except (SipParseError, IndexError, ValueError):
        return None
    cseq = (copied.get("CSeq") or "").split()
    number = cseq[0] if cseq and cseq[0].isdigit() and len(cseq[0]) <= 10 else "0"
    copied.set("CSeq", f"{number} {method}")  # well-formed, so the client's parser takes the answer
    to = copied.get("To")
    if to is not None and ";tag=" not in to.replace(" ", "").lower():
        copied.set("To", f"{to};tag=bad{abs(hash(data)) % 10**8:08d}")
    reason = "".join(ch if ch.isprintable() else "?" for ch in reason)[:64]
    return SipMessage(status=400, reason=f"Bad Request ({reason})", headers=copied)


def frame_length(buffer: bytes | bytearray) -> int | None:
    """Length of the first complete SIP message in a TCP buffer, or None if more bytes are needed.

    Leading CRLF keep-alives must be stripped by the caller. Raises SipParseError when the buffer can
    never hold a valid frame (header too large, bad Content-Length).
    """
    idx = buffer.find(b"\r\n\r\n")
    sep = 4
    if idx < 0:
        idx = buffer.find(b"\n\n")
        sep = 2
    if idx < 0:
        if len(buffer) > MAX_HEADER_BYTES:
            raise SipParseError("header section too large")
        return None
    if idx > MAX_HEADER_BYTES:
        raise SipParseError("header section too large")
    head = bytes(buffer[:idx]).decode("latin-1")
    n = 0
    for line in head.replace("\r\n", "\n").split("\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() in ("content-length", "l"):
            value = value.strip()
            if not value.isdigit() or len(value) > 7:
                raise SipParseError(f"bad Content-Length {value[:16]!r}")
            n = int(value)
            if n > MAX_BODY_BYTES:
                raise SipParseError("body too large")
    total = idx + sep + n
    return total if len(buffer) >= total else None


# ------------------------------------------------------------------------------------------ builders


def make_response(
    request: SipMessage,
    status: int,
    reason: str,
    *,
    to_tag: str | None = None,
    body: bytes = b"",
    content_type: str | None = None,
    extra: list[tuple[str, str]] | None = None,
) -> SipMessage:
    """A response copying Via/From/To/Call-ID/CSeq; adds a To tag when given and absent."""
    h = Headers()
    for v in request.headers.get_all("Via"):
        h.add("Via", v)
    h.add("From", request.headers.get("From") or "")
    to = request.headers.get("To") or ""
    if to_tag and ";tag=" not in to.replace(" ", "").lower():
        to = f"{to};tag={to_tag}"
    h.add("To", to)
    h.add("Call-ID", request.headers.get("Call-ID") or "")
    h.add("CSeq", request.headers.get("CSeq") or "")
    for name, value in extra or []:
        h.add(name, value)
    if content_type:
        h.add("Content-Type", content_type)
    return SipMessage(status=status, reason=reason, headers=h, body=body)


def with_received(response: SipMessage, host: str, port: int) -> SipMessage:
    """The response with its top Via stamped as the request arrived (RFC 3261 §18.2.1, RFC 3581):
    ``received=`` the packet's source host when the sent-by differs or the client asked for ``rport``,
    and ``rport=`` its source port when asked. A Via that does not parse is left as it is."""
    lines = response.headers.get_all("Via")
    if not lines:
        return response
    parts = split_header_list(lines[0])
    try:
        via = parse_via(parts[0])
    except SipParseError:
        return response
    if "rport" in via.params:
        via.params["rport"] = str(port)
        via.params["received"] = host
    elif via.host != host:
        via.params["received"] = host
    else:
        return response
    parts[0] = str(via)
    headers = Headers()
    first = True
    for name, value in response.headers:
        if name == "Via" and first:
            value, first = ", ".join(parts), False
        headers.add(name, value)
    return SipMessage(response.method, response.uri, response.status, response.reason, headers, response.body)


REASONS = {
    100: "Trying",
    180: "Ringing",
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    415: "Unsupported Media Type",
    481: "Call/Transaction Does Not Exist",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    489: "Bad Event",
    500: "Server Internal Error",
    503: "Service Unavailable",
}
