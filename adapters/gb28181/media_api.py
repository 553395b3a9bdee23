"""The seam between signalling and media. The media engineer implements these protocols (RTP/PS in
rtp.py/ps.py/media.py); the signalling side only calls them, so tests can plug in tiny real sockets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

MediaTransport = Literal["udp", "tcp-passive", "tcp-active"]


@dataclass(frozen=True)
class ReceiveRequest:
    """Asked by the upper platform before it sends an INVITE (live or playback)."""

    device_id: str
    channel_id: str
    transport: MediaTransport  # our role: tcp-passive = we listen, tcp-active = we connect
    ssrc: int  # SSRC we offer in y=
    local_host: str  # IP written in our SDP c= line
    playback: bool = False


class MediaReceiver(Protocol):
    @property
    def local_port(self) -> int:
        """Port written in our SDP m= line (UDP socket or TCP listener; for tcp-active any value > 0)."""
        ...

    async def start(self, remote_host: str, remote_port: int, ssrc: int | None) -> None:
        """Called after the device's 200 OK: its media address and the SSRC it answered (None if no y=).
        tcp-active connects here; udp/tcp-passive may use it to check the source."""
        ...

    async def close(self) -> None: ...


class MediaReceiverFactory(Protocol):
    async def open_receiver(self, request: ReceiveRequest) -> MediaReceiver: ...


@dataclass(frozen=True)
class SendRequest:
    """Asked by the cascade role when a superior INVITEs one of our shared channels."""

    platform: str  # name of the superior link
    channel_id: str  # the id as this superior knows it
    transport: MediaTransport  # OUR role: udp, tcp-active (we connect), tcp-passive (we listen)
    ssrc: int  # the superior's y= SSRC; RTP must carry it
    remote_host: str
    remote_port: int
    local_host: str
    session: str = "Play"  # Play / Playback / Download
    start: int = 0
    stop: int = 0


class MediaSender(Protocol):
    @property
    def local_port(self) -> int: ...

    async def start(self) -> None:
        """Called when the superior's ACK arrives: begin sending PS/RTP."""
        ...

    async def close(self) -> None: ...


class StreamUnavailable(LookupError):
    """A shared channel with no stream to relay now (its camera is not running, or its device is
    offline): the INVITE is answered 480 Temporarily Unavailable with this text as the reason."""


class MediaRelayFactory(Protocol):
    async def open_sender(self, request: SendRequest) -> MediaSender:
        """Raise StreamUnavailable for a shared channel without a stream now (answered 480), LookupError
        for an unknown channel (404); other errors answer 488/500."""
        ...
