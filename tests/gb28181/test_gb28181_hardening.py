"""Issue 19 hardening of the GB/T 28181 roles, each case against a peer on real loopback sockets: our own
cascade role as the NVR (a different SIP stack path than the registrar it talks to), SIPp, or raw sockets.

- item 1: an NVR's alarms from different channels in the same second with the same type are all stored;
- item 2: REGISTER's Date is built in the site's zone, the zone alarm times are read in;
- item 3: one-time digest nonces (replay refused, stale=true), REGISTER failure limits, source binding;
- item 8: received/rport in the top Via, TCP retransmission on a new connection, 400 for malformed requests
  with throttled logs, the RTP port range, and no retry-timer wait after a device re-registers.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from adapters.gb28181.cascade import CascadeAgent, SuperiorConfig
from adapters.gb28181.sip.digest import DigestClient
from adapters.gb28181.sip.endpoint import SipEndpoint
from adapters.gb28181.sip.message import SipMessage, parse_message
from adapters.gb28181.sip.transaction import ServerTransaction, Timers
from adapters.gb28181.upper import UpperConfig, UpperPlatform
from gateway.api import create_app
from gateway.app import Gateway
from gateway.config.schema import load_config
from gateway.db import upgrade
from gateway.db.schema import Alarm
from gateway.gb28181.service import parse_gb_time
from tests.conftest import wait_until, write_config

pytestmark = pytest.mark.timeout(90)

SERVER_ID = "34020000002000000001"
DOMAIN = "3402000000"
NVR = "34020000001180000001"  # type 118: NVR
NVR_CHANNELS = ["34020000001310000011", "34020000001310000012"]
PASSWORD = "nvr-secret"  # noqa: S105
T = Timers().scaled(0.1)


def server_config(**extra: Any) -> dict[str, Any]:
    return {"server_id": SERVER_ID, "domain": DOMAIN, "host": "127.0.0.1", "port": 0, "tcp": False, **extra}


def gateway(tmp: Path, **sections: Any) -> Gateway:
    gw = Gateway(load_config(write_config(tmp, **sections), environ={}), analyse=False)
    upgrade(gw.db.engine)
    return gw


def nvr_agent(port: int, password: str = PASSWORD, transport: str = "UDP") -> CascadeAgent:
    """Our cascade role standing in for an NVR that registers to the gateway's upper platform."""
    sup = SuperiorConfig(
        "gateway",
        SERVER_ID,
        DOMAIN,
        "127.0.0.1",
        port,
        NVR,
        DOMAIN,
        password,
        transport=transport,  # type: ignore[arg-type]
        keepalive_interval=3600,
        alarm_timeout=5,
    )
    return CascadeAgent("127.0.0.1", 0, [sup], timers=T, tcp=transport == "TCP")


