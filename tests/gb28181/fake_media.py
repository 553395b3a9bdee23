"""Minimal media side for signalling tests: real loopback UDP sockets, no RTP/PS processing."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

from adapters.gb28181.media_api import ReceiveRequest, SendRequest


@dataclass
class UdpReceiver:
    request: ReceiveRequest
    sock: socket.socket = field(default_factory=lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    remote: tuple[str, int] | None = None
    answered_ssrc: int | None = None
    closed: bool = False

    def __post_init__(self) -> None:
        self.sock.bind(("127.0.0.1", 0))

    @property
    def local_port(self) -> int:
        return int(self.sock.getsockname()[1])

    async def start(self, remote_host: str, remote_port: int, ssrc: int | None) -> None:
        self.remote = (remote_host, remote_port)
        self.answered_ssrc = ssrc

    async def close(self) -> None:
        self.closed = True
        self.sock.close()


class FakeReceiverFactory:
    def __init__(self) -> None:
        self.opened: list[UdpReceiver] = []

    async def open_receiver(self, request: ReceiveRequest) -> UdpReceiver:
        rx = UdpReceiver(request)
        self.opened.append(rx)
        return rx


@dataclass
class UdpSender:
    request: SendRequest
    sock: socket.socket = field(default_factory=lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    started: bool = False
    closed: bool = False

    def __post_init__(self) -> None:
        self.sock.bind(("127.0.0.1", 0))

    @property
    def local_port(self) -> int:
        return int(self.sock.getsockname()[1])

    async def start(self) -> None:
        self.started = True

    async def close(self) -> None:
        self.closed = True
        self.sock.close()


class FakeRelayFactory:
    def __init__(self, channels: set[str]) -> None:
        self.channels = channels
        self.opened: list[UdpSender] = []

    async def open_sender(self, request: SendRequest) -> UdpSender:
        if request.channel_id not in self.channels:
            raise LookupError(request.channel_id)
        tx = UdpSender(request)
        self.opened.append(tx)
        return tx
