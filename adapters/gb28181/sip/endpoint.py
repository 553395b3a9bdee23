"""SIP endpoint: transport + transaction layer + request building. Roles (upper, cascade) sit on top."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable

from adapters.gb28181.sip.message import (
    SipMessage,
    SipParseError,
    bad_request_response,
    make_response,
    with_received,
)
from adapters.gb28181.sip.transaction import ClientTransaction, ServerTransaction, SipTimeout, Timers
from adapters.gb28181.sip.transport import Address, SipTransport

log = logging.getLogger(__name__)

RequestHandler = Callable[[ServerTransaction], Awaitable[None]]
AckHandler = Callable[[SipMessage, Address], None]


def new_tag() -> str:
    return secrets.token_hex(5)


def new_branch() -> str:
    return "z9hG4bK" + secrets.token_hex(8)


def new_call_id(host: str) -> str:
    return f"{secrets.token_hex(10)}@{host}"


class SipEndpoint:
    """Owns a :class:`SipTransport`, matches responses to client transactions, absorbs retransmitted
    requests, and hands new requests to ``handler`` (which must answer through the transaction)."""

    def __init__(
        self,
        host: str,
        port: int = 0,
        *,
        udp: bool = True,
        tcp: bool = True,
        timers: Timers | None = None,
        user_agent: str = "vigil-gb28181",
        send_trying: Callable[[SipMessage, Address], bool] | None = None,
    ) -> None:
        self.transport = SipTransport(host, port, self._on_message, udp=udp, tcp=tcp)
        self.transport.on_malformed = self._on_malformed
        self.timers = timers or Timers()
        self.user_agent = user_agent
        self.handler: RequestHandler | None = None
        self.ack_handler: AckHandler | None = None
        self.send_trying = send_trying or (lambda req, src: req.method == "INVITE")
        self._client: dict[tuple[str, str], ClientTransaction] = {}
        self._server: dict[tuple[str, str, str, str], ServerTransaction] = {}
        self._acks: dict[tuple[str, int], tuple[SipMessage, Address]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def host(self) -> str:
        return self.transport.host

    @property
    def port(self) -> int:
        return self.transport.port

    async def start(self) -> None:
        await self.transport.start()

    async def close(self) -> None:
        for txn in list(self._client.values()):
            txn.cancel()
        for stx in list(self._server.values()):
            stx.close()
        for task in list(self._tasks):
            task.cancel()
        await self.transport.close()

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _later(self, delay: float, fn: Callable[[], object]) -> None:
        asyncio.get_running_loop().call_later(delay, fn)

    async def send_raw(self, msg: SipMessage, dest: Address) -> None:
        try:
            await self.transport.send(msg, dest)
        except OSError as exc:
            log.warning("send %s to %s failed: %s", msg.summary(), dest, exc)

    # ------------------------------------------------------------------------------ building requests

    def via(self, transport: str) -> str:
        return f"SIP/2.0/{transport.upper()} {self.host}:{self.port};rport;branch={new_branch()}"

    def contact(self, user: str) -> str:
        return f"<sip:{user}@{self.host}:{self.port}>"

    def build_request(
        self,
        method: str,
        uri: str,
        *,
        dest: Address,
        from_: str,
        to: str,
        call_id: str | None = None,
        cseq: int = 1,
        contact_user: str | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        extra: list[tuple[str, str]] | None = None,
    ) -> SipMessage:
        msg = SipMessage(method=method, uri=uri)
        h = msg.headers
        h.add("Via", self.via(dest.transport))
        h.add("From", from_)
        h.add("To", to)
        h.add("Call-ID", call_id or new_call_id(self.host))
        h.add("CSeq", f"{cseq} {method}")
        h.add("Max-Forwards", "70")
        if contact_user is not None:
            h.add("Contact", self.contact(contact_user))
        h.add("User-Agent", self.user_agent)
        for name, value in extra or []:
            h.add(name, value)
        if content_type:
            h.add("Content-Type", content_type)
        msg.body = body
        return msg

    # ---------------------------------------------------------------------------------- sending

    async def request(
        self,
        req: SipMessage,
        dest: Address,
        *,
        timeout: float | None = None,  # noqa: ASYNC109
        on_provisional: Callable[[SipMessage], None] | None = None,
    ) -> SipMessage:
        """Send ``req`` in a client transaction and return the final response; raises SipTimeout."""
        if req.method == "ACK":
            await self.send_raw(req, dest)
            return req
        txn = ClientTransaction(req, dest, self.send_raw, self.timers, on_provisional)
        self._client[txn.key] = txn
        txn.start()
        try:
            if timeout is None:
                return await txn.final
            try:
                return await asyncio.wait_for(asyncio.shield(txn.final), timeout)
            except TimeoutError as exc:
                raise SipTimeout(f"no final response to {req.summary()} within {timeout}s") from exc
        finally:
            txn.cancel()
            self._client.pop(txn.key, None)

    async def send_ack(self, ack: SipMessage, dest: Address) -> None:
        """Send the ACK for a 2xx and remember it to answer 2xx retransmissions."""
        key = (ack.call_id, ack.cseq[0])
        self._acks[key] = (ack, dest)
        self._later(self.timers.timeout, lambda: self._acks.pop(key, None))
        await self.send_raw(ack, dest)

    # ---------------------------------------------------------------------------------- receiving

    def _on_message(self, msg: SipMessage, source: Address) -> None:
        try:
            if msg.is_request:
                self._on_request(msg, source)
            else:
                self._on_response(msg)
        except SipParseError as exc:
            self.transport.throttle.warning(
                source.host, "dropping %s from %s: %s", msg.summary(), source, exc.reason
            )

    def _on_malformed(self, data: bytes, source: Address, reason: str) -> None:
        """A request that did not parse gets 400 when enough of it parses to answer (its Via)."""
        resp = bad_request_response(data, reason)
        if resp is not None:
            self._spawn(self.send_raw(with_received(resp, source.host, source.port), source))

    def _on_response(self, msg: SipMessage) -> None:
        key = (msg.top_via.branch or "", msg.cseq[1])
        txn = self._client.get(key)
        if txn is not None:
            txn.receive(msg)
            return
        if msg.cseq[1] == "INVITE" and (msg.status or 0) // 100 == 2:
            sent = self._acks.get((msg.call_id, msg.cseq[0]))
            if sent is not None:
                self._spawn(self.send_raw(*sent))
                return
        log.debug("stray response %s", msg.summary())

    def _on_request(self, msg: SipMessage, source: Address) -> None:
        via = msg.top_via
        method = msg.method or ""
        if method == "ACK":
            key = (via.branch or "", f"{via.host}:{via.port}", "INVITE", msg.call_id)
            stx = self._server.get(key)
            if stx is None:  # ACK for a 2xx has its own branch: match by Call-ID and CSeq
                for cand in self._server.values():
                    if (
                        cand.request.method == "INVITE"
                        and cand.request.call_id == msg.call_id
                        and cand.request.cseq[0] == msg.cseq[0]
                    ):
                        stx = cand
                        break
            if stx is not None:
                stx.acked.set()
            if self.ack_handler is not None and (
                stx is None or (stx.last_response is not None and (stx.last_response.status or 0) < 300)
            ):
                self.ack_handler(msg, source)
            return
        if method == "CANCEL":
            self._on_cancel(msg, source)
            return
        key = (via.branch or "", f"{via.host}:{via.port}", method, msg.call_id)
        existing = self._server.get(key)
        if existing is not None:
            self._spawn(existing.resend_last(source))
            return
        stx = ServerTransaction(msg, source, self.send_raw, self.timers, new_tag())
        self._server[key] = stx
        self._later(self.timers.timeout + self.timers.t4, lambda: self._drop_server(key))
        self._spawn(self._handle(stx))

    def _drop_server(self, key: tuple[str, str, str, str]) -> None:
        stx = self._server.pop(key, None)
        if stx is not None:
            stx.close()

    def _on_cancel(self, msg: SipMessage, source: Address) -> None:
        via = msg.top_via
        key = (via.branch or "", f"{via.host}:{via.port}", "INVITE", msg.call_id)
        stx = self._server.get(key)
        status = 200 if stx is not None else 481
        resp = make_response(msg, status, "OK" if stx else "Call Does Not Exist")
        self._spawn(self.send_raw(with_received(resp, source.host, source.port), source))
        if stx is not None and not stx.final_sent:
            self._spawn(self._respond_quietly(stx, 487))

    async def _respond_quietly(self, stx: ServerTransaction, status: int) -> None:
        with contextlib.suppress(Exception):
            await stx.respond(status)

    async def _handle(self, stx: ServerTransaction) -> None:
        try:
            if self.send_trying(stx.request, stx.source):
                await stx.respond(100)
            if self.handler is None:
                await stx.respond(503)
                return
            await self.handler(stx)
        except SipParseError as exc:
            self.transport.throttle.warning(
                stx.source.host, "bad %s from %s: %s", stx.request.summary(), stx.source, exc.reason
            )
            if not stx.final_sent:
                await stx.respond(400, exc.reason[:64])
        except Exception:
            log.exception("handler failed for %s", stx.request.summary())
            if not stx.final_sent:
                await stx.respond(500)
        else:
            if not stx.final_sent:
                await stx.respond(500, "No Response")


__all__ = ["SipEndpoint", "SipTimeout", "Timers", "new_branch", "new_call_id", "new_tag"]