class RawPeer:
    """A device written with bare sockets: sends the bytes it is given and reads what comes back, so a
    test can replay a header, change its source port or resend on a new TCP connection."""

    def __init__(self, port: int, transport: str = "UDP", host: str = "127.0.0.1") -> None:
        self.server = ("127.0.0.1", port)
        self.transport = transport
        self.host = host  # another loopback address (127.0.0.2) is another host
        self.sock = self._open()

    def _open(self) -> socket.socket:
        if self.transport == "UDP":
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((self.host, 0))
        else:
            sock = socket.create_connection(self.server, timeout=5, source_address=(self.host, 0))
        sock.setblocking(False)
        return sock

    def reopen(self) -> None:
        """A new socket: a new source port (NAT rebinding), or a new TCP connection."""
        self.sock.close()
        self.sock = self._open()

    @property
    def local_port(self) -> int:
        return int(self.sock.getsockname()[1])

    async def send(self, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        if self.transport == "UDP":
            await loop.sock_sendto(self.sock, data, self.server)
        else:
            await loop.sock_sendall(self.sock, data)

    async def recv(self, within: float = 5.0, skip_provisional: bool = True) -> SipMessage:
        loop = asyncio.get_running_loop()
        while True:
            data = await asyncio.wait_for(loop.sock_recv(self.sock, 65535), within)
            if not data:
                raise ConnectionError("closed")
            msg = parse_message(data)
            if msg.is_request:
                continue  # the gateway's own requests (a Catalog query after REGISTER) are not answers
            if not (skip_provisional and msg.status is not None and msg.status < 200):
                return msg

    async def request(self, msg: SipMessage | bytes, within: float = 5.0) -> SipMessage:
        await self.send(msg if isinstance(msg, bytes) else msg.to_bytes())
        return await self.recv(within)

    def build(
        self,
        method: str,
        device: str = NVR,
        *,
        cseq: int = 1,
        call_id: str | None = None,
        body: bytes = b"",
        extra: list[tuple[str, str]] | None = None,
        via_host: str = "127.0.0.1",
    ) -> SipMessage:
        msg = SipMessage(method=method, uri=f"sip:{SERVER_ID}@{DOMAIN}")
        h = msg.headers
        branch = f"z9hG4bK{secrets.token_hex(6)}"
        h.add("Via", f"SIP/2.0/{self.transport} {via_host}:{self.local_port};rport;branch={branch}")
        h.add("From", f"<sip:{device}@{DOMAIN}>;tag={secrets.token_hex(4)}")
        h.add("To", f"<sip:{device}@{DOMAIN}>" if method == "REGISTER" else f"<sip:{SERVER_ID}@{DOMAIN}>")
        h.add("Call-ID", call_id or secrets.token_hex(8))
        h.add("CSeq", f"{cseq} {method}")
        h.add("Max-Forwards", "70")
        if method == "REGISTER":
            h.add("Contact", f"<sip:{device}@127.0.0.1:{self.local_port}>")
            h.add("Expires", "3600")
        for name, value in extra or []:
            h.add(name, value)
        if body:
            h.add("Content-Type", "Application/MANSCDP+xml")
        msg.body = body
        return msg

    async def register(
        self, device: str = NVR, password: str = PASSWORD, expect: int = 401
    ) -> tuple[SipMessage, SipMessage]:
        """REGISTER, then again with digest on the 401; returns (the authorised request, its answer)."""
        call_id = secrets.token_hex(8)
        first = await self.request(self.build("REGISTER", device, call_id=call_id))
        if first.status != 401:
            assert first.status == expect, first.summary()
            return first, first
        challenge = first.headers.get("WWW-Authenticate") or ""
        value = DigestClient(device, password).authorization(
            challenge, "REGISTER", f"sip:{SERVER_ID}@{DOMAIN}"
        )
        req = self.build("REGISTER", device, cseq=2, call_id=call_id, extra=[("Authorization", value)])
        return req, await self.request(req)

    def close(self) -> None:
        self.sock.close()


def upper_platform(passwords: dict[str, str], **kw: Any) -> UpperPlatform:
    kw.setdefault("tcp", False)
    return UpperPlatform(UpperConfig(SERVER_ID, DOMAIN, port=0, timers=T, **kw), passwords.get)


def nonce_of(resp: SipMessage) -> str:
    challenge = resp.headers.get("WWW-Authenticate") or ""
    return challenge.split('nonce="')[1].split('"')[0]


def keepalive(device: str = NVR, sn: int = 1) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n'
        f"<SN>{sn}</SN>\r\n<DeviceID>{device}</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n"
    ).encode()


def alarm(channel: str, sn: int = 1, when: str = "2026-11-21T19:30:00") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\r\n<Notify>\r\n<CmdType>Alarm</CmdType>\r\n'
        f"<SN>{sn}</SN>\r\n<DeviceID>{channel}</DeviceID>\r\n<AlarmPriority>1</AlarmPriority>\r\n"
        f"<AlarmMethod>5</AlarmMethod>\r\n<AlarmTime>{when}</AlarmTime>\r\n"
        "<AlarmDescription>injected</AlarmDescription>\r\n<Info>\r\n<AlarmType>6</AlarmType>\r\n</Info>\r\n"
        "</Notify>\r\n"
    ).encode()


# ------------------------------------------------------------------------------------------- item 1


