"""GB/T 28181 SDP as plain lines: ``y=`` SSRC, ``f=`` media format, ``s=Play|Playback|Download``, ``u=``,
``t=`` range, ``TCP/RTP/AVP`` with ``a=setup`` and ``a=connection``. No strict SDP library is involved."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_SDP_BYTES = 16 * 1024


class SdpError(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Sdp:
    origin_user: str = "0"
    session: str = "Play"  # Play, Playback, Download, Talk
    ip: str = "0.0.0.0"  # noqa: S104  (an SDP value, not a bind address)
    port: int = 0
    proto: str = "RTP/AVP"  # or TCP/RTP/AVP
    media: str = "video"
    payloads: list[int] = field(default_factory=lambda: [96])
    rtpmap: dict[int, str] = field(default_factory=lambda: {96: "PS/90000"})
    direction: str = "recvonly"
    setup: str | None = None  # active / passive (TCP only)
    connection: str | None = None  # new / existing
    ssrc: str | None = None  # 10 decimal digits
    fmt: str | None = None  # f= line (may be empty)
    uri: str | None = None  # u= line (playback)
    start: int = 0
    stop: int = 0
    download_speed: int | None = None
    attributes: list[str] = field(default_factory=list)  # other a= lines, kept verbatim

    @property
    def is_tcp(self) -> bool:
        return self.proto.upper().startswith("TCP")

    @property
    def transport(self) -> str:
        """udp, tcp-passive or tcp-active, from the point of view of whoever wrote this SDP."""
        if not self.is_tcp:
            return "udp"
        return "tcp-active" if (self.setup or "").lower() == "active" else "tcp-passive"

    @property
    def ssrc_int(self) -> int | None:
        return int(self.ssrc) if self.ssrc and self.ssrc.isdigit() else None


_SSRC_RE = re.compile(r"^\d{1,10}$")


def parse_sdp(body: bytes) -> Sdp:
    """Parse GB SDP; raises SdpError with a reason (never another exception)."""
    if not isinstance(body, bytes | bytearray):
        raise SdpError("body is not bytes")
    if len(body) > MAX_SDP_BYTES:
        raise SdpError("SDP too large")
    text = bytes(body).decode("utf-8", errors="replace")
    sdp = Sdp(payloads=[], rtpmap={}, direction="")
    seen_v = seen_m = False
    session_ip: str | None = None
    for raw in text.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        if not line:
            continue
        if len(line) < 2 or line[1] != "=":
            raise SdpError(f"bad SDP line {line[:40]!r}")
        key, value = line[0].lower(), line[2:].strip()
        if key == "v":
            if value != "0":
                raise SdpError("unsupported SDP version")
            seen_v = True
        elif key == "o":
            sdp.origin_user = value.split(" ", 1)[0]
        elif key == "s":
            sdp.session = value
        elif key == "c":
            parts = value.split()
            if len(parts) != 3 or parts[0].upper() != "IN":
                raise SdpError(f"bad c= line {value[:40]!r}")
            ip = parts[2].split("/")[0]
            if seen_m:
                sdp.ip = ip
            else:
                session_ip = ip
        elif key == "t":
            parts = value.split()
            if len(parts) != 2 or not all(p.isdigit() and len(p) <= 20 for p in parts):
                raise SdpError(f"bad t= line {value[:40]!r}")
            sdp.start, sdp.stop = int(parts[0]), int(parts[1])
        elif key == "m":
            if seen_m:
                continue  # only the first media section is used (GB offers one)
            parts = value.split()
            if len(parts) < 3 or not parts[1].split("/")[0].isdigit():
                raise SdpError(f"bad m= line {value[:40]!r}")
            port = int(parts[1].split("/")[0])
            if port > 65535:
                raise SdpError("m= port out of range")
            sdp.media, sdp.port, sdp.proto = parts[0].lower(), port, parts[2].upper()
            sdp.payloads = [int(p) for p in parts[3:] if p.isdigit() and len(p) <= 3]
            seen_m = True
        elif key == "a":
            name, _, val = value.partition(":")
            low = name.lower()
            if low in ("recvonly", "sendonly", "sendrecv", "inactive"):
                sdp.direction = low
            elif low == "rtpmap":
                pt, _, enc = val.partition(" ")
                if pt.isdigit() and len(pt) <= 3:
                    sdp.rtpmap[int(pt)] = enc.strip()
            elif low == "setup":
                sdp.setup = val.strip().lower()
            elif low == "connection":
                sdp.connection = val.strip().lower()
            elif low == "downloadspeed":
                sdp.download_speed = int(val) if val.strip().isdigit() and len(val.strip()) < 6 else None
            else:
                sdp.attributes.append(value)
        elif key == "y":
            if not _SSRC_RE.match(value):
                raise SdpError(f"bad y= SSRC {value[:20]!r}")
            sdp.ssrc = value.zfill(10)
        elif key == "f":
            sdp.fmt = value
        elif key == "u":
            sdp.uri = value
    if not seen_v:
        raise SdpError("missing v= line")
    if not seen_m:
        raise SdpError("missing m= line")
    if sdp.ip == "0.0.0.0":  # noqa: S104
        if session_ip is None:
            raise SdpError("missing c= line")
        sdp.ip = session_ip
    if not sdp.direction:
        sdp.direction = "sendrecv"
    return sdp


DEFAULT_OFFER_MAP = {96: "PS/90000", 98: "H264/90000", 97: "MPEG4/90000", 99: "H265/90000"}


def build_sdp(sdp: Sdp, *, rtpmap_first: bool = True) -> bytes:
    """Serialise; ``rtpmap_first`` puts the rtpmap lines right after the direction (a Dahua quirk) and the
    result always ends with CRLF (a Hikvision quirk)."""
    lines = [
        "v=0",
        f"o={sdp.origin_user} 0 0 IN IP4 {sdp.ip}",
        f"s={sdp.session}",
    ]
    if sdp.uri is not None:
        lines.append(f"u={sdp.uri}")
    lines += [f"c=IN IP4 {sdp.ip}", f"t={sdp.start} {sdp.stop}"]
    pts = sdp.payloads or sorted(sdp.rtpmap)
    lines.append(f"m={sdp.media} {sdp.port} {sdp.proto} {' '.join(str(p) for p in pts)}")
    direction = [f"a={sdp.direction}"]
    maps = [f"a=rtpmap:{pt} {sdp.rtpmap[pt]}" for pt in pts if pt in sdp.rtpmap]
    lines += direction + maps if rtpmap_first else maps + direction
    if sdp.is_tcp and sdp.setup:
        lines.append(f"a=setup:{sdp.setup}")
        lines.append(f"a=connection:{sdp.connection or 'new'}")
    if sdp.download_speed is not None:
        lines.append(f"a=downloadspeed:{sdp.download_speed}")
    lines += [f"a={a}" for a in sdp.attributes]
    if sdp.ssrc is not None:
        lines.append(f"y={sdp.ssrc}")
    if sdp.fmt is not None:
        lines.append(f"f={sdp.fmt}")
    return ("\r\n".join(lines) + "\r\n").encode("ascii", errors="replace")


def complement_setup(setup: str | None) -> str:
    """Our a=setup for a TCP answer: the opposite of the offer's."""
    return "passive" if (setup or "").lower() == "active" else "active"


def make_ssrc(domain: str, seq: int, playback: bool = False) -> str:
    """GB SSRC: '0' live / '1' history, digits 4-8 of the domain, 4-digit sequence."""
    digits = (domain + "00000000")[3:8]
    return f"{1 if playback else 0}{digits}{seq % 10000:04d}"
