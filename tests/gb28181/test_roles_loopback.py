"""Both roles over real loopback sockets: our cascade (lower platform) registered to our upper platform,
over UDP and TCP; plus transaction-layer behaviour against a raw UDP peer."""

from __future__ import annotations

import asyncio
import socket

import pytest

from adapters.gb28181.cascade import CascadeAgent, SuperiorConfig
from adapters.gb28181.interop import Interop
from adapters.gb28181.manscdp import CatalogItem
from adapters.gb28181.sip.endpoint import SipEndpoint
from adapters.gb28181.sip.message import SipMessage, parse_message
from adapters.gb28181.sip.transaction import ServerTransaction, SipTimeout, Timers
from adapters.gb28181.sip.transport import Address
from adapters.gb28181.upper import UpperConfig, UpperEvent, UpperPlatform
from tests.gb28181.fake_media import FakeReceiverFactory, FakeRelayFactory

pytestmark = pytest.mark.timeout(60)

UPPER_ID = "34020000002000000001"
LOWER_ID = "34020000002000000009"
T = Timers().scaled(0.1)
CHANNELS = [
    CatalogItem(f"340200000013100001{i:02d}", f"Cam {i}", parent_id=LOWER_ID, ptz_type=3) for i in range(9)
]


async def next_event(q: asyncio.Queue[UpperEvent], kind: str) -> UpperEvent:
    async def _wait() -> UpperEvent:
        while True:
            ev = await q.get()
            if ev.kind == kind:
                return ev

    return await asyncio.wait_for(_wait(), 10)


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
async def test_cascade_to_upper(transport: str) -> None:
    media = FakeReceiverFactory()
    upper = UpperPlatform(
        UpperConfig(UPPER_ID, "3402000000", port=0, timers=T, keepalive_interval=3600),
        {LOWER_ID: "s3cret"}.get,
        media,
    )
    await upper.start()
    relay = FakeRelayFactory({c.device_id for c in CHANNELS})
    sup = SuperiorConfig(
        "park",
        UPPER_ID,
        "3402000000",
        "127.0.0.1",
        upper.port,
        LOWER_ID,
        "3402000000",
        "s3cret",
        transport=transport,  # type: ignore[arg-type]
        channels=CHANNELS,
        keepalive_interval=3600,
        alarm_timeout=5,
        interop=Interop(charset="GB18030", catalog_page_size=2),
    )
    agent = CascadeAgent("127.0.0.1", 0, [sup], relay, timers=T)
    await agent.start(run_links=False)
    link = agent.link("park")
    try:
        assert await link.register()
        await next_event(upper.events, "registered")
        assert upper.devices[LOWER_ID].address.transport == transport
        assert await link.send_keepalive()
        items = await upper.query_catalog(LOWER_ID)
        assert sorted(i.device_id for i in items) == [c.device_id for c in CHANNELS]
        info = await upper.query_device_info(LOWER_ID)
        assert info["Channel"] == str(len(CHANNELS))
        status = await upper.query_device_status(LOWER_ID)
        assert status["Online"] == "ONLINE"
        # live view: upper INVITEs, the cascade answers through the relay, ACK starts it
        tcp = transport == "TCP"
        session = await upper.play(LOWER_ID, CHANNELS[3].device_id, "tcp-passive" if tcp else "udp")
        sender = relay.opened[0]
        assert sender.request.ssrc == int(session.offer.ssrc or 0)
        assert sender.request.transport == ("tcp-active" if tcp else "udp")
        assert sender.request.remote_port == media.opened[0].local_port
        assert session.answer.ssrc == session.offer.ssrc and session.answer.port == sender.local_port
        for _ in range(100):
            if sender.started:
                break
            await asyncio.sleep(0.01)
        assert sender.started
        await upper.stop(session)
        assert sender.closed and media.opened[0].closed
        # unknown channel -> 404
        with pytest.raises(Exception, match="404"):
            await upper.play(LOWER_ID, "34020000001310009999")
        # alarm up: 200 + MANSCDP Response
        result = await link.send_alarm(CHANNELS[1].device_id, alarm_type=6, description="安全帽 helmet")
        assert result.delivered and result.reason == "Response OK"
        alarm = (await next_event(upper.events, "alarm")).alarm
        assert alarm is not None and alarm.description == "安全帽 helmet" and alarm.method == 5
        # catalog subscription and NOTIFY of a change
        sub = await upper.subscribe(LOWER_ID, "Catalog", 600)
        changed = CatalogItem(CHANNELS[0].device_id, event="OFF")
        for _ in range(100):
            if link.subscriptions:
                break
            await asyncio.sleep(0.01)
        assert await link.notify_catalog([changed]) == 1
        ev = await next_event(upper.events, "catalog_notify")
        assert (
            ev.items[0].event == "OFF"
            and upper.devices[LOWER_ID].channels[CHANNELS[0].device_id].status == "OFF"
        )
        await upper.unsubscribe(sub)
        # unregister
        await link.unregister()
        await next_event(upper.events, "unregistered")
    finally:
        await agent.close(unregister=False)
        await upper.close()