async def test_nvr_alarms_of_two_channels_in_the_same_second_are_both_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aiohttp_client: Any
) -> None:
    monkeypatch.setenv("VIGIL_TEST_GB_NVR_PW", PASSWORD)
    gw = gateway(tmp_path, gb28181={"server": server_config(password_env="VIGIL_TEST_GB_NVR_PW")})
    client = await aiohttp_client(create_app(gw))
    upper = gw.gb28181.upper
    assert upper is not None
    agent = nvr_agent(upper.port)
    await agent.start(run_links=False)
    link = agent.link("gateway")
    try:
        assert await link.register()
        when = "2026-11-21T19:30:00"
        for channel in NVR_CHANNELS:  # same second, same method and type, two channels
            result = await link.send_alarm(channel, alarm_type=6, time=when, description="intrusion")
            assert result.delivered, result.reason
        # the first channel's alarm resent (the NVR unsure): still a repeat
        assert (await link.send_alarm(NVR_CHANNELS[0], alarm_type=6, time=when, description="x")).delivered

        def channels() -> list[str]:
            with gw.db.session() as s:
                return sorted(d["channel_id"] for d in s.scalars(select(Alarm.details)))

        await wait_until(lambda: len(channels()) >= 2, 10, "both channels' alarms stored")
        await asyncio.sleep(0.3)  # the resend, handled after them, adds nothing
        assert channels() == NVR_CHANNELS
    finally:
        await agent.close(unregister=False)
        await client.close()


# ------------------------------------------------------------------------------------------- item 2


