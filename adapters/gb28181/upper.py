"""Upper-platform role: devices, NVRs and lower platforms register to us.

Registrar with per-device digest passwords, Keepalive tracking (online/offline), MANSCDP queries (Catalog
with paged SumNum aggregation, DeviceInfo, DeviceStatus, PresetQuery, PTZPosition), live and playback
INVITE through a :class:`MediaReceiverFactory`, BYE, Alarm receive (200 + Response), Catalog/Alarm
SUBSCRIBE and NOTIFY. Everything the gateway needs is pushed to :attr:`UpperPlatform.events`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from adapters.gb28181 import manscdp
from adapters.gb28181.common import GbError, SnCounter, gb_time, is_gb_id
from adapters.gb28181.interop import DEFAULT_INTEROP, Interop
from adapters.gb28181.manscdp import AlarmNotify, CatalogAggregator, CatalogItem, ManscdpError, ManscdpMessage
from adapters.gb28181.media_api import MediaReceiver, MediaReceiverFactory, MediaTransport, ReceiveRequest
from adapters.gb28181.sdp import DEFAULT_OFFER_MAP, Sdp, SdpError, build_sdp, make_ssrc, parse_sdp
from adapters.gb28181.sip.dialog import Dialog
from adapters.gb28181.sip.digest import DigestServer, Ha1, Secret
from adapters.gb28181.sip.endpoint import SipEndpoint, new_tag
from adapters.gb28181.sip.message import SipMessage, SipParseError, parse_name_addr
from adapters.gb28181.sip.transaction import ServerTransaction, SipTimeout, Timers
from adapters.gb28181.sip.transport import Address

log = logging.getLogger(__name__)

MAX_PENDING = 1000  # held devices: bounded, an unauthenticated REGISTER must not grow memory forever
# A device's password, or the Ha1 stored for it (digest.Ha1); None: unknown device.
PasswordLookup = Callable[[str], "Secret | None | Awaitable[Secret | None]"]


@dataclass
class UpperConfig:
    server_id: str  # our 20-digit SIP server id (type 200)
    domain: str  # SIP domain / digest realm, usually server_id[:10]
    host: str = "127.0.0.1"
    port: int = 5060
    udp: bool = True
    tcp: bool = True
    media_host: str | None = None  # IP in our SDP; defaults to host
    unknown_devices: Literal["refuse", "hold"] = "refuse"
    require_gb_ids: bool = True  # refuse non-20-digit device ids with 403
    keepalive_interval: float = 60.0
    keepalive_misses: int = 3
    query_timeout: float = 10.0
    default_expires: int = 3600
    timezone: str | None = None  # IANA zone of the REGISTER Date (the site's, as alarm times are read)
    nonce_ttl: float = 300.0  # digest nonces are one-time; an expired one is answered stale=true
    auth_failures: int = 5  # wrong passwords per device id, and per source address, within ...
    auth_failure_window: float = 60.0  # ... this many seconds, before REGISTERs are refused for ...
    auth_cooldown: float = 60.0  # ... this many seconds (403 with Retry-After)
    # Messages (MESSAGE, NOTIFY) must come from where the device registered: "strict" = the same host
    # (the port may change: NAT rebinding), "port" = the same host and port, "off" = from anywhere.
    bind_source: Literal["strict", "port", "off"] = "strict"
    timers: Timers = field(default_factory=Timers)
    interop: Interop = DEFAULT_INTEROP


class FailureLimit:
    """Counts failures per key in a sliding window; ``limit`` failures block the key for ``cooldown``
    seconds. Bounded: at most ``max_keys`` keys are tracked (the oldest forgotten first)."""

    def __init__(self, limit: int, window: float, cooldown: float, max_keys: int = 10_000) -> None:
        self.limit, self.window, self.cooldown, self.max_keys = limit, window, cooldown, max_keys
        self._failures: dict[str, deque[float]] = {}
        self._blocked: dict[str, float] = {}  # key -> until
        self.refused: dict[str, int] = {}  # key -> refused while blocked (this block)

    def blocked_for(self, key: str, now: float | None = None) -> float:
        """Seconds left of the key's cool-down; 0 when not blocked."""
        now = time.monotonic() if now is None else now
        until = self._blocked.get(key)
        if until is None:
            return 0.0
        if now >= until:
            del self._blocked[key]
            self.refused.pop(key, None)
            return 0.0
        return until - now

    def fail(self, key: str, now: float | None = None) -> bool:
        """Count a failure; True when it starts a block."""
        if self.limit <= 0:
            return False
        now = time.monotonic() if now is None else now
        times = self._failures.pop(key, None) or deque()
        self._failures[key] = times  # re-inserted: the dict stays in last-failure order
        times.append(now)
        while times and now - times[0] > self.window:
            times.popleft()
        while len(self._failures) > self.max_keys:
            del self._failures[next(iter(self._failures))]
        if len(times) >= self.limit:
            times.clear()
            self._blocked[key] = now + self.cooldown
            while len(self._blocked) > self.max_keys:
                del self._blocked[next(iter(self._blocked))]
            return True
        return False

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)


