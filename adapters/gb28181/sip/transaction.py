"""RFC 3261 §17 client and server transactions (timers A/B/E/F/G/H/J, retransmission on UDP)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from adapters.gb28181.sip.message import REASONS, SipMessage, make_response, with_received
from adapters.gb28181.sip.transport import Address

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Timers:
    """RFC 3261 timer base values; tests scale them down."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    @property
    def timeout(self) -> float:
        """Timer B / F / H / J: 64*T1."""
        return 64 * self.t1

    def scaled(self, factor: float) -> Timers:
        return Timers(self.t1 * factor, self.t2 * factor, self.t4 * factor)


class SipTimeout(TimeoutError):
    """No final response within 64*T1 (or the caller's timeout)."""


Sender = Callable[[SipMessage, Address], Awaitable[None]]


class ClientTransaction:
    """Sends a request, retransmits it on UDP, resolves with the final response."""

    def __init__(
        self,
        request: SipMessage,
        dest: Address,
        send: Sender,
        timers: Timers,
        on_provisional: Callable[[SipMessage], None] | None = None,
    ) -> None:
        self.request = request
        self.dest = dest
        self._send = send
        self.timers = timers
        self.on_provisional = on_provisional
        self.is_invite = request.method == "INVITE"
        self.key = (request.top_via.branch or "", request.cseq[1])
        self.final: asyncio.Future[SipMessage] = asyncio.get_running_loop().create_future()
        self._provisional = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        await self._send(self.request, self.dest)
        reliable = self.dest.transport.upper() != "UDP"
        interval = self.timers.t1
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timers.timeout
        while not self.final.done():
            remaining = deadline - loop.time()
            if remaining <= 0:
                self.final.set_exception(SipTimeout(f"no final response to {self.request.summary()}"))
                return
            wait = remaining if reliable else min(interval, remaining)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.final), wait)
            if self.final.done():
                return
            if reliable:
                continue
            if self.is_invite:
                if self._provisional:
                    continue  # Timer A stops once a provisional response arrived
                interval *= 2
            else:
                interval = self.timers.t2 if self._provisional else min(interval * 2, self.timers.t2)
            await self._send(self.request, self.dest)

    def receive(self, response: SipMessage) -> None:
        assert response.status is not None
        if response.status < 200:
            self._provisional = True
            if self.on_provisional is not None:
                self.on_provisional(response)
            return
        if self.final.done():
            return
        if self.is_invite and response.status >= 300:
            asyncio.ensure_future(self._send(self._ack_for(response), self.dest))
        self.final.set_result(response)

    def _ack_for(self, response: SipMessage) -> SipMessage:
        """ACK for a non-2xx final response: same branch, To from the response (§17.1.1.3)."""
        req = self.request
        ack = SipMessage(method="ACK", uri=req.uri)
        ack.headers.add("Via", req.headers.get_all("Via")[0])
        ack.headers.add("From", req.headers.get("From") or "")
        ack.headers.add("To", response.headers.get("To") or "")
        ack.headers.add("Call-ID", req.headers.get("Call-ID") or "")
        ack.headers.add("CSeq", f"{req.cseq[0]} ACK")
        ack.headers.add("Max-Forwards", "70")
        return ack

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if not self.final.done():
            self.final.cancel()


class ServerTransaction:
    """One incoming request. The handler answers with :meth:`respond`; retransmitted requests get the
    last response again; INVITE final responses are retransmitted on UDP until the ACK arrives."""

    def __init__(
        self, request: SipMessage, source: Address, send: Sender, timers: Timers, local_tag: str
    ) -> None:
        self.request = request
        self.source = source
        self._send = send
        self.timers = timers
        self.local_tag = local_tag
        via = request.top_via
        self.key = (via.branch or "", f"{via.host}:{via.port}", request.cseq[1], request.call_id)
        self.last_response: SipMessage | None = None
        self.acked = asyncio.Event()
        self._retransmit: asyncio.Task[None] | None = None

    @property
    def final_sent(self) -> bool:
        return self.last_response is not None and (self.last_response.status or 0) >= 200

    async def respond(
        self,
        status: int,
        reason: str | None = None,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        extra: list[tuple[str, str]] | None = None,
    ) -> SipMessage:
        tag = self.local_tag if status > 100 else None
        resp = make_response(
            self.request,
            status,
            reason or REASONS.get(status, "Unknown"),
            to_tag=tag,
            body=body,
            content_type=content_type,
            extra=extra,
        )
        await self.send_response(resp)
        return resp

    async def send_response(self, resp: SipMessage) -> None:
        if self.final_sent:
            log.debug("final response already sent for %s", self.request.summary())
            return
        self.last_response = resp
        await self._send_to_source(resp)
        if (
            self.request.method == "INVITE"
            and (resp.status or 0) >= 200
            and self.source.transport.upper() == "UDP"
        ):
            self._retransmit = asyncio.ensure_future(self._retransmit_until_ack(resp))

    async def _retransmit_until_ack(self, resp: SipMessage) -> None:
        interval = self.timers.t1
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timers.timeout
        while loop.time() < deadline:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.acked.wait(), min(interval, max(0.0, deadline - loop.time())))
            if self.acked.is_set():
                return
            await self._send_to_source(resp)
            interval = min(interval * 2, self.timers.t2)

    async def _send_to_source(self, resp: SipMessage) -> None:
        """To where the request (last) came from, its top Via stamped with received/rport."""
        await self._send(with_received(resp, self.source.host, self.source.port), self.source)

    async def resend_last(self, source: Address | None = None) -> None:
        """A retransmitted request: answer it again. ``source`` is where the retransmission came from: a
        device that lost its TCP connection resends on a new one, and every answer goes there from now."""
        if source is not None:
            self.source = source
        if self.last_response is not None:
            await self._send_to_source(self.last_response)

    def close(self) -> None:
        if self._retransmit is not None:
            self._retransmit.cancel()