async def test_alarm_without_response_fails_or_passes_per_switch() -> None:
    """A superior that answers 200 but never sends the MANSCDP Response."""
    ep = SipEndpoint("127.0.0.1", 0, tcp=False, timers=T)

    async def handler(stx: ServerTransaction) -> None:
        await stx.respond(200)

    ep.handler = handler
    await ep.start()
    results = []
    for needs in (True, False):
        sup = SuperiorConfig(
            "x",
            UPPER_ID,
            "3402000000",
            "127.0.0.1",
            ep.port,
            LOWER_ID,
            "3402000000",
            "pw",
            interop=Interop(alarm_needs_response=needs),
            alarm_timeout=0.3,
        )
        agent = CascadeAgent("127.0.0.1", 0, [sup], timers=T, tcp=False)
        await agent.start(run_links=False)
        results.append(await agent.link("x").send_alarm(CHANNELS[0].device_id, alarm_type=5, description="d"))
        await agent.close(unregister=False)
    await ep.close()
    assert not results[0].delivered and "Response" in results[0].reason
    assert results[1].delivered


async def test_client_retransmits_over_udp_and_times_out() -> None:
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.setblocking(False)
    dest = Address("UDP", "127.0.0.1", peer.getsockname()[1])
    ep = SipEndpoint("127.0.0.1", 0, tcp=False, timers=T)
    await ep.start()
    loop = asyncio.get_running_loop()
    try:
        req = ep.build_request(
            "MESSAGE",
            "sip:1@2",
            dest=dest,
            from_="<sip:a@b>;tag=1",
            to="<sip:c@d>",
            body=b"x",
            content_type="text/plain",
        )
        task = asyncio.ensure_future(ep.request(req, dest))
        first = await loop.sock_recv(peer, 65535)
        second = await loop.sock_recv(peer, 65535)  # a retransmission, same branch
        assert parse_message(first).top_via.branch == parse_message(second).top_via.branch
        resp = SipMessage(status=200, reason="OK", headers=parse_message(first).headers.copy())
        peer.sendto(resp.to_bytes(), ("127.0.0.1", ep.port))
        assert (await task).status == 200
        req2 = ep.build_request("MESSAGE", "sip:1@2", dest=dest, from_="<sip:a@b>;tag=1", to="<sip:c@d>")
        with pytest.raises(SipTimeout):
            await ep.request(req2, dest)
    finally:
        await ep.close()
        peer.close()


async def test_server_answers_retransmission_from_cache() -> None:
    calls = 0
    ep = SipEndpoint("127.0.0.1", 0, tcp=False, timers=T)

    async def handler(stx: ServerTransaction) -> None:
        nonlocal calls
        calls += 1
        await stx.respond(200)

    ep.handler = handler
    await ep.start()
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.setblocking(False)
    loop = asyncio.get_running_loop()
    try:
        req = ep.build_request(
            "OPTIONS", "sip:x@y", dest=Address("UDP", "127.0.0.1", 1), from_="<sip:a@b>;tag=1", to="<sip:c@d>"
        )
        for _ in range(2):
            peer.sendto(req.to_bytes(), ("127.0.0.1", ep.port))
            resp = parse_message(await loop.sock_recv(peer, 65535))
            assert resp.status == 200
        assert calls == 1
        # garbage is dropped without killing the endpoint
        peer.sendto(b"\x00\xffnot sip", ("127.0.0.1", ep.port))
        req3 = ep.build_request(
            "OPTIONS", "sip:x@y", dest=Address("UDP", "127.0.0.1", 1), from_="<sip:a@b>;tag=2", to="<sip:c@d>"
        )
        peer.sendto(req3.to_bytes(), ("127.0.0.1", ep.port))
        assert parse_message(await loop.sock_recv(peer, 65535)).status == 200
        assert ep.transport.parse_errors == 1 and calls == 2
    finally:
        await ep.close()
        peer.close()