@dataclass
class Device:
    device_id: str
    address: Address
    contact: str
    call_id: str
    expires: int
    registered_at: float
    last_seen: float
    online: bool = True
    channels: dict[str, CatalogItem] = field(default_factory=dict)
    info: dict[str, str] = field(default_factory=dict)


EventKind = Literal[
    "registered",
    "unregistered",
    "online",
    "offline",
    "held",
    "keepalive",
    "catalog",
    "catalog_notify",
    "alarm",
    "notify",
    "bye",
]


@dataclass
class UpperEvent:
    kind: EventKind
    device_id: str
    items: list[CatalogItem] = field(default_factory=list)
    alarm: AlarmNotify | None = None
    message: ManscdpMessage | None = None
    call_id: str = ""


@dataclass
class PlaySession:
    device_id: str
    channel_id: str
    ssrc: str
    transport: MediaTransport
    dialog: Dialog
    receiver: MediaReceiver
    offer: Sdp
    answer: Sdp
    invite_cseq: int
    closed: bool = False


@dataclass
class Subscription:
    device_id: str
    event: str
    dialog: Dialog
    expires: int


class UpperPlatform:
    def __init__(
        self,
        config: UpperConfig,
        passwords: PasswordLookup,
        media: MediaReceiverFactory | None = None,
        interop_for: Callable[[str], Interop] | None = None,
        on_event: Callable[[UpperEvent], None] | None = None,
    ) -> None:
        self.config = config
        self._passwords = passwords
        self.media = media
        self._interop_for = interop_for or (lambda device_id: config.interop)
        self._on_event = on_event
        self.events: asyncio.Queue[UpperEvent] = asyncio.Queue(maxsize=10_000)
        self.endpoint = SipEndpoint(
            config.host,
            config.port,
            udp=config.udp,
            tcp=config.tcp,
            timers=config.timers,
            send_trying=self._send_trying,
        )
        self.endpoint.handler = self._handle
        self.endpoint.ack_handler = lambda msg, src: None
        self.digest = DigestServer(config.domain, nonce_ttl=config.nonce_ttl)
        self.auth_limit = FailureLimit(config.auth_failures, config.auth_failure_window, config.auth_cooldown)
        self._refusal_logged: dict[tuple[str, str], float] = {}
        self.devices: dict[str, Device] = {}
        self.pending: dict[str, Address] = {}  # held for approval
        self._approved: dict[str, Secret] = {}
        self._refused: set[str] = set()
        self._sn = SnCounter()
        self._ssrc_seq = SnCounter()
        self._waiters: dict[tuple[str, int], asyncio.Future[ManscdpMessage]] = {}
        self._catalogs: dict[int, tuple[CatalogAggregator, asyncio.Future[list[CatalogItem]]]] = {}
        self._records: dict[
            int, tuple[manscdp.RecordAggregator, asyncio.Future[list[manscdp.RecordItem]]]
        ] = {}
        self.sessions: dict[str, PlaySession] = {}
        self.subscriptions: dict[str, Subscription] = {}
        self._liveness: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------------------------ lifecycle

    async def start(self, *, liveness_loop: bool = True) -> None:
        await self.endpoint.start()
        if liveness_loop:
            self._liveness = asyncio.ensure_future(self._liveness_loop())

    async def close(self) -> None:
        if self._liveness is not None:
            self._liveness.cancel()
        for session in list(self.sessions.values()):
            with contextlib.suppress(Exception):
                await session.receiver.close()
        await self.endpoint.close()

    @property
    def port(self) -> int:
        return self.endpoint.port

    def approve(self, device_id: str, password: Secret) -> None:
        """Admit a device (held or not yet seen); it is accepted on its next REGISTER with digest
        answering this password (or the password behind this Ha1)."""
        self._approved[device_id] = password
        self._refused.discard(device_id)
        self.pending.pop(device_id, None)

    def refuse(self, device_id: str) -> None:
        """Refuse a held device: 403 to its REGISTERs, and it is not held again."""
        self._refused.add(device_id)
        self._approved.pop(device_id, None)
        self.pending.pop(device_id, None)

    def _emit(self, event: UpperEvent) -> None:
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:
                log.exception("event callback failed")
        try:
            self.events.put_nowait(event)
        except asyncio.QueueFull:
            log.warning("event queue full; dropping %s for %s", event.kind, event.device_id)

    def _send_trying(self, req: SipMessage, source: Address) -> bool:
        try:
            interop = self._interop_for(req.from_.uri.user or "")
        except SipParseError:
            interop = self.config.interop
        return interop.trying_for_invite if req.method == "INVITE" else interop.trying_for_other

    async def _password(self, device_id: str) -> Secret | None:
        if device_id in self._approved:
            return self._approved[device_id]
        result = self._passwords(device_id)
        if inspect.isawaitable(result):
            result = await result
        return result if isinstance(result, str | Ha1) else None

    # ------------------------------------------------------------------------------------- liveness

    async def _liveness_loop(self) -> None:
        step = max(0.05, self.config.keepalive_interval / 2)
        while True:
            await asyncio.sleep(step)
            self.check_liveness()

    def check_liveness(self, now: float | None = None) -> list[str]:
        """Mark devices offline after missed keepalives or expired registrations; returns those changed."""
        now = time.monotonic() if now is None else now
        changed = []
        limit = self.config.keepalive_interval * self.config.keepalive_misses
        for dev in list(self.devices.values()):
            expired = now - dev.registered_at > dev.expires
            if dev.online and (now - dev.last_seen > limit or expired):
                dev.online = False
                changed.append(dev.device_id)
                self._emit(UpperEvent("offline", dev.device_id))
            if expired:
                del self.devices[dev.device_id]
                self._emit(UpperEvent("unregistered", dev.device_id))
        return changed

    def _seen(self, device_id: str, source: Address) -> Device | None:
        dev = self.devices.get(device_id)
        if dev is None:  # NVRs answer channel queries From the channel id: its device, same host
            dev = next(
                (
                    d
                    for d in self.devices.values()
                    if device_id in d.channels and d.address.host == source.host
                ),
                None,
            )
        if dev is None:
            return None
        device_id = dev.device_id
        dev.last_seen = time.monotonic()
        if self.config.bind_source != "port":
            dev.address = source  # NAT: the packet source is the address to use
        if not dev.online:
            dev.online = True
            self._emit(UpperEvent("online", device_id))
        return dev

    def _owner(self, device_id: str, source: Address) -> str:
        """The registered device a From id belongs to: itself, or the device (same host) of a channel."""
        if device_id in self.devices:
            return device_id
        for dev in self.devices.values():
            if device_id in dev.channels and dev.address.host == source.host:
                return dev.device_id
        return device_id

    def source_allowed(self, device_id: str, source: Address) -> bool:
        """Whether a message From ``device_id`` (or one of its channels) may come from ``source``:
        ``bind_source`` strict = from the host the device registered from, port = that host and port,
        off = anywhere. Unregistered ids are not refused here (they get 403 Not Registered)."""
        mode = self.config.bind_source
        dev = self.devices.get(device_id)
        if mode == "off" or dev is None:
            return True
        if mode == "port":
            return (dev.address.host, dev.address.port) == (source.host, source.port)
        return dev.address.host == source.host

    async def _refuse_source(self, stx: ServerTransaction, device_id: str) -> None:
        """403 for a message whose source is not the device's registered address; logged once a minute
        per device and source."""
        dev = self.devices.get(device_id)
        key = (device_id, f"{stx.source.transport}:{stx.source.host}")
        now = time.monotonic()
        if now - self._refusal_logged.get(key, -math.inf) >= 60.0:
            if len(self._refusal_logged) > 4096:
                self._refusal_logged.clear()
            self._refusal_logged[key] = now
            log.warning(
                "GB %s from %s refused: device %s is registered from %s (gb28181.bind_source: %s); "
                "it must REGISTER again from the new address",
                stx.request.method,
                stx.source,
                device_id,
                dev.address if dev is not None else "nowhere",
                self.config.bind_source,
            )
        await stx.respond(403, "Source Not Registered")

    # ----------------------------------------------------------------------------------- dispatching

    async def _handle(self, stx: ServerTransaction) -> None:
        method = stx.request.method
        if method == "REGISTER":
            await self._on_register(stx)
        elif method == "MESSAGE":
            await self._on_message(stx)
        elif method == "NOTIFY":
            await self._on_notify(stx)
        elif method == "BYE":
            await self._on_bye(stx)
        elif method in ("OPTIONS", "INFO"):
            await stx.respond(200)
        else:
            await stx.respond(405, extra=[("Allow", "REGISTER, MESSAGE, NOTIFY, BYE, OPTIONS, INFO, ACK")])

    async def _on_register(self, stx: ServerTransaction) -> None:
        req = stx.request
        device_id = req.from_.uri.user or ""
        if self.config.require_gb_ids and not is_gb_id(device_id):
            await stx.respond(403, "Bad Device ID")
            return
        if device_id in self._refused:
            await stx.respond(403, "Refused")
            return
        wait = max(
            self.auth_limit.blocked_for(f"id:{device_id}"),
            self.auth_limit.blocked_for(f"host:{stx.source.host}"),
        )
        if wait > 0:  # logged when the block started, not per refused attempt
            await stx.respond(403, "Too Many Failures", extra=[("Retry-After", str(math.ceil(wait)))])
            return
        password = await self._password(device_id)
        if password is None:
            held = self.config.unknown_devices == "hold"
            if held and device_id not in self.pending and len(self.pending) >= MAX_PENDING:
                await stx.respond(403, "Too Many Pending")
            elif held:
                if device_id not in self.pending:
                    self.pending[device_id] = stx.source
                    self._emit(UpperEvent("held", device_id))
                await stx.respond(403, "Pending Approval")
            else:
                await stx.respond(403, "Unknown Device")
            return
        auth = req.headers.get("Authorization")
        if not auth or self.digest.username(auth) != device_id:
            await self._challenge(stx, device_id)
            return
        verdict = self.digest.check(auth, "REGISTER", password)
        if verdict == "stale":
            await self._challenge(stx, device_id, stale=True)
            return
        if verdict in ("replay", "unknown"):
            log.info("REGISTER %s from %s: %s nonce; challenged again", device_id, stx.source, verdict)
            await self._challenge(stx, device_id)
            return
        if verdict != "ok":
            log.info("REGISTER %s from %s: wrong password", device_id, stx.source)
            for key in (f"id:{device_id}", f"host:{stx.source.host}"):
                if self.auth_limit.fail(key):
                    log.warning(
                        "REGISTER failures: %s refused for %.0f s after %d wrong passwords within %.0f s",
                        key.replace("id:", "device ").replace("host:", "address "),
                        self.auth_limit.cooldown,
                        self.auth_limit.limit,
                        self.auth_limit.window,
                    )
            await stx.respond(403, "Wrong Password")
            return
        self.auth_limit.forget(f"id:{device_id}")
        expires = self._expires(req)
        contact = req.headers.get("Contact") or ""
        extra = [("Expires", str(expires))]
        if contact:
            extra.append(("Contact", contact))
        if self._interop_for(device_id).date_header:
            extra.append(("Date", gb_time(millis=True, zone=self.config.timezone)))
        extra += self._ver(device_id)
        if expires == 0:
            await stx.respond(200, extra=extra)
            if self.devices.pop(device_id, None) is not None:
                self._emit(UpperEvent("unregistered", device_id))
            return
        now = time.monotonic()
        before = self.devices.get(device_id)
        known = before is not None
        self.devices[device_id] = Device(
            device_id,
            stx.source,
            contact,
            req.call_id,
            expires,
            now,
            now,
            channels=self.devices[device_id].channels if known else {},
            info=self.devices[device_id].info if known else {},
        )
        await stx.respond(200, extra=extra)
        # A refresh (same Call-ID, still online) is nothing new; a device that was offline or that
        # registers afresh (a new Call-ID: it restarted) is announced again, so what waits for it
        # (a pending INVITE, a Catalog query) goes now.
        if before is None or not before.online or before.call_id != req.call_id:
            self._emit(UpperEvent("registered", device_id))

    async def _challenge(self, stx: ServerTransaction, device_id: str, stale: bool = False) -> None:
        challenge = self.digest.challenge(stale=stale)
        await stx.respond(401, extra=[("WWW-Authenticate", challenge), *self._ver(device_id)])

    def _ver(self, device_id: str) -> list[tuple[str, str]]:
        ver = self._interop_for(device_id).gb_version
        return [("X-GB-Ver", ver)] if ver else []

    def _expires(self, req: SipMessage) -> int:
        value = req.headers.get("Expires")
        if value is None:
            contact = req.headers.get("Contact")
            if contact:
                with contextlib.suppress(SipParseError):
                    value = parse_name_addr(contact).params.get("expires")
        if value is not None and value.strip().isdigit() and len(value.strip()) < 10:
            return int(value.strip())
        return self.config.default_expires

    async def _on_message(self, stx: ServerTransaction) -> None:
        req = stx.request
        device_id = req.from_.uri.user or ""
        try:
            msg = manscdp.parse(req.body)
        except ManscdpError as exc:
            log.info("MESSAGE from %s rejected: %s", device_id, exc.reason)
            await stx.respond(400, "Bad MANSCDP")
            return
        if not self.source_allowed(self._owner(device_id, stx.source), stx.source):
            await self._refuse_source(stx, self._owner(device_id, stx.source))
            return
        dev = self._seen(device_id, stx.source)
        if dev is None:
            await stx.respond(403, "Not Registered")
            return
        await stx.respond(200)
        self._dispatch_manscdp(dev, msg, call_id=req.call_id)

    def _dispatch_manscdp(self, dev: Device, msg: ManscdpMessage, call_id: str = "") -> None:
        cmd = msg.cmd_type.lower()
        root = msg.root.lower()
        if root == "notify" and cmd == "keepalive":
            self._emit(UpperEvent("keepalive", dev.device_id, message=msg))
        elif root == "notify" and cmd == "alarm":
            alarm = manscdp.parse_alarm(msg)
            self._emit(UpperEvent("alarm", dev.device_id, alarm=alarm, message=msg))
            asyncio.ensure_future(self._alarm_response(dev, msg))
        elif root == "notify" and cmd == "catalog":
            items = manscdp.catalog_items(msg)
            self._apply_catalog(dev, items)
            self._emit(UpperEvent("catalog_notify", dev.device_id, items=items, message=msg, call_id=call_id))
        elif root == "response" and cmd == "catalog":
            entry = self._catalogs.get(msg.sn)
            if entry is not None and entry[0].add(msg) and not entry[1].done():
                entry[1].set_result(list(entry[0].items.values()))
        elif root == "response" and cmd == "recordinfo":
            rec = self._records.get(msg.sn)
            if rec is not None and rec[0].add(msg) and not rec[1].done():
                rec[1].set_result(rec[0].items)
        elif root == "response":
            fut = self._waiters.get((cmd, msg.sn))
            if fut is not None and not fut.done():
                fut.set_result(msg)
        else:
            self._emit(UpperEvent("notify", dev.device_id, message=msg))

    async def _alarm_response(self, dev: Device, msg: ManscdpMessage) -> None:
        body = manscdp.build_result(
            "Alarm", msg.sn, msg.device_id, charset=self._interop_for(dev.device_id).charset
        )
        try:
            await self._send_message(dev, body)
        except GbError as exc:
            log.info("alarm response to %s failed: %s", dev.device_id, exc)

    def _apply_catalog(self, dev: Device, items: list[CatalogItem]) -> None:
        for item in items:
            if item.event.upper() == "DEL":
                dev.channels.pop(item.device_id, None)
                continue
            if item.event.upper() in ("ON", "OFF") and item.device_id in dev.channels and not item.name:
                dev.channels[item.device_id].status = item.event.upper()
                continue
            if item.event.upper() in ("ON", "OFF"):
                item.status = item.event.upper()
            dev.channels[item.device_id] = item

    async def _on_notify(self, stx: ServerTransaction) -> None:
        req = stx.request
        device_id = req.from_.uri.user or ""
        if not self.source_allowed(self._owner(device_id, stx.source), stx.source):
            await self._refuse_source(stx, self._owner(device_id, stx.source))
            return
        dev = self._seen(device_id, stx.source)
        if dev is None:
            await stx.respond(481)
            return
        try:
            msg = manscdp.parse(req.body)
        except ManscdpError:
            await stx.respond(400, "Bad MANSCDP")
            return
        await stx.respond(200)
        self._dispatch_manscdp(dev, msg, call_id=req.call_id)

    async def _on_bye(self, stx: ServerTransaction) -> None:
        session = self.sessions.pop(stx.request.call_id, None)
        await stx.respond(200 if session is not None else 481)
        if session is not None:
            session.closed = True
            await session.receiver.close()
            self._emit(UpperEvent("bye", session.device_id, call_id=session.dialog.call_id))

    # ---------------------------------------------------------------------------------- requests out

    def _uri(self, target_id: str) -> str:
        return f"sip:{target_id}@{self.config.domain}"

    def _device(self, device_id: str) -> Device:
        dev = self.devices.get(device_id)
        if dev is None:
            raise GbError(f"device {device_id} is not registered", 404)
        return dev

    async def _send_message(self, dev: Device, body: bytes, target_id: str | None = None) -> SipMessage:
        target = target_id or dev.device_id
        req = self.endpoint.build_request(
            "MESSAGE",
            self._uri(target),
            dest=dev.address,
            from_=f"<{self._uri(self.config.server_id)}>;tag={new_tag()}",
            to=f"<{self._uri(target)}>",
            body=body,
            content_type=manscdp.CONTENT_TYPE,
        )
        try:
            resp = await self.endpoint.request(req, dev.address)
        except SipTimeout as exc:
            raise GbError(f"MESSAGE to {target} timed out") from exc
        if (resp.status or 0) // 100 != 2:
            raise GbError(f"MESSAGE to {target} answered {resp.status}", resp.status)
        return resp

    async def query(
        self,
        device_id: str,
        cmd_type: str,
        target_id: str | None = None,
        within: float | None = None,
        **extra: object,
    ) -> ManscdpMessage:
        """Send a MANSCDP ``<Query>`` and wait for the matching ``<Response>`` (by CmdType and SN)."""
        dev = self._device(device_id)
        sn = self._sn.next()
        key = (cmd_type.lower(), sn)
        fut: asyncio.Future[ManscdpMessage] = asyncio.get_running_loop().create_future()
        self._waiters[key] = fut
        charset = self._interop_for(device_id).charset
        try:
            await self._send_message(
                dev, manscdp.build_query(cmd_type, sn, target_id or device_id, charset, **extra)
            )
            return await asyncio.wait_for(fut, within or self.config.query_timeout)
        except TimeoutError as exc:
            raise GbError(f"no {cmd_type} response from {device_id}") from exc
        finally:
            self._waiters.pop(key, None)

    async def query_catalog(self, device_id: str, within: float | None = None) -> list[CatalogItem]:
        """Catalog query; pages are aggregated until SumNum items arrived. Updates the device's channels
        and emits a ``catalog`` event. On timeout, returns what arrived if anything did."""
        dev = self._device(device_id)
        sn = self._sn.next()
        agg = CatalogAggregator()
        fut: asyncio.Future[list[CatalogItem]] = asyncio.get_running_loop().create_future()
        self._catalogs[sn] = (agg, fut)
        charset = self._interop_for(device_id).charset
        try:
            await self._send_message(dev, manscdp.build_query("Catalog", sn, device_id, charset))
            try:
                items = await asyncio.wait_for(fut, within or self.config.query_timeout)
            except TimeoutError as exc:
                if not agg.items:
                    raise GbError(f"no Catalog response from {device_id}") from exc
                log.warning("catalog of %s incomplete: %d of %s", device_id, len(agg.items), agg.sum_num)
                items = list(agg.items.values())
        finally:
            self._catalogs.pop(sn, None)
        self._apply_catalog(dev, items)
        self._emit(UpperEvent("catalog", device_id, items=items))
        return items

    async def query_device_info(self, device_id: str, target_id: str | None = None) -> dict[str, str]:
        msg = await self.query(device_id, "DeviceInfo", target_id)
        info = msg.fields()
        if target_id in (None, device_id):
            self._device(device_id).info = info
        return info

    async def query_device_status(self, device_id: str, target_id: str | None = None) -> dict[str, str]:
        return (await self.query(device_id, "DeviceStatus", target_id)).fields()

    async def query_presets(self, device_id: str, channel_id: str) -> list[manscdp.Preset]:
        return manscdp.parse_presets(await self.query(device_id, "PresetQuery", channel_id))

    async def query_ptz_position(self, device_id: str, channel_id: str) -> dict[str, str]:
        """GB/T 28181-2022 PTZPosition query."""
        return manscdp.parse_ptz_position(await self.query(device_id, "PTZPosition", channel_id))

    async def ptz(self, device_id: str, channel_id: str, command: str) -> None:
        """DeviceControl with a PTZCmd (``manscdp.ptz_cmd``) to a channel; done once the device's 200 came
        (PTZ control has no application-level response)."""
        dev = self._device(device_id)
        body = manscdp.build_device_control(
            self._sn.next(), channel_id, command, self._interop_for(device_id).charset
        )
        await self._send_message(dev, body, target_id=channel_id)

    async def query_records(
        self,
        device_id: str,
        channel_id: str,
        start: str,
        end: str,
        record_type: str = "all",
        within: float | None = None,
    ) -> list[manscdp.RecordItem]:
        """RecordInfo query (history recordings of a channel between two GB local times); pages are
        aggregated until SumNum items arrived. On timeout, returns what arrived if anything did."""
        dev = self._device(device_id)
        sn = self._sn.next()
        agg = manscdp.RecordAggregator()
        fut: asyncio.Future[list[manscdp.RecordItem]] = asyncio.get_running_loop().create_future()
        self._records[sn] = (agg, fut)
        body = manscdp.build_query(
            "RecordInfo",
            sn,
            channel_id,
            self._interop_for(device_id).charset,
            StartTime=start,
            EndTime=end,
            Secrecy=0,
            Type=record_type,
        )
        try:
            await self._send_message(dev, body, target_id=channel_id)
            try:
                return await asyncio.wait_for(fut, within or self.config.query_timeout)
            except TimeoutError as exc:
                if agg.sum_num is None:
                    raise GbError(f"no RecordInfo response from {device_id}") from exc
                log.warning("RecordInfo of %s incomplete: %d of %s", channel_id, len(agg.items), agg.sum_num)
                return list(agg.items)
        finally:
            self._records.pop(sn, None)

    # ----------------------------------------------------------------------------------------- media

    async def play(
        self,
        device_id: str,
        channel_id: str,
        transport: MediaTransport = "udp",
        *,
        playback: tuple[int, int] | None = None,
        download_speed: int | None = None,
    ) -> PlaySession:
        """Live (``playback=None``) or history INVITE; returns once the dialog is confirmed (ACK sent)."""
        if self.media is None:
            raise GbError("no media factory configured")
        dev = self._device(device_id)
        interop = self._interop_for(device_id)
        ssrc = make_ssrc(self.config.domain, self._ssrc_seq.next(), playback is not None)
        local_ip = self.config.media_host or self.config.host
        receiver = await self.media.open_receiver(
            ReceiveRequest(device_id, channel_id, transport, int(ssrc), local_ip, playback is not None)
        )
        offer = Sdp(
            origin_user=self.config.server_id,
            session="Play" if playback is None else "Playback",
            ip=local_ip,
            port=receiver.local_port,
            proto="RTP/AVP" if transport == "udp" else "TCP/RTP/AVP",
            payloads=list(DEFAULT_OFFER_MAP),
            rtpmap=dict(DEFAULT_OFFER_MAP),
            direction="recvonly",
            setup=None if transport == "udp" else transport.split("-")[1],
            ssrc=ssrc,
        )
        if playback is not None:
            offer.uri = f"{channel_id}:0"
            offer.start, offer.stop = playback
            if download_speed:
                offer.session, offer.download_speed = "Download", download_speed
        body = build_sdp(offer, rtpmap_first=interop.sdp_rtpmap_first)
        req = self.endpoint.build_request(
            "INVITE",
            self._uri(channel_id),
            dest=dev.address,
            from_=f"<{self._uri(self.config.server_id)}>;tag={new_tag()}",
            to=f"<{self._uri(channel_id)}>",
            contact_user=self.config.server_id,
            body=body,
            content_type="APPLICATION/SDP",
            extra=[("Subject", f"{channel_id}:{ssrc},{self.config.server_id}:0")],
        )
        try:
            resp = await self.endpoint.request(req, dev.address)
        except SipTimeout as exc:
            await receiver.close()
            raise GbError(f"INVITE {channel_id} timed out") from exc
        if (resp.status or 0) // 100 != 2:
            await receiver.close()
            raise GbError(f"INVITE {channel_id} answered {resp.status} {resp.reason}", resp.status)
        dialog = Dialog.from_uac(req, resp, dev.address)
        await self.endpoint.send_ack(dialog.ack(self.endpoint, req.cseq[0]), dev.address)
        try:
            answer = parse_sdp(resp.body)
        except SdpError as exc:
            await self._bye(dialog)
            await receiver.close()
            raise GbError(f"bad SDP answer from {channel_id}: {exc.reason}") from exc
        if answer.ssrc is not None and answer.ssrc != ssrc:
            log.info("device %s answered SSRC %s for offered %s", channel_id, answer.ssrc, ssrc)
        try:
            await receiver.start(answer.ip, answer.port, answer.ssrc_int)
        except Exception:
            await self._bye(dialog)
            await receiver.close()
            raise
        session = PlaySession(
            device_id,
            channel_id,
            answer.ssrc or ssrc,
            transport,
            dialog,
            receiver,
            offer,
            answer,
            req.cseq[0],
        )
        self.sessions[dialog.call_id] = session
        return session

    async def _bye(self, dialog: Dialog) -> SipMessage | None:
        try:
            return await self.endpoint.request(dialog.create_request(self.endpoint, "BYE"), dialog.peer)
        except SipTimeout:
            return None

    async def stop(self, session: PlaySession) -> None:
        """Send BYE and close the receiver."""
        self.sessions.pop(session.dialog.call_id, None)
        if not session.closed:
            session.closed = True
            await self._bye(session.dialog)
        await session.receiver.close()

    # ----------------------------------------------------------------------------------- subscribing

    async def subscribe(self, device_id: str, cmd_type: str = "Catalog", expires: int = 600) -> Subscription:
        """SUBSCRIBE with a ``<Query>`` body (Catalog or Alarm); NOTIFYs then arrive as events."""
        dev = self._device(device_id)
        interop = self._interop_for(device_id)
        body = manscdp.build_query(cmd_type, self._sn.next(), device_id, interop.charset)
        event = interop.subscribe_event if cmd_type == "Catalog" else cmd_type
        req = self.endpoint.build_request(
            "SUBSCRIBE",
            self._uri(device_id),
            dest=dev.address,
            from_=f"<{self._uri(self.config.server_id)}>;tag={new_tag()}",
            to=f"<{self._uri(device_id)}>",
            contact_user=self.config.server_id,
            body=body,
            content_type=manscdp.CONTENT_TYPE,
            extra=[("Event", event), ("Expires", str(expires))],
        )
        try:
            resp = await self.endpoint.request(req, dev.address)
        except SipTimeout as exc:
            raise GbError(f"SUBSCRIBE {device_id} timed out") from exc
        if (resp.status or 0) // 100 != 2:
            raise GbError(f"SUBSCRIBE {device_id} answered {resp.status}", resp.status)
        sub = Subscription(device_id, event, Dialog.from_uac(req, resp, dev.address), expires)
        self.subscriptions[req.call_id] = sub
        return sub

    async def unsubscribe(self, sub: Subscription) -> None:
        self.subscriptions.pop(sub.dialog.call_id, None)
        body = manscdp.build_query(
            sub.event if sub.event != "presence" else "Catalog", self._sn.next(), sub.device_id
        )
        req = sub.dialog.create_request(
            self.endpoint,
            "SUBSCRIBE",
            body=body,
            content_type=manscdp.CONTENT_TYPE,
            extra=[("Event", sub.event), ("Expires", "0")],
        )
        with contextlib.suppress(SipTimeout):
            await self.endpoint.request(req, sub.dialog.peer)