async def test_register_date_is_in_the_site_zone_that_alarm_times_are_read_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aiohttp_client: Any
) -> None:
    """A UTC host with an Asia/Shanghai site: the Date a device sets its clock from is Shanghai time, so
    the AlarmTime it then writes is read back as the moment it happened (not 8 h early)."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    monkeypatch.setenv("VIGIL_TEST_GB_NVR_PW", PASSWORD)
    site = {"timezone": "Asia/Shanghai"}
    gw = gateway(tmp_path, site=site, gb28181={"server": server_config(password_env="VIGIL_TEST_GB_NVR_PW")})
    client = await aiohttp_client(create_app(gw))
    upper = gw.gb28181.upper
    assert upper is not None
    peer = RawPeer(upper.port)
    try:
        _, answer = await peer.register()
        assert answer.status == 200
        date = answer.headers.get("Date") or ""
        read = parse_gb_time(date, "Asia/Shanghai")
        assert read is not None, date
        assert abs((read - dt.datetime.now(dt.UTC)).total_seconds()) < 60, (date, read)
    finally:
        peer.close()
        await client.close()
        monkeypatch.delenv("TZ")
        time.tzset()


# ------------------------------------------------------------------------------------------- item 3


async def test_replayed_authorization_is_challenged_and_expired_nonce_is_stale() -> None:
    upper = upper_platform({NVR: PASSWORD}, nonce_ttl=0.5)
    await upper.start(liveness_loop=False)
    device, attacker = RawPeer(upper.port), RawPeer(upper.port)
    try:
        req, answer = await device.register()
        assert answer.status == 200
        # A captured Authorization header replayed in a new transaction from elsewhere: a fresh challenge.
        captured = req.headers.get("Authorization") or ""
        replay = attacker.build("REGISTER", cseq=9, extra=[("Authorization", captured)])
        resp = await attacker.request(replay)
        assert resp.status == 401, resp.summary()
        assert nonce_of(resp) not in captured and "stale" not in (resp.headers.get("WWW-Authenticate") or "")
        # The device answering a challenge after the nonce expired: stale=true, then the new one works.
        call_id = "late-answer"
        first = await device.request(device.build("REGISTER", call_id=call_id))
        await asyncio.sleep(0.6)
        client = DigestClient(NVR, PASSWORD)
        uri = f"sip:{SERVER_ID}@{DOMAIN}"
        value = client.authorization(first.headers.get("WWW-Authenticate") or "", "REGISTER", uri)
        late = device.build("REGISTER", cseq=2, call_id=call_id, extra=[("Authorization", value)])
        stale = await device.request(late)
        assert stale.status == 401 and "stale=true" in (stale.headers.get("WWW-Authenticate") or "")
        value = client.authorization(stale.headers.get("WWW-Authenticate") or "", "REGISTER", uri)
        fresh = device.build("REGISTER", cseq=3, call_id=call_id, extra=[("Authorization", value)])
        assert (await device.request(fresh)).status == 200
    finally:
        device.close()
        attacker.close()
        await upper.close()


async def test_register_failures_are_limited_per_device_and_per_address(
    caplog: pytest.LogCaptureFixture,
) -> None:
    other = "34020000001320000077"
    upper = upper_platform({NVR: PASSWORD, other: "other-pw"}, auth_failures=3, auth_cooldown=30)
    await upper.start(liveness_loop=False)
    guesser, elsewhere = RawPeer(upper.port), RawPeer(upper.port, host="127.0.0.2")
    caplog.set_level(logging.INFO, logger="adapters.gb28181.upper")
    try:
        for i in range(3):
            _, resp = await guesser.register(password=f"guess-{i}")
            assert (resp.status, resp.reason) == (403, "Wrong Password")
        for _ in range(3):  # now even the right password is refused for the cool-down
            _, resp = await guesser.register(expect=403)
            assert (resp.status, resp.reason) == (403, "Too Many Failures"), resp.summary()
            assert 0 < int(resp.headers.get("Retry-After") or "0") <= 30
        _, resp = await guesser.register(other, "other-pw", expect=403)  # same address, another device
        assert resp.reason == "Too Many Failures"
        _, resp = await elsewhere.register(expect=403)  # the guessed device id from another address
        assert resp.reason == "Too Many Failures"
        _, resp = await elsewhere.register(other, "other-pw")  # neither blocked
        assert resp.status == 200 and other in upper.devices and NVR not in upper.devices
        blocks = [r.getMessage() for r in caplog.records if "REGISTER failures" in r.getMessage()]
        assert len(blocks) == 2, blocks  # the device and the address, once each, not per refused attempt
        assert "device " + NVR in blocks[0] and "address 127.0.0.1" in blocks[1]
    finally:
        guesser.close()
        elsewhere.close()
        await upper.close()


async def test_messages_are_tied_to_the_registered_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aiohttp_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The default (gb28181.bind_source: strict): alarms and keepalives From a registered device id are
    taken only from the host it registered from; the port may change (NAT rebinding)."""
    monkeypatch.setenv("VIGIL_TEST_GB_NVR_PW", PASSWORD)
    gw = gateway(tmp_path, gb28181={"server": server_config(password_env="VIGIL_TEST_GB_NVR_PW")})
    client = await aiohttp_client(create_app(gw))
    upper = gw.gb28181.upper
    assert upper is not None and upper.config.bind_source == "strict"
    device, intruder = RawPeer(upper.port), RawPeer(upper.port, host="127.0.0.2")
    caplog.set_level(logging.INFO, logger="adapters.gb28181.upper")

    def stored() -> int:
        with gw.db.session() as s:
            return len(list(s.scalars(select(Alarm.id))))

    try:
        assert (await device.register())[1].status == 200
        for body in (alarm(NVR_CHANNELS[0], 1), keepalive(NVR, 2)):
            resp = await intruder.request(intruder.build("MESSAGE", body=body))
            assert (resp.status, resp.reason) == (403, "Source Not Registered")
        notify = intruder.build("NOTIFY", body=keepalive(NVR, 3), extra=[("Event", "presence")])
        assert (await intruder.request(notify)).status == 403
        refusals = [r.getMessage() for r in caplog.records if "refused: device" in r.getMessage()]
        assert len(refusals) == 1 and "127.0.0.2" in refusals[0], refusals  # once a minute per source
        assert upper.devices[NVR].address.host == "127.0.0.1"
        device.reopen()  # the NAT gave the device a new port: still its host
        assert (await device.request(device.build("MESSAGE", body=keepalive(NVR, 4)))).status == 200
        assert (await device.request(device.build("MESSAGE", body=alarm(NVR_CHANNELS[1], 5)))).status == 200
        await wait_until(lambda: stored() == 1, 10, "the registered device's alarm stored")
        with gw.db.session() as s:
            assert [d["channel_id"] for d in s.scalars(select(Alarm.details))] == [NVR_CHANNELS[1]]
    finally:
        device.close()
        intruder.close()
        await client.close()