async def test_background_registration_keepalive_and_offline() -> None:
    upper = UpperPlatform(
        UpperConfig(
            UPPER_ID, "3402000000", port=0, tcp=False, timers=T, keepalive_interval=1.0, keepalive_misses=3
        ),
        {LOWER_ID: "pw"}.get,
    )
    await upper.start(liveness_loop=False)
    sup = SuperiorConfig(
        "park",
        UPPER_ID,
        "3402000000",
        "127.0.0.1",
        upper.port,
        LOWER_ID,
        "3402000000",
        "pw",
        keepalive_interval=0.05,
    )
    agent = CascadeAgent("127.0.0.1", 0, [sup], timers=T, tcp=False)
    await agent.start()  # registers and keeps alive in the background
    try:
        await next_event(upper.events, "registered")
        await next_event(upper.events, "keepalive")
        await next_event(upper.events, "keepalive")
        assert upper.devices[LOWER_ID].online
        await agent.close()  # unregisters
        await next_event(upper.events, "unregistered")
        assert LOWER_ID not in upper.devices
    finally:
        await agent.close(unregister=False)
        await upper.close()


async def test_missed_keepalives_mark_offline() -> None:
    upper = UpperPlatform(
        UpperConfig(
            UPPER_ID, "3402000000", port=0, tcp=False, timers=T, keepalive_interval=60, keepalive_misses=3
        ),
        {LOWER_ID: "pw"}.get,
    )
    await upper.start(liveness_loop=False)
    agent = CascadeAgent(
        "127.0.0.1",
        0,
        [SuperiorConfig("p", UPPER_ID, "3402000000", "127.0.0.1", upper.port, LOWER_ID, "3402000000", "pw")],
        timers=T,
        tcp=False,
    )
    await agent.start(run_links=False)
    try:
        assert await agent.link("p").register()
        dev = upper.devices[LOWER_ID]
        assert upper.check_liveness(dev.last_seen + 179) == []
        assert upper.check_liveness(dev.last_seen + 181) == [LOWER_ID]
        await next_event(upper.events, "offline")
        assert await agent.link("p").send_keepalive()
        await next_event(upper.events, "online")
    finally:
        await agent.close(unregister=False)
        await upper.close()


async def test_playback_invite_and_alarm_via_subscription_notify() -> None:
    media = FakeReceiverFactory()
    upper = UpperPlatform(
        UpperConfig(UPPER_ID, "3402000000", port=0, tcp=False, timers=T), {LOWER_ID: "pw"}.get, media
    )
    await upper.start(liveness_loop=False)
    relay = FakeRelayFactory({c.device_id for c in CHANNELS})
    sup = SuperiorConfig(
        "p",
        UPPER_ID,
        "3402000000",
        "127.0.0.1",
        upper.port,
        LOWER_ID,
        "3402000000",
        "pw",
        channels=CHANNELS,
        interop=Interop(alarm_via="NOTIFY"),
        alarm_timeout=5,
    )
    agent = CascadeAgent("127.0.0.1", 0, [sup], relay, timers=T, tcp=False)
    await agent.start(run_links=False)
    link = agent.link("p")
    try:
        assert await link.register()
        session = await upper.play(
            LOWER_ID, CHANNELS[2].device_id, "tcp-active", playback=(1763700000, 1763703600)
        )
        req = relay.opened[0].request
        assert (req.session, req.start, req.stop, req.transport) == (
            "Playback",
            1763700000,
            1763703600,
            "tcp-passive",
        )
        assert session.offer.ssrc is not None and session.offer.ssrc.startswith("1")
        assert session.answer.setup == "passive" and session.offer.uri == f"{CHANNELS[2].device_id}:0"
        await upper.stop(session)
        await upper.subscribe(LOWER_ID, "Alarm", 600)
        for _ in range(100):
            if link.subscriptions:
                break
            await asyncio.sleep(0.01)
        result = await link.send_alarm(CHANNELS[0].device_id, alarm_type=2, description="smoke")
        assert result.delivered, result.reason
        alarm = (await next_event(upper.events, "alarm")).alarm
        assert alarm is not None and alarm.alarm_type == 2
    finally:
        await agent.close(unregister=False)
        await upper.close()
