"""Lower-platform (cascade) role: the gateway registers up to each configured superior platform
(park, county, city, province), keeps alive, answers Catalog/DeviceInfo/DeviceStatus queries with the
channels shared to that tier (ids as assigned by the tier, never derived), answers INVITE through a
:class:`MediaRelayFactory`, handles BYE and Catalog/Alarm SUBSCRIBE, and pushes alarms with
:meth:`CascadeLink.send_alarm`, which waits for the application-level response."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from adapters.gb28181 import manscdp
from adapters.gb28181.common import GbError, SnCounter, gb_time
from adapters.gb28181.interop import DEFAULT_INTEROP, Interop
from adapters.gb28181.manscdp import AlarmNotify, CatalogItem, ManscdpError, ManscdpMessage
from adapters.gb28181.media_api import (
    MediaRelayFactory,
    MediaSender,
    MediaTransport,
    SendRequest,
    StreamUnavailable,
)
from adapters.gb28181.sdp import Sdp, SdpError, build_sdp, complement_setup, parse_sdp
from adapters.gb28181.sip.dialog import Dialog
from adapters.gb28181.sip.digest import DigestClient, DigestError
from adapters.gb28181.sip.endpoint import SipEndpoint, new_call_id, new_tag
from adapters.gb28181.sip.message import SipMessage
from adapters.gb28181.sip.transaction import ServerTransaction, SipTimeout, Timers
from adapters.gb28181.sip.transport import Address

log = logging.getLogger(__name__)


def warning(text: str) -> tuple[str, str]:
    """A ``Warning`` header (RFC 3261 20.43, code 399: miscellaneous) that says why, in one line."""
    clean = " ".join(text.replace('"', "'").replace("\\", "/").split())[:200]
    return ("Warning", f'399 vigil "{clean}"')


@dataclass
class SuperiorConfig:
    name: str  # e.g. "park", "county"
    server_id: str  # the superior's SIP id (use the one seen on the wire if it differs from the advertised)
    server_domain: str  # the superior's domain / realm
    host: str
    port: int
    local_id: str  # our platform id as assigned by this superior
    local_domain: str
    password: str
    transport: Literal["UDP", "TCP"] = "UDP"
    expires: int = 3600
    keepalive_interval: float = 60.0
    keepalive_failures: int = 3  # re-register after this many failed keepalives
    retry_interval: float = 30.0
    alarm_timeout: float = 10.0
    channels: list[CatalogItem] = field(default_factory=list)
    # The shared channels as they are now (status ON/OFF, manufacturer/model), read when a Catalog is
    # asked for; None: ``channels`` as configured. ``channels`` still says which ids are shared.
    catalog: Callable[[], Awaitable[list[CatalogItem]]] | None = None
    device_name: str = "vigil"
    manufacturer: str = "vigil"
    model: str = "gateway"
    firmware: str = "0.1"
    media_host: str | None = None
    interop: Interop = DEFAULT_INTEROP
    timezone: str | None = None  # IANA zone of the times we send (the site's); None: the host's


@dataclass
class AlarmResult:
    delivered: bool
    sn: int
    reason: str = ""


@dataclass
class RelaySession:
    channel_id: str
    dialog: Dialog
    sender: MediaSender
    offer: Sdp
    answer: Sdp
    started: bool = False


@dataclass
class CascadeEvent:
    kind: str  # registered, register_failed, offline, query, invite, bye, subscribe
    link: str
    detail: str = ""


class CascadeLink:
    """State and behaviour for one superior platform."""

    def __init__(self, agent: CascadeAgent, config: SuperiorConfig) -> None:
        self.agent = agent
        self.config = config
        self.address = Address(config.transport, config.host, config.port)
        self.registered = False
        self._call_id = new_call_id(agent.endpoint.host)
        self._from_tag = new_tag()
        self._cseq = 0
        self._digest = DigestClient(config.local_id, config.password)
        self._sn = SnCounter()
        self._alarm_waiters: dict[int, asyncio.Future[ManscdpMessage]] = {}
        self.sessions: dict[str, RelaySession] = {}
        self.subscriptions: dict[str, tuple[str, Dialog]] = {}  # call-id -> (event/cmd, dialog)
        self._task: asyncio.Task[None] | None = None
        self._keepalive_failures = 0

    # --------------------------------------------------------------------------------- registration

    @property
    def channels(self) -> list[CatalogItem]:
        return self.config.channels

    async def current_channels(self) -> list[CatalogItem]:
        """The shared channels with their present state (``SuperiorConfig.catalog``)."""
        if self.config.catalog is None:
            return self.config.channels
        try:
            return await self.config.catalog()
        except Exception:
            log.exception("cascade %s: the channels' state could not be read", self.config.name)
            return self.config.channels

    def _local_uri(self) -> str:
        return f"sip:{self.config.local_id}@{self.config.local_domain}"

    def _server_uri(self) -> str:
        return f"sip:{self.config.server_id}@{self.config.server_domain}"

    async def register(self, expires: int | None = None) -> bool:
        """REGISTER (with digest on 401/407); True on 200."""
        expires = self.config.expires if expires is None else expires
        uri = self._server_uri()
        auth: tuple[str, str] | None = None
        for _ in range(3):
            self._cseq += 1
            extra = [("Expires", str(expires))]
            if self.config.interop.gb_version:
                extra.append(("X-GB-Ver", self.config.interop.gb_version))
            if auth:
                extra.append(auth)
            req = self.agent.endpoint.build_request(
                "REGISTER",
                uri,
                dest=self.address,
                from_=f"<{self._local_uri()}>;tag={self._from_tag}",
                to=f"<{self._local_uri()}>",
                call_id=self._call_id,
                cseq=self._cseq,
                contact_user=self.config.local_id,
                extra=extra,
            )
            try:
                resp = await self.agent.endpoint.request(req, self.address)
            except SipTimeout:
                log.info("cascade %s: REGISTER timed out", self.config.name)
                self.registered = False
                return False
            if resp.status in (401, 407):
                header = "WWW-Authenticate" if resp.status == 401 else "Proxy-Authenticate"
                challenge = resp.headers.get(header)
                if not challenge or auth is not None and "stale=true" not in challenge.lower():
                    break
                try:
                    value = self._digest.authorization(challenge, "REGISTER", uri)
                except DigestError as exc:
                    log.warning("cascade %s: bad challenge: %s", self.config.name, exc)
                    break
                auth = ("Authorization" if resp.status == 401 else "Proxy-Authorization", value)
                continue
            if resp.status == 200:
                self.registered = expires > 0
                self.agent._emit(CascadeEvent("registered" if expires else "unregistered", self.config.name))
                return True
            log.info("cascade %s: REGISTER answered %s %s", self.config.name, resp.status, resp.reason)
            break
        self.registered = False
        self.agent._emit(CascadeEvent("register_failed", self.config.name))
        return False

    async def unregister(self) -> None:
        with contextlib.suppress(GbError):
            await self.register(expires=0)
        self.registered = False

    async def run(self) -> None:
        """Keep the registration and keepalive going until cancelled."""
        loop = asyncio.get_running_loop()
        next_ka = loop.time() + self.config.keepalive_interval
        next_reg = loop.time()
        while True:
            now = loop.time()
            if now >= next_reg or not self.registered:
                ok = await self.register()
                next_reg = now + (max(1.0, self.config.expires * 0.8) if ok else self.config.retry_interval)
                next_ka = now + self.config.keepalive_interval
            elif now >= next_ka:
                if await self.send_keepalive():
                    self._keepalive_failures = 0
                else:
                    self._keepalive_failures += 1
                    if self._keepalive_failures >= self.config.keepalive_failures:
                        self.registered = False
                        self.agent._emit(CascadeEvent("offline", self.config.name))
                next_ka = now + self.config.keepalive_interval
            await asyncio.sleep(max(0.01, min(next_ka, next_reg) - loop.time()))

    # ------------------------------------------------------------------------------------ messages

    async def _message(self, body: bytes, method: str = "MESSAGE", within: float | None = None) -> SipMessage:
        req = self.agent.endpoint.build_request(
            method,
            self._server_uri(),
            dest=self.address,
            from_=f"<{self._local_uri()}>;tag={new_tag()}",
            to=f"<{self._server_uri()}>",
            body=body,
            content_type=manscdp.CONTENT_TYPE,
        )
        try:
            resp = await self.agent.endpoint.request(req, self.address, timeout=within)
        except SipTimeout as exc:
            raise GbError(f"{method} to {self.config.name} timed out") from exc
        if (resp.status or 0) // 100 != 2:
            raise GbError(f"{method} to {self.config.name} answered {resp.status}", resp.status)
        return resp

    async def send_keepalive(self) -> bool:
        body = manscdp.build_keepalive(self._sn.next(), self.config.local_id, self.config.interop.charset)
        try:
            await self._message(body)
            return True
        except GbError as exc:
            log.info("cascade %s: keepalive failed: %s", self.config.name, exc)
            return False

    async def send_alarm(
        self,
        channel_id: str,
        *,
        alarm_type: int,
        description: str,
        priority: int = 1,
        method: int = 5,
        time: str | None = None,
        longitude: str = "",
        latitude: str = "",
        event_type: str = "",
        within: float | None = None,
    ) -> AlarmResult:
        """Push an alarm up (MESSAGE Notify CmdType Alarm, or NOTIFY inside the superior's alarm
        subscription) and wait for the 200 and, unless the interop switch says otherwise, the superior's
        MANSCDP ``<Response>``. ``channel_id`` is the id as this superior knows the channel."""
        interop = self.config.interop
        sn = self._sn.next()
        alarm = AlarmNotify(
            device_id=channel_id,
            sn=sn,
            priority=priority,
            method=method,
            alarm_type=alarm_type,
            time=time or gb_time(zone=self.config.timezone),
            description=description,
            longitude=longitude,
            latitude=latitude,
            event_type=event_type,
        )
        body = manscdp.build_alarm_notify(alarm, interop.charset)
        timeout = within or self.config.alarm_timeout
        fut: asyncio.Future[ManscdpMessage] = asyncio.get_running_loop().create_future()
        self._alarm_waiters[sn] = fut
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            sub = next((d for ev, d in self.subscriptions.values() if ev.lower() == "alarm"), None)
            if interop.alarm_via.upper() == "NOTIFY" and sub is not None:
                req = sub.create_request(
                    self.agent.endpoint,
                    "NOTIFY",
                    body=body,
                    content_type=manscdp.CONTENT_TYPE,
                    extra=[("Event", "Alarm"), ("Subscription-State", "active")],
                )
                try:
                    resp = await self.agent.endpoint.request(req, sub.peer, timeout=timeout)
                except SipTimeout:
                    return AlarmResult(False, sn, "timeout waiting for 200")
                if (resp.status or 0) // 100 != 2:
                    return AlarmResult(False, sn, f"answered {resp.status}")
            else:
                try:
                    await self._message(body, within=timeout)
                except GbError as exc:
                    return AlarmResult(False, sn, str(exc))
            if not interop.alarm_needs_response:
                return AlarmResult(True, sn, "200")
            try:
                answer = await asyncio.wait_for(fut, max(0.0, deadline - loop.time()))
            except TimeoutError:
                return AlarmResult(False, sn, "timeout waiting for the Alarm Response")
            result = answer.get("Result", "OK").upper()
            return AlarmResult(result == "OK", sn, f"Response {result}")
        finally:
            self._alarm_waiters.pop(sn, None)

    # ---------------------------------------------------------------------------- requests from above

    async def handle(self, stx: ServerTransaction) -> None:
        method = stx.request.method
        if method == "MESSAGE":
            await self._on_message(stx)
        elif method == "INVITE":
            await self._on_invite(stx)
        elif method == "BYE":
            session = self.sessions.pop(stx.request.call_id, None)
            await stx.respond(200 if session else 481)
            if session is not None:
                await session.sender.close()
                self.agent._emit(CascadeEvent("bye", self.config.name, session.channel_id))
        elif method == "SUBSCRIBE":
            await self._on_subscribe(stx)
        elif method in ("OPTIONS", "INFO", "NOTIFY"):
            await stx.respond(200)
        else:
            await stx.respond(405)

    async def _on_message(self, stx: ServerTransaction) -> None:
        try:
            msg = manscdp.parse(stx.request.body)
        except ManscdpError as exc:
            log.info("cascade %s: bad MESSAGE: %s", self.config.name, exc.reason)
            await stx.respond(400, "Bad MANSCDP")
            return
        await stx.respond(200)
        root, cmd = msg.root.lower(), msg.cmd_type.lower()
        if root == "response" and cmd == "alarm":
            fut = self._alarm_waiters.get(msg.sn)
            if fut is not None and not fut.done():
                fut.set_result(msg)
            return
        if root == "query":
            self.agent._emit(CascadeEvent("query", self.config.name, msg.cmd_type))
            asyncio.ensure_future(self._answer_query(msg))

    async def _answer_query(self, msg: ManscdpMessage) -> None:
        cfg = self.config
        cs = cfg.interop.charset
        cmd = msg.cmd_type.lower()
        bodies: list[bytes]
        if cmd == "catalog":
            bodies = manscdp.build_catalog_responses(
                msg.sn, cfg.local_id, await self.current_channels(), cfg.interop.catalog_page_size, cs
            )
        elif cmd == "deviceinfo":
            bodies = [
                manscdp.build_device_info_response(
                    msg.sn,
                    msg.device_id or cfg.local_id,
                    name=cfg.device_name,
                    manufacturer=cfg.manufacturer,
                    model=cfg.model,
                    firmware=cfg.firmware,
                    channels=len(cfg.channels),
                    charset=cs,
                )
            ]
        elif cmd == "devicestatus":
            bodies = [manscdp.build_device_status_response(msg.sn, msg.device_id or cfg.local_id, True, cs)]
        else:
            log.info("cascade %s: unsupported query %s", cfg.name, msg.cmd_type)
            return
        for body in bodies:
            try:
                await self._message(body)
            except GbError as exc:
                log.warning("cascade %s: %s response failed: %s", cfg.name, msg.cmd_type, exc)
                return

    def _channel_from(self, req: SipMessage) -> str:
        subject = req.headers.get("Subject") or ""
        if subject:
            first = subject.split(",")[0].split(":")[0].strip()
            if first:
                return first
        return req.to.uri.user or ""

    async def _on_invite(self, stx: ServerTransaction) -> None:
        req = stx.request
        channel_id = self._channel_from(req)
        if channel_id not in {c.device_id for c in self.config.channels}:
            log.info("cascade %s: INVITE for %s answered 404: not shared to it", self.config.name, channel_id)
            await stx.respond(404, "Not Found", extra=[warning(f"channel {channel_id} is not shared here")])
            return
        try:
            offer = parse_sdp(req.body)
        except SdpError as exc:
            log.info("cascade %s: bad SDP: %s", self.config.name, exc.reason)
            await stx.respond(400, "Bad SDP")
            return
        if not any("PS/" in v.upper() for v in offer.rtpmap.values()) and 96 not in offer.payloads:
            await stx.respond(415)
            return
        if self.agent.relay is None:
            await stx.respond(488)
            return
        transport: MediaTransport = "udp"
        if offer.is_tcp:
            transport = "tcp-passive" if complement_setup(offer.setup) == "passive" else "tcp-active"
        ssrc = offer.ssrc or "0"
        local_ip = self.config.media_host or self.agent.endpoint.host
        try:
            sender = await self.agent.relay.open_sender(
                SendRequest(
                    self.config.name,
                    channel_id,
                    transport,
                    int(ssrc),
                    offer.ip,
                    offer.port,
                    local_ip,
                    offer.session or "Play",
                    offer.start,
                    offer.stop,
                )
            )
        except StreamUnavailable as exc:
            log.warning("cascade %s: INVITE for %s answered 480: %s", self.config.name, channel_id, exc)
            await stx.respond(480, "Temporarily Unavailable", extra=[warning(str(exc))])
            return
        except LookupError as exc:
            log.info("cascade %s: INVITE for %s answered 404: %s", self.config.name, channel_id, exc)
            await stx.respond(404, "Not Found", extra=[warning(str(exc))])
            return
        except Exception:
            log.exception("cascade %s: relay for %s failed", self.config.name, channel_id)
            await stx.respond(500)
            return
        answer = Sdp(
            origin_user=channel_id,
            session=offer.session or "Play",
            ip=local_ip,
            port=sender.local_port,
            proto=offer.proto,
            payloads=[96],
            rtpmap={96: "PS/90000"},
            direction="sendonly",
            setup=complement_setup(offer.setup) if offer.is_tcp else None,
            ssrc=ssrc,
            fmt="",
        )
        dialog = Dialog.from_uas(req, stx.local_tag, stx.source)
        self.sessions[req.call_id] = RelaySession(channel_id, dialog, sender, offer, answer)
        await stx.respond(
            200,
            body=build_sdp(answer, rtpmap_first=self.config.interop.sdp_rtpmap_first),
            content_type="APPLICATION/SDP",
            extra=[("Contact", self.agent.endpoint.contact(self.config.local_id))],
        )
        self.agent._emit(CascadeEvent("invite", self.config.name, channel_id))

    async def on_ack(self, msg: SipMessage) -> None:
        session = self.sessions.get(msg.call_id)
        if session is not None and not session.started:
            session.started = True
            try:
                await session.sender.start()
            except Exception:
                log.exception("cascade %s: starting relay of %s failed", self.config.name, session.channel_id)

    async def _on_subscribe(self, stx: ServerTransaction) -> None:
        req = stx.request
        try:
            msg = manscdp.parse(req.body)
        except ManscdpError:
            await stx.respond(400, "Bad MANSCDP")
            return
        expires = (req.headers.get("Expires") or "3600").strip()
        body = manscdp.build_result(
            msg.cmd_type, msg.sn, self.config.local_id, charset=self.config.interop.charset
        )
        await stx.respond(
            200,
            body=body,
            content_type=manscdp.CONTENT_TYPE,
            extra=[("Expires", expires), ("Contact", self.agent.endpoint.contact(self.config.local_id))],
        )
        if expires == "0":
            self.subscriptions.pop(req.call_id, None)
        else:
            dialog = Dialog.from_uas(req, stx.local_tag, stx.source)
            self.subscriptions[req.call_id] = (msg.cmd_type, dialog)
        self.agent._emit(CascadeEvent("subscribe", self.config.name, msg.cmd_type))

    async def notify_catalog(self, changed: list[CatalogItem]) -> int:
        """Send catalog changes (items carry ``event`` ON/OFF/ADD/DEL/UPDATE) to Catalog subscribers."""
        sent = 0
        for event, dialog in list(self.subscriptions.values()):
            if event.lower() != "catalog":
                continue
            for body in manscdp.build_catalog_responses(
                self._sn.next(),
                self.config.local_id,
                changed,
                self.config.interop.catalog_page_size,
                self.config.interop.charset,
                root="Notify",
            ):
                req = dialog.create_request(
                    self.agent.endpoint,
                    "NOTIFY",
                    body=body,
                    content_type=manscdp.CONTENT_TYPE,
                    extra=[("Event", "Catalog"), ("Subscription-State", "active")],
                )
                with contextlib.suppress(SipTimeout):
                    resp = await self.agent.endpoint.request(req, dialog.peer)
                    sent += 1 if (resp.status or 0) // 100 == 2 else 0
        return sent


class CascadeAgent:
    """One SIP endpoint shared by all superior links; requests are routed to a link by the To user
    (our id as that superior knows us), then by source address."""

    def __init__(
        self,
        host: str,
        port: int,
        superiors: list[SuperiorConfig],
        relay: MediaRelayFactory | None = None,
        *,
        timers: Timers | None = None,
        udp: bool = True,
        tcp: bool = True,
        on_event: Callable[[CascadeEvent], None] | None = None,
    ) -> None:
        self.endpoint = SipEndpoint(host, port, udp=udp, tcp=tcp, timers=timers, send_trying=self._trying)
        self.endpoint.handler = self._handle
        self.endpoint.ack_handler = self._on_ack
        self.relay = relay
        self._on_event = on_event
        self.events: asyncio.Queue[CascadeEvent] = asyncio.Queue(maxsize=10_000)
        self.links = {s.name: CascadeLink(self, s) for s in superiors}

    def _emit(self, event: CascadeEvent) -> None:
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:
                log.exception("cascade event callback failed")
        with contextlib.suppress(asyncio.QueueFull):
            self.events.put_nowait(event)

    def link(self, name: str) -> CascadeLink:
        return self.links[name]

    async def start(self, *, run_links: bool = True) -> None:
        """Open the endpoint; with ``run_links`` every link registers and keeps alive in the background."""
        await self.endpoint.start()
        if run_links:
            for link in self.links.values():
                link._task = asyncio.ensure_future(link.run())

    async def close(self, *, unregister: bool = True) -> None:
        for link in self.links.values():
            if link._task is not None:
                link._task.cancel()
            for session in list(link.sessions.values()):
                with contextlib.suppress(Exception):
                    await session.sender.close()
            if unregister and link.registered:
                await link.unregister()
        await self.endpoint.close()

    def _route(self, req: SipMessage, source: Address) -> CascadeLink | None:
        try:
            user = req.to.uri.user
        except Exception:
            user = None
        matches = [lk for lk in self.links.values() if lk.config.local_id == user]
        if len(matches) == 1:
            return matches[0]
        by_addr = [
            lk for lk in self.links.values() if (lk.config.host, lk.config.port) == (source.host, source.port)
        ]
        by_host = [lk for lk in (matches or self.links.values()) if lk.config.host == source.host]
        for cands in (by_addr, by_host, matches):
            if len(cands) >= 1:
                return cands[0]
        return None

    def _trying(self, req: SipMessage, source: Address) -> bool:
        link = self._route(req, source)
        interop = link.config.interop if link is not None else DEFAULT_INTEROP
        return interop.trying_for_invite if req.method == "INVITE" else interop.trying_for_other

    async def _handle(self, stx: ServerTransaction) -> None:
        link = self._route(stx.request, stx.source)
        if link is None:
            await stx.respond(404)
            return
        await link.handle(stx)

    def _on_ack(self, msg: SipMessage, source: Address) -> None:
        for link in self.links.values():
            if msg.call_id in link.sessions:
                asyncio.ensure_future(link.on_ack(msg))
                return