@pytest.mark.parametrize(("mode", "new_port", "other_host"), [("port", 403, 403), ("off", 200, 200)])
async def test_bind_source_modes(mode: str, new_port: int, other_host: int) -> None:
    upper = upper_platform({NVR: PASSWORD}, bind_source=mode)
    await upper.start(liveness_loop=False)
    device, intruder = RawPeer(upper.port), RawPeer(upper.port, host="127.0.0.2")
    try:
        assert (await device.register())[1].status == 200
        assert (await device.request(device.build("MESSAGE", body=keepalive()))).status == 200
        device.reopen()
        assert (await device.request(device.build("MESSAGE", body=keepalive()))).status == new_port
        assert (await intruder.request(intruder.build("MESSAGE", body=keepalive()))).status == other_host
    finally:
        device.close()
        intruder.close()
        await upper.close()


# ------------------------------------------------------------------------------------------- item 8


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
async def test_responses_fill_received_and_rport_in_the_top_via(transport: str) -> None:
    upper = upper_platform({NVR: PASSWORD}, tcp=True)
    await upper.start(liveness_loop=False)
    peer = RawPeer(upper.port, transport)
    try:
        # behind a NAT: the device writes its private address in Via and asks for rport
        req = peer.build("OPTIONS", via_host="192.168.1.64")
        resp = await peer.request(req)
        via = resp.top_via
        assert resp.status == 200 and via.host == "192.168.1.64"
        assert via.params.get("received") == "127.0.0.1" and via.params.get("rport") == str(peer.local_port)
        assert via.branch == req.top_via.branch
        _, challenge = await peer.register(expect=401)  # the 401 of a REGISTER too
        assert challenge.top_via.params.get("rport") == str(peer.local_port)
    finally:
        peer.close()
        await upper.close()


async def test_request_retransmitted_on_a_new_tcp_connection_is_answered_there() -> None:
    release = asyncio.Event()
    ep = SipEndpoint("127.0.0.1", 0, udp=False, timers=Timers())

    async def handler(stx: ServerTransaction) -> None:
        if stx.request.method == "MESSAGE":
            await release.wait()  # still working on it when the device reconnects
        await stx.respond(200)

    ep.handler = handler
    await ep.start()
    peer = RawPeer(ep.port, "TCP")
    try:
        # answered already: the cached answer goes to the new connection
        options = peer.build("OPTIONS").to_bytes()
        assert (await peer.request(options)).status == 200
        peer.reopen()
        resent = await peer.request(options)
        assert resent.status == 200 and resent.top_via.params.get("rport") == str(peer.local_port)
        # not answered yet: the answer, when it comes, goes to the connection the request came on last
        message = peer.build("MESSAGE", body=keepalive()).to_bytes()
        await peer.send(message)
        await asyncio.sleep(0.1)
        peer.reopen()
        await peer.send(message)
        await asyncio.sleep(0.1)
        release.set()
        assert (await peer.recv()).status == 200
    finally:
        peer.close()
        await ep.close()


async def test_malformed_requests_get_400_and_their_warnings_are_throttled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    upper = upper_platform({NVR: PASSWORD})
    await upper.start(liveness_loop=False)
    upper.endpoint.transport.throttle.period = 0.5  # one warning per source per period (60 s by default)
    peer = RawPeer(upper.port)
    caplog.set_level(logging.WARNING, logger="adapters.gb28181.sip")
    try:
        for i in range(20):
            bad = (
                peer.build("MESSAGE", body=keepalive(sn=i))
                .to_bytes()
                .replace(b"CSeq: 1 MESSAGE", b"CSeq: x1")
            )
            resp = await peer.request(bad)
            assert resp.status == 400 and "CSeq" in resp.reason, resp.summary()
            assert resp.top_via.params.get("received") == "127.0.0.1"
        await peer.send(b"\x00\xffnot sip at all\r\n\r\n")  # nothing to answer
        with pytest.raises(TimeoutError):
            await peer.recv(within=0.3)
        warnings = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
        assert len(warnings) == 1, warnings
        await asyncio.sleep(0.5)
        assert (await peer.request(bad)).status == 400
        warnings = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
        assert len(warnings) == 2 and "20 more from 127.0.0.1" in warnings[1], warnings
        assert (await peer.request(peer.build("OPTIONS"))).status == 200  # and the endpoint still serves
    finally:
        peer.close()
        await upper.close()


