"""Property and unit tests for the SIP codec, digest, MANSCDP and SDP parsers: malformed input is rejected
with a reason (SipParseError / ManscdpError / SdpError), never another exception; sizes are bounded."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.gb28181 import manscdp
from adapters.gb28181.manscdp import AlarmNotify, CatalogAggregator, CatalogItem, ManscdpError
from adapters.gb28181.sdp import Sdp, SdpError, build_sdp, make_ssrc, parse_sdp
from adapters.gb28181.sip.digest import (
    DigestClient,
    DigestServer,
    Ha1,
    compute_response,
    ha1_of,
    parse_auth_header,
)
from adapters.gb28181.sip.message import (
    MAX_MESSAGE_BYTES,
    SipParseError,
    frame_length,
    parse_message,
    parse_name_addr,
    parse_uri,
)

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

REGISTER = (
    b"REGISTER sip:34020000002000000001@3402000000 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:15070;rport;branch=z9hG4bK-1\r\n"
    b"From: <sip:34020000001320000001@3402000000>;tag=abc\r\n"
    b"To: <sip:34020000001320000001@3402000000>\r\n"
    b"Call-ID: 1-1@127.0.0.1\r\n"
    b"CSeq: 1 REGISTER\r\n"
    b"Contact: <sip:34020000001320000001@127.0.0.1:15070>\r\n"
    b"Expires: 3600\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def test_gb_uri_with_all_digit_host() -> None:
    uri = parse_uri("sip:34020000001320000001@3402000000")
    assert (uri.user, uri.host, uri.port) == ("34020000001320000001", "3402000000", None)
    na = parse_name_addr("<sip:34020000001320000001@127.0.0.1:15070;transport=udp>;tag=x1")
    assert na.tag == "x1" and na.uri.port == 15070 and na.uri.params["transport"] == "udp"
    assert str(parse_uri("sip:34020000001320000001@3402000000")) == "sip:34020000001320000001@3402000000"


def test_register_parses_and_roundtrips() -> None:
    msg = parse_message(REGISTER)
    assert msg.method == "REGISTER" and msg.cseq == (1, "REGISTER")
    assert msg.from_.uri.user == "34020000001320000001" and msg.from_.tag == "abc"
    assert msg.top_via.branch == "z9hG4bK-1" and "rport" in msg.top_via.params
    again = parse_message(msg.to_bytes())
    assert again.headers.get("contact") == msg.headers.get("Contact") and again.body == b""


def test_compact_headers_folding_bare_lf_and_gb_body() -> None:
    body = (
        '<?xml version="1.0" encoding="GB2312"?><Notify><CmdType>Keepalive</CmdType><SN>1</SN>'
        "<DeviceID>34020000001320000001</DeviceID><Name>一号门</Name></Notify>".encode("gb18030")
    )
    raw = (
        b"MESSAGE sip:34020000002000000001@3402000000 SIP/2.0\n"
        b"v: SIP/2.0/UDP 10.0.0.2:5060\n ;branch=z9hG4bKx\n"
        b"f: <sip:34020000001320000001@3402000000>;tag=1\n"
        b"t: <sip:34020000002000000001@3402000000>\n"
        b"i: abc\nCSEQ: 20 MESSAGE\nc: Application/MANSCDP+xml\n"
        b"l: " + str(len(body)).encode() + b"\n\n" + body
    )
    msg = parse_message(raw)
    assert msg.top_via.branch == "z9hG4bKx" and msg.call_id == "abc"
    assert msg.content_type == "application/manscdp+xml" and msg.body == body
    parsed = manscdp.parse(msg.body)
    assert parsed.cmd_type == "Keepalive" and parsed.get("Name") == "一号门"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"HELLO\r\n\r\n", "request line"),
        (REGISTER.replace(b"CSeq: 1 REGISTER", b"CSeq: x REGISTER"), "CSeq"),
        (REGISTER.replace(b"Call-ID: 1-1@127.0.0.1\r\n", b""), "Call-ID"),
        (REGISTER.replace(b"Content-Length: 0", b"Content-Length: 50"), "truncated"),
        (REGISTER.replace(b"Content-Length: 0", b"Content-Length: -1"), "Content-Length"),
        (b"x" * (MAX_MESSAGE_BYTES + 1), "too large"),
    ],
)
def test_malformed_messages_have_reasons(data: bytes, reason: str) -> None:
    with pytest.raises(SipParseError) as exc:
        parse_message(data)
    assert reason in exc.value.reason


@FAST
@given(st.binary(max_size=2048))
def test_random_bytes_never_crash_the_codec(data: bytes) -> None:
    try:
        parse_message(data)
    except SipParseError as exc:
        assert exc.reason


@FAST
@given(st.integers(0, len(REGISTER) - 1), st.binary(min_size=1, max_size=8), st.booleans())
def test_mutated_register_never_crashes(pos: int, junk: bytes, stream: bool) -> None:
    data = REGISTER[:pos] + junk + REGISTER[pos + len(junk) :]
    try:
        msg = parse_message(data, stream=stream)
    except SipParseError:
        return
    msg.to_bytes()


@FAST
@given(st.binary(max_size=4096))
def test_tcp_framing_is_bounded(data: bytes) -> None:
    try:
        n = frame_length(data)
    except SipParseError:
        return
    assert n is None or 0 < n <= len(data)


def test_tcp_framing_by_content_length() -> None:
    two = REGISTER + REGISTER
    assert frame_length(two) == len(REGISTER)
    assert frame_length(REGISTER[:-3]) is None
    with pytest.raises(SipParseError):
        frame_length(b"A" * 20_000)


# ------------------------------------------------------------------------------------------- digest


def test_digest_rfc2617_vector() -> None:
    resp = compute_response(
        username="Mufasa",
        realm="testrealm@host.com",
        password="Circle Of Life",
        method="GET",
        uri="/dir/index.html",
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        nc="00000001",
        cnonce="0a4f113b",
        qop="auth",
    )
    assert resp == "6629fae49393a05397450978507c4ef1"


@pytest.mark.parametrize("qop", [True, False])
def test_digest_client_and_server_agree(qop: bool) -> None:
    server = DigestServer("3402000000", qop=qop)
    client = DigestClient("34020000001320000001", "12345678")

    def answer() -> str:  # nonces are one-time: each check answers a new challenge
        return client.authorization(server.challenge(), "REGISTER", "sip:34020000002000000001@3402000000")

    auth = answer()
    assert server.verify(auth, "REGISTER", "12345678")
    assert server.check(auth, "REGISTER", "12345678") == "replay"  # used up
    assert not server.verify(answer(), "REGISTER", "wrong")
    assert DigestServer("3402000000").check(answer(), "REGISTER", "12345678") == "unknown"  # not its nonce
    # A registrar that stores HA1 instead of the password accepts the same answer, for its realm only.
    ha1 = ha1_of("34020000001320000001", "3402000000", "12345678")
    assert server.verify(answer(), "REGISTER", Ha1(ha1, "3402000000"))
    assert not server.verify(
        answer(), "REGISTER", Ha1(ha1_of("34020000001320000001", "3402000000", "x"), "3402000000")
    )
    assert not server.verify(answer(), "REGISTER", Ha1(ha1, "3402000001"))
    assert ha1 not in repr(Ha1(ha1, "3402000000"))


def test_digest_nonce_count_must_grow_and_expired_nonces_are_stale() -> None:
    server = DigestServer("3402000000", nonce_ttl=0.2)
    client = DigestClient("34020000001320000001", "12345678")
    challenge = server.challenge()
    first = client.authorization(challenge, "REGISTER", "sip:x@y")
    again = client.authorization(challenge, "REGISTER", "sip:x@y")  # nc=2 on the same nonce
    assert server.check(first, "REGISTER", "12345678") == "ok"
    assert server.check(again, "REGISTER", "12345678") == "replay"
    late = client.authorization(server.challenge(), "REGISTER", "sip:x@y")
    time.sleep(0.25)
    assert server.check(late, "REGISTER", "12345678") == "stale"
    assert server.check(late.replace('response="', 'response="0'), "REGISTER", "12345678") == "wrong"
    assert "stale=true" in server.challenge(stale=True)


@FAST
@given(st.text(max_size=300))
def test_auth_header_parser_never_crashes(text: str) -> None:
    try:
        parse_auth_header(text)
    except ValueError:
        pass
    assert not DigestServer("r").verify(text, "REGISTER", "pw")


# ------------------------------------------------------------------------------------------ manscdp


def test_catalog_paging_roundtrip_gb18030() -> None:
    items = [
        CatalogItem(f"340200000013100{i:05d}", f"通道{i}㐀", parent_id="34020000001320000001", ptz_type=1)
        for i in range(7)
    ]
    pages = manscdp.build_catalog_responses(9, "34020000001320000001", items, per_message=3)
    assert len(pages) == 3 and all(b"GB2312" in p for p in pages)
    agg = CatalogAggregator()
    done = [agg.add(manscdp.parse(p)) for p in reversed(pages)]
    assert done == [False, False, True]
    assert [agg.items[i.device_id].name for i in items] == [i.name for i in items]
    assert agg.items[items[0].device_id].ptz_type == 1


def test_mislabelled_utf8_and_lenient_forms() -> None:
    body = (
        '<?xml version="1.0" encoding="gb2312"?>\n<response><cmdtype>Catalog</cmdtype><sn>5</sn>'
        "<deviceid>1</deviceid><SumNum>1</SumNum><DeviceList Num='1'><item><deviceid>2</deviceid>"
        "<name>储罐区</name><info><PTZType>3</PTZType></info></item></DeviceList></response>"
    )
    msg = manscdp.parse(body.encode("utf-8"))
    assert (msg.cmd_type, msg.sn) == ("Catalog", 5)
    item = manscdp.catalog_items(msg)[0]
    assert item.name == "储罐区" and item.ptz_type == 3


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<Notify><SN>1</SN></Notify>",
        b"<Notify><CmdType>Keepalive</CmdType><SN>x</SN></Notify>",
        b"<Notify><CmdType>Keepalive",
        b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "y">]><Notify><CmdType>&x;</CmdType></Notify>',
        b"<a>" * 10 + b"x" * (300 * 1024),
    ],
)
def test_bad_manscdp_rejected_with_reason(body: bytes) -> None:
    with pytest.raises(ManscdpError) as exc:
        manscdp.parse(body)
    assert exc.value.reason


@FAST
@given(st.binary(max_size=2048))
def test_random_manscdp_never_crashes(data: bytes) -> None:
    try:
        manscdp.parse(data)
    except ManscdpError as exc:
        assert exc.reason


@FAST
@given(st.text(max_size=200), st.integers(0, 10**9))
def test_alarm_roundtrip(description: str, sn: int) -> None:
    description = "".join(
        ch for ch in description if ch.isprintable() and ch not in "\r\x85\u2028\u2029"
    ).strip()
    alarm = AlarmNotify("34020000001310000001", sn, 1, 5, 6, "2026-11-21T19:30:00", description)
    try:
        body = manscdp.build_alarm_notify(alarm)
    except UnicodeEncodeError:
        return  # surrogates cannot be encoded in GB18030
    back = manscdp.parse_alarm(manscdp.parse(body))
    assert (back.sn, back.method, back.alarm_type, back.description) == (sn, 5, 6, description)


# ---------------------------------------------------------------------------------------------- sdp


OFFER = (
    b"v=0\r\no=34020000002000000001 0 0 IN IP4 10.1.2.3\r\ns=Playback\r\nu=34020000001310000001:0\r\n"
    b"c=IN IP4 10.1.2.3\r\nt=1763700000 1763703600\r\nm=video 30000 TCP/RTP/AVP 96 98 97\r\n"
    b"a=recvonly\r\na=rtpmap:96 PS/90000\r\na=rtpmap:98 H264/90000\r\na=setup:passive\r\n"
    b"a=connection:new\r\na=downloadspeed:4\r\ny=1200000001\r\nf=v/2/4/25/1/4096a/1/8/1\r\n"
)


def test_gb_sdp_lines() -> None:
    sdp = parse_sdp(OFFER)
    assert (sdp.session, sdp.uri, sdp.start, sdp.stop) == (
        "Playback",
        "34020000001310000001:0",
        1763700000,
        1763703600,
    )
    assert (sdp.ip, sdp.port, sdp.transport, sdp.ssrc, sdp.ssrc_int) == (
        "10.1.2.3",
        30000,
        "tcp-passive",
        "1200000001",
        1200000001,
    )
    assert sdp.rtpmap[96] == "PS/90000" and sdp.download_speed == 4 and sdp.fmt.startswith("v/2")  # type: ignore[union-attr]
    again = parse_sdp(build_sdp(sdp))
    assert (again.ssrc, again.setup, again.uri, again.start) == (sdp.ssrc, "passive", sdp.uri, sdp.start)
    out = build_sdp(Sdp(ip="1.2.3.4", port=5, ssrc="0200000001"))
    assert out.endswith(b"\r\n") and out.index(b"a=recvonly") < out.index(b"a=rtpmap:96")
    assert make_ssrc("3402000000", 7) == "0200000007" and make_ssrc("3402000000", 7, playback=True)[0] == "1"


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"garbage",
        OFFER.replace(b"y=1200000001", b"y=abc"),
        OFFER.replace(b"m=video 30000", b"m=video 99999"),
        b"v=0\r\nm=video 1 RTP/AVP 96\r\n",
    ],
)
def test_bad_sdp_rejected(bad: bytes) -> None:
    with pytest.raises(SdpError):
        parse_sdp(bad)


@FAST
@given(st.binary(max_size=1024))
def test_random_sdp_never_crashes(data: bytes) -> None:
    try:
        parse_sdp(data)
    except SdpError as exc:
        assert exc.reason


@FAST
@given(st.lists(st.sampled_from(OFFER.split(b"\r\n")), max_size=20), st.binary(max_size=20))
def test_shuffled_sdp_lines_never_crash(lines: list[bytes], junk: bytes) -> None:
    try:
        parse_sdp(b"\r\n".join(lines) + junk)
    except SdpError:
        pass
