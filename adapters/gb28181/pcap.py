"""Test-media tooling: real H.264 from a video file, PS made by FFmpeg's own muxer, RTP in a pcap.

SIPp replays RTP from a pcap (``<exec play_pcap_video="..."/>``) after an INVITE; these helpers build
that pcap (libpcap, Ethernet/IPv4/UDP) from PS bytes. The PS can come from our muxer or, to keep the
test peer independent of our code, from FFmpeg's ``vob`` muxer through PyAV (MPEG-2 packs, no PSM).
Nothing here is used on the gateway's live path.
"""

from __future__ import annotations

import io
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from adapters.gb28181.ps import PACK_START, START, PsRtpPacketizer

PCAP_MAGIC = 0xA1B2C3D4
LINKTYPE_ETHERNET = 1


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    data: bytes  # Annex-B access unit
    pts: int  # 90 kHz
    keyframe: bool


def encode_h264(
    source: Path,
    frames: int = 50,
    width: int = 352,
    height: int = 288,
    fps: int = 25,
    gop: int = 25,
    ps_out: io.BytesIO | None = None,
) -> list[EncodedFrame]:
    """Encode the first ``frames`` frames of ``source`` to Annex-B H.264 (libx264, no B-frames).

    With ``ps_out`` the same packets are also muxed by FFmpeg's ``vob`` (MPEG-2 program stream) muxer
    into it: PS bytes made independently of our muxer.
    """
    out: list[EncodedFrame] = []
    sink = av.open(ps_out, "w", format="vob") if ps_out is not None else None
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.framerate = Fraction(fps)
    encoder.time_base = Fraction(1, fps)
    encoder.options = {"preset": "ultrafast", "tune": "zerolatency", "bf": "0", "g": str(gop)}
    stream = None
    if sink is not None:
        stream = sink.add_stream("h264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = encoder.time_base

    def emit(packets: list[av.Packet]) -> None:
        for pkt in packets:
            pts = int(pkt.pts or 0) * 90000 // fps
            out.append(EncodedFrame(bytes(pkt), pts, bool(pkt.is_keyframe)))
            if sink is not None and stream is not None:
                pkt.stream = stream
                sink.mux(pkt)

    with av.open(str(source)) as src:
        for i, frame in enumerate(src.decode(video=0)):
            if i >= frames:
                break
            img = frame.reformat(width=width, height=height, format="yuv420p")
            img.pts = i
            img.time_base = encoder.time_base
            emit(encoder.encode(img))
    emit(encoder.encode(None))
    if sink is not None:
        sink.close()
    return out


def split_packs(ps: bytes) -> list[bytes]:
    """Cut a PS byte stream at its pack headers (each piece starts with one)."""
    marker = START + bytes((PACK_START,))
    starts = []
    i = ps.find(marker)
    while i >= 0:
        starts.append(i)
        i = ps.find(marker, i + 4)
    if not starts:
        return [ps] if ps else []
    pieces = [ps[a:b] for a, b in zip(starts, [*starts[1:], len(ps)], strict=True)]
    if starts[0]:
        pieces.insert(0, ps[: starts[0]])
    return pieces


def pack_scr(pack: bytes) -> int | None:
    """The 90 kHz system clock reference of an MPEG-2 pack header (None for anything else)."""
    if len(pack) < 10 or not pack.startswith(START + bytes((PACK_START,))) or pack[4] >> 6 != 1:
        return None
    b = pack
    return (
        ((b[4] >> 3) & 0x07) << 30
        | (b[4] & 0x03) << 28
        | b[5] << 20
        | ((b[6] >> 3) & 0x1F) << 15
        | (b[6] & 0x03) << 13
        | b[7] << 5
        | b[8] >> 3
    )


def ps_to_rtp(
    ps: bytes, ssrc: int, payload_type: int = 96, max_payload: int = 1400, first_sequence: int = 0
) -> list[bytes]:
    """RTP packets for a PS byte stream: one group per pack, timestamped with the pack's SCR."""
    packetizer = PsRtpPacketizer(ssrc, payload_type, max_payload, first_sequence)
    out: list[bytes] = []
    ts = 0
    for pack in split_packs(ps):
        scr = pack_scr(pack)
        ts = scr if scr is not None else ts
        out += packetizer.packetize(pack, ts)
    return out


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def udp_frame(payload: bytes, src: tuple[str, int], dst: tuple[str, int], ident: int = 0) -> bytes:
    """An Ethernet/IPv4/UDP frame carrying ``payload`` (checksums filled in)."""
    sip, dip = socket.inet_aton(src[0]), socket.inet_aton(dst[0])
    udp_len = 8 + len(payload)
    pseudo = sip + dip + struct.pack("!BBH", 0, socket.IPPROTO_UDP, udp_len)
    udp = struct.pack("!HHHH", src[1], dst[1], udp_len, 0) + payload
    csum = _checksum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", csum) + udp[8:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, ident & 0xFFFF, 0x4000, 64, 17, 0, sip, dip)
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    eth = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00"
    return eth + ip + udp


def write_pcap(
    path: Path,
    payloads: Iterable[bytes],
    src: tuple[str, int] = ("127.0.0.1", 40000),
    dst: tuple[str, int] = ("127.0.0.1", 16000),
    interval_s: float = 0.001,
    start_s: float = 1_700_000_000.0,
) -> int:
    """Write UDP ``payloads`` as a libpcap file, ``interval_s`` apart; returns the packet count."""
    count = 0
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", PCAP_MAGIC, 2, 4, 0, 0, 65535, LINKTYPE_ETHERNET))
        for i, payload in enumerate(payloads):
            frame = udp_frame(payload, src, dst, i)
            t = start_s + i * interval_s
            sec = int(t)
            usec = int(round((t - sec) * 1_000_000))
            f.write(struct.pack("<IIII", sec, usec, len(frame), len(frame)))
            f.write(frame)
            count += 1
    return count