async def test_rtp_port_range_is_used_for_every_media_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aiohttp_client: Any
) -> None:
    from adapters.gb28181.media import MediaError
    from adapters.gb28181.media_api import ReceiveRequest, SendRequest
    from tests.gb28181.sipp import free_port

    low = free_port()
    gw = gateway(tmp_path, gb28181={"server": server_config(), "rtp_ports": [low, low + 2]})
    client = await aiohttp_client(create_app(gw))
    media = gw.gb28181.media
    assert media is not None and media.port_range == (low, low + 2)
    upper = gw.gb28181.upper
    assert upper is not None and upper.media is media
    opened: list[Any] = []
    try:
        for transport in ("udp", "udp"):
            request = ReceiveRequest(NVR, NVR_CHANNELS[0], transport, 1, "127.0.0.1")
            rx = await media.open_receiver(request)
            opened.append(rx)
        media.feeds = lambda channel: object()  # type: ignore[assignment,return-value]
        tx = await media.open_sender(
            SendRequest("park", NVR_CHANNELS[0], "udp", 1, "127.0.0.1", 9, "127.0.0.1")
        )
        opened.append(tx)
        assert sorted(o.local_port for o in opened) == [low, low + 1, low + 2]
        with pytest.raises(MediaError, match="rtp_ports"):  # the range's UDP ports are used up
            await media.open_receiver(ReceiveRequest(NVR, NVR_CHANNELS[1], "udp", 2, "127.0.0.1"))
        tcp = await media.open_receiver(ReceiveRequest(NVR, NVR_CHANNELS[1], "tcp-passive", 3, "127.0.0.1"))
        opened.append(tcp)
        assert low <= tcp.local_port <= low + 2
    finally:
        for o in opened:
            await o.close()
        await client.close()


async def next_request(peer: RawPeer, method: str, within: float) -> SipMessage:
    """The next request of ``method`` the gateway sends the peer (others, e.g. its Catalog query or an
    ACK, are read past unanswered)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        data = await asyncio.wait_for(loop.sock_recv(peer.sock, 65535), max(0.01, deadline - loop.time()))
        msg = parse_message(data)
        if msg.is_request and msg.method == method:
            return msg


async def test_pending_invite_goes_at_once_when_the_device_registers_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aiohttp_client: Any
) -> None:
    """The live INVITE of an analysed channel failed (the device answered 503); the retry timer is 30 s,
    but the device registering again (it restarted: a new Call-ID) sends the INVITE at once."""
    from adapters.gb28181.sip.message import make_response
    from gateway.config.schema import CameraConfig

    monkeypatch.setenv("VIGIL_TEST_GB_NVR_PW", PASSWORD)
    server = server_config(password_env="VIGIL_TEST_GB_NVR_PW", retry_s=30)
    gw = gateway(tmp_path, gb28181={"server": server})
    client = await aiohttp_client(create_app(gw))
    upper = gw.gb28181.upper
    assert upper is not None
    peer = RawPeer(upper.port)
    try:
        assert (await peer.register())[1].status == 200
        camera = CameraConfig(id="gate-x", name="Gate", url=f"gb28181://{NVR}/{NVR_CHANNELS[0]}")
        gw.gb28181.analyse(camera, {})
        invite = await next_request(peer, "INVITE", 10)
        await peer.send(make_response(invite, 503, "Service Unavailable", to_tag="busy").to_bytes())
        await wait_until(lambda: not any(t.done() for t in gw.gb28181._players.values()), 1, "playing")
        assert (await peer.register())[1].status == 200  # the device restarted and registers afresh
        started = time.monotonic()
        again = await next_request(peer, "INVITE", 10)  # not after the 30 s retry timer
        assert again.call_id != invite.call_id and time.monotonic() - started < 10
        await peer.send(make_response(again, 503, "Service Unavailable", to_tag="busy").to_bytes())
    finally:
        await gw.gb28181.stop_playing("gate-x")
        peer.close()
        await client.close()
