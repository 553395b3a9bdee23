"""UDP and TCP SIP transports on asyncio.

Incoming messages are delivered with the packet's source :class:`Address`; replies go back to that
source (rport behaviour), and for TCP over the same connection. TCP streams are framed by
Content-Length with a bounded buffer: a peer that overflows it or sends garbage is disconnected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from adapters.gb28181.sip.message import (
    MAX_MESSAGE_BYTES,
    SipMessage,
    SipParseError,
    frame_length,
    parse_message,
)

log = logging.getLogger(__name__)

MAX_TCP_BUFFER = MAX_MESSAGE_BYTES + 4096


@dataclass(frozen=True)
class Address:
    transport: str  # "UDP" or "TCP"
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.transport.lower()}:{self.host}:{self.port}"


MessageHandler = Callable[[SipMessage, Address], None]
MalformedHandler = Callable[[bytes, Address, str], None]


class LogThrottle:
    """At most one log line per key (a source host) per ``period`` seconds; the next one that is let
    through says how many were held back. Bounded: at most ``max_keys`` keys are remembered."""

    def __init__(self, period: float = 60.0, max_keys: int = 4096) -> None:
        self.period, self.max_keys = period, max_keys
        self._keys: dict[str, tuple[float, int]] = {}  # key -> (last logged, held back since)

    def allow(self, key: str, now: float | None = None) -> int | None:
        """None: hold this one back (counted). Otherwise log it, with the returned count held back."""
        now = time.monotonic() if now is None else now
        last, held = self._keys.get(key, (-float("inf"), 0))
        if now - last < self.period:
            self._keys[key] = (last, held + 1)
            return None
        if key not in self._keys and len(self._keys) >= self.max_keys:
            self._keys = {k: v for k, v in self._keys.items() if now - v[0] < self.period}
            if len(self._keys) >= self.max_keys:
                return None  # a flood from many sources: counted nowhere, logged by the next period
        self._keys[key] = (now, 0)
        return held

    def warning(self, key: str, message: str, *args: object) -> None:
        held = self.allow(key)
        if held is not None:
            suffix = f" ({held} more from {key} held back in the last {self.period:.0f} s)" if held else ""
            log.warning(message + suffix, *args)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: SipTransport) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if not data.strip(b"\r\n\x00 "):
            return  # keep-alive ping
        self.owner._deliver(data, Address("UDP", str(addr[0]), int(addr[1])), stream=False)

    def error_received(self, exc: Exception) -> None:
        log.debug("udp error: %s", exc)


class _TcpConnection(asyncio.Protocol):
    def __init__(self, owner: SipTransport, peer: Address | None = None) -> None:
        self.owner = owner
        self.peer = peer
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self.peer is None:
            name = transport.get_extra_info("peername")
            self.peer = Address("TCP", str(name[0]), int(name[1]))
        self.owner._connections[self.peer] = self

    def data_received(self, data: bytes) -> None:
        assert self.peer is not None
        self.buffer += data
        while True:
            while self.buffer[:1] in (b"\r", b"\n"):
                del self.buffer[:1]
            if not self.buffer:
                return
            try:
                n = frame_length(self.buffer)
            except SipParseError as exc:
                self.owner.throttle.warning(
                    self.peer.host, "tcp %s: dropping connection: %s", self.peer, exc.reason
                )
                self.abort()
                return
            if n is None:
                if len(self.buffer) > MAX_TCP_BUFFER:
                    self.owner.throttle.warning(
                        self.peer.host, "tcp %s: buffer overflow, dropping connection", self.peer
                    )
                    self.abort()
                return
            frame = bytes(self.buffer[:n])
            del self.buffer[:n]
            self.owner._deliver(frame, self.peer, stream=True)

    def abort(self) -> None:
        self.buffer.clear()
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self.owner._connections.get(self.peer) is self:
            del self.owner._connections[self.peer]
        if not self.closed.done():
            self.closed.set_result(None)

    def send(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


class SipTransport:
    """One UDP socket and one TCP listener on the same host/port (either may be disabled)."""

    def __init__(
        self, host: str, port: int, on_message: MessageHandler, *, udp: bool = True, tcp: bool = True
    ) -> None:
        self.host = host
        self.port = port
        self.on_message = on_message
        self.enable_udp = udp
        self.enable_tcp = tcp
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp_server: asyncio.Server | None = None
        self._connections: dict[Address, _TcpConnection] = {}
        self.parse_errors = 0
        self.throttle = LogThrottle()  # warnings about what a peer sent: one per source host a minute
        self.on_malformed: MalformedHandler | None = None  # e.g. answer 400 when enough parses

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.enable_udp:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self), local_addr=(self.host, self.port)
            )
            self._udp = transport
            self.port = int(transport.get_extra_info("sockname")[1])
        if self.enable_tcp:
            self._tcp_server = await loop.create_server(
                lambda: _TcpConnection(self), self.host, self.port, reuse_address=True
            )
            self.port = int(self._tcp_server.sockets[0].getsockname()[1])

    def _deliver(self, data: bytes, source: Address, *, stream: bool) -> None:
        try:
            msg = parse_message(data, stream=stream)
        except SipParseError as exc:
            self.parse_errors += 1
            self.throttle.warning(source.host, "sip from %s rejected: %s", source, exc.reason)
            if self.on_malformed is not None:
                try:
                    self.on_malformed(data, source, exc.reason)
                except Exception:
                    log.exception("answering a malformed message from %s failed", source)
            return
        try:
            self.on_message(msg, source)
        except Exception:
            log.exception("sip handler failed for %s from %s", msg.summary(), source)

    async def send(self, msg: SipMessage, dest: Address) -> None:
        data = msg.to_bytes()
        if dest.transport.upper() == "UDP":
            if self._udp is None:
                raise ConnectionError("UDP transport disabled")
            self._udp.sendto(data, (dest.host, dest.port))
            return
        conn = self._connections.get(dest)
        if conn is None:
            loop = asyncio.get_running_loop()
            _, conn = await loop.create_connection(lambda: _TcpConnection(self, dest), dest.host, dest.port)
        conn.send(data)

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp_server is not None:
            self._tcp_server.close()
        for conn in list(self._connections.values()):
            if conn.transport is not None:
                conn.transport.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(conn.closed), 1.0)
        if self._tcp_server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._tcp_server.wait_closed(), 1.0)
            self._tcp_server = None
