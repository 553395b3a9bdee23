"""Uplink field maps, signing/envelopes, and the HTTP and MQTT targets against real loopback peers."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from pydantic import ValidationError

from tests.peers.http_receiver import HttpReceiver
from tests.peers.mosquitto import MosquittoBroker, find_mosquitto
from tests.peers.ports import free_port
from uplink.fieldmap import FieldMap
from uplink.records import UplinkMessage
from uplink.signing import (
    EnvelopeError,
    NonceCache,
    SignatureError,
    decrypt,
    encrypt,
    sign_headers,
    verify,
)
from uplink.targets.base import Outcome
from uplink.targets.http import HttpTarget, HttpTargetSettings
from uplink.targets.mqtt import MqttTarget, MqttTargetSettings, topic_for

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4 + b"\xff\xd9"
SECRET = "s3cret-hmac-key"


def record() -> dict[str, Any]:
    return {
        "id": "01JALARM0000000000000000AA",
        "revision": 2,
        "action": "raised",
        "type": {"code": "helmet", "zh": "未戴安全帽", "en": "no helmet"},
        "scene": "ppe",
        "status": "open",
        "priority": 1,
        "score": 0.87,
        "site": {"name": "Plant 1", "site_code": "S001", "enterprise_code": "91140000X"},
        "camera": {"id": "cam-7", "name": "Gate", "gb_channel_id": "14010000001320000123"},
        "occurred_at": "2026-01-01T02:03:04+00:00",
        "cleared_at": None,
        "evidence": [{"kind": "snapshot", "sha256": "ab" * 32, "media_type": "image/jpeg", "size": 1030}],
    }


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    path = tmp_path / "snapshot.jpg"
    path.write_bytes(JPEG)
    return path


@pytest.fixture
def message(snapshot: Path) -> UplinkMessage:
    return UplinkMessage("t", "01JALARM0000000000000000AA", 2, record(), {"snapshot": snapshot}, sequence=5)


# --- field maps ---------------------------------------------------------------------------------------


def test_default_map_is_the_record_plus_base64_snapshot(message: UplinkMessage) -> None:
    body = FieldMap.default().render(message).body
    assert {k: v for k, v in body.items() if k != "snapshot"} == record()
    assert base64.b64decode(body["snapshot"]) == JPEG  # pure base64, no data: prefix


MAP_YAML = """
fields:
  alarmId: $idempotency_key
  device.channel: camera.gb_channel_id
  device.name: camera.name
  platform: {const: vigil}
  localTime: {source: occurred_at, time: {format: strftime, pattern: "%Y-%m-%d %H:%M:%S",
                                          timezone: Asia/Shanghai}}
  isoTime: {source: occurred_at, time: {timezone: America/New_York}}
  epochS: {source: occurred_at, time: {format: epoch_s}}
  epochMs: {source: occurred_at, time: {format: epoch_ms}}
  alarmType: {source: type.code, codes: types}
  otherType: {source: scene, codes: types}
  level: {source: priority, codes: {values: {1: high, 2: low}}}
code_tables:
  types: {values: {helmet: "01", smoking: "02"}, default: "99"}
"""


def test_map_renames_nests_formats_times_and_codes(message: UplinkMessage) -> None:
    body = FieldMap.from_yaml(MAP_YAML).render(message).body
    assert body == {
        "alarmId": "01JALARM0000000000000000AA:2",
        "device": {"channel": "14010000001320000123", "name": "Gate"},
        "platform": "vigil",
        "localTime": "2026-01-01 10:03:04",
        "isoTime": "2025-12-31T21:03:04-05:00",
        "epochS": 1767232984,
        "epochMs": 1767232984000,
        "alarmType": "01",
        "otherType": "99",
        "level": "high",
    }


def test_missing_sources_and_files_become_null(snapshot: Path) -> None:
    fmap = FieldMap.model_validate(
        {
            "fields": {
                "gone": "camera.location.building",
                "cleared": {"source": "cleared_at", "time": {"format": "epoch_ms"}},
                "bad": {"source": "message", "time": {"format": "iso"}},
                "fallback": {"source": "nowhere", "default": "n/a"},
                "clear": {"picture": "clear_snapshot"},
                "byUrl": {"picture": "clip", "encoding": "url"},
                "firstKind": "evidence.0.kind",
                "outOfRange": "evidence.5.kind",
            },
            "picture_url": "https://gw.example/evidence/{sha256}",
        }
    )
    body = dict(record(), message="not a time")
    msg = UplinkMessage(
        "t", "A", 1, body, {"snapshot": snapshot, "clear_snapshot": snapshot.parent / "no.jpg"}
    )
    assert fmap.render(msg).body == {
        "gone": None,
        "cleared": None,
        "bad": None,
        "fallback": "n/a",
        "clear": None,
        "byUrl": None,
        "firstKind": "snapshot",
        "outOfRange": None,
    }
    assert FieldMap.default().render(UplinkMessage("t", "A", 1, {}, {})).body == {"snapshot": None}


def test_picture_as_data_url_and_url(message: UplinkMessage) -> None:
    fmap = FieldMap.model_validate(
        {
            "fields": {
                "inline": {"picture": "snapshot", "encoding": "data_url"},
                "link": {"picture": "snapshot", "encoding": "url"},
            },
            "picture_url": "https://gw.example/evidence/{kind}/{sha256}.jpg",
        }
    )
    body = fmap.render(message).body
    assert body["inline"] == "data:image/jpeg;base64," + base64.b64encode(JPEG).decode()
    assert body["link"] == f"https://gw.example/evidence/snapshot/{'ab' * 32}.jpg"


def test_envelope_wraps_an_array_with_outer_fields(message: UplinkMessage) -> None:
    fmap = FieldMap.model_validate(
        {
            "fields": {"id": "id"},
            "envelope": {
                "array": True,
                "wrap": "data",
                "fields": {"appId": {"const": "app-1"}, "dataId": "$idempotency_key", "seq": "$sequence"},
            },
        }
    )
    body = fmap.render(message).body
    assert body == {
        "appId": "app-1",
        "dataId": "01JALARM0000000000000000AA:2",
        "seq": 5,
        "data": [{"id": "01JALARM0000000000000000AA"}],
    }
    bare = FieldMap.model_validate({"fields": {"id": "id"}, "envelope": {"array": True}})
    assert bare.render(message).body == [{"id": "01JALARM0000000000000000AA"}]


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ({"fields": {"x": {"source": "a", "codes": "nope"}}}, "code table 'nope' is not in code_tables"),
        ({"fields": {"x": {"source": "a", "time": {"format": "strftime"}}}}, "needs a pattern"),
        ({"fields": {"x": {"source": "a", "time": {"timezone": "Mars/Olympus"}}}}, "unknown IANA time zone"),
        ({"fields": {"x": {"source": "a", "const": 1}}}, "exactly one of"),
        ({"fields": {"x": {}}}, "exactly one of"),
        ({"fields": {"x": {"picture": "snapshot", "encoding": "url"}}}, "needs picture_url"),
        ({"fields": {"x": {"picture": "snapshot", "encoding": "gif"}}}, "base64"),
        ({"envelope": {"fields": {"a": {"const": 1}}}}, "need envelope.wrap"),
        ({"fields": {"x": "$secret"}}, "unknown message source"),
        ({"picture_url": "https://x/{id}"}, "must contain {sha256}"),
        ({"fieldz": {}}, "Extra inputs are not permitted"),
    ],
)
def test_bad_maps_say_what_is_wrong(data: dict[str, Any], says: str) -> None:
    with pytest.raises(ValidationError, match=None) as info:
        FieldMap.model_validate(data)
    assert says in str(info.value)


# --- signing and envelopes ----------------------------------------------------------------------------


def test_signature_round_trip_and_refusals() -> None:
    body = b'{"id":"A"}'
    headers = sign_headers(SECRET, "POST", "/alarms?x=1", body, timestamp=1_800_000_000, nonce="n1")
    nonces = NonceCache()
    verify(SECRET, "post", "/alarms?x=1", headers, body, now=1_800_000_010, nonces=nonces)
    lowered = {k.lower(): v for k, v in headers.items()}
    cases = [
        ((SECRET, "POST", "/alarms?x=1", headers, b'{"id":"B"}'), 1_800_000_010, "signature mismatch"),
        ((SECRET, "POST", "/other", headers, body), 1_800_000_010, "signature mismatch"),
        (("other", "POST", "/alarms?x=1", lowered, body), 1_800_000_010, "signature mismatch"),
        ((SECRET, "POST", "/alarms?x=1", headers, body), 1_800_000_400, "replay window"),
        ((SECRET, "POST", "/alarms?x=1", {}, body), 1_800_000_010, "missing"),
    ]
    for args, now, says in cases:
        with pytest.raises(SignatureError, match=says):
            verify(*args, now=now)
    with pytest.raises(SignatureError, match="nonce replayed"):
        verify(SECRET, "POST", "/alarms?x=1", lowered, body, now=1_800_000_020, nonces=nonces)


@pytest.mark.parametrize(
    ("cipher", "key", "iv"),
    [
        ("aes-ecb", b"k" * 16, None),
        ("aes-ecb", b"k" * 32, None),
        ("aes-cbc", b"k" * 32, b"i" * 16),
        ("aes-cbc", b"k" * 16, None),
        ("sm4-ecb", b"k" * 16, None),
        ("sm4-cbc", b"k" * 16, b"i" * 16),
    ],
)
def test_cipher_round_trip(cipher: Any, key: bytes, iv: bytes | None) -> None:
    plain = json.dumps({"msg": "未戴安全帽"}, ensure_ascii=False).encode()
    text = encrypt(cipher, key, plain, iv)
    base64.b64decode(text, validate=True)
    assert decrypt(cipher, key, text, iv) == plain
    wrong = bytes([key[0] ^ 1]) + key[1:]
    try:
        assert decrypt(cipher, wrong, text, iv) != plain
    except EnvelopeError:
        pass


def test_aes_ecb_known_vector() -> None:
    # FIPS-197 appendix C.1 plaintext/key; the second block is PKCS#7 padding.
    key = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
    text = encrypt("aes-ecb", key, bytes.fromhex("00112233445566778899aabbccddeeff"))
    assert base64.b64decode(text)[:16].hex() == "69c4e0d86a7b0430d8cdb78070b4c55a"


def test_bad_keys_are_refused() -> None:
    with pytest.raises(EnvelopeError, match="16, 24 or 32"):
        encrypt("aes-ecb", b"short", b"x")
    with pytest.raises(EnvelopeError, match="SM4 needs a 16 byte key"):
        encrypt("sm4-ecb", b"k" * 32, b"x")


# --- HTTP target --------------------------------------------------------------------------------------


@pytest.fixture
async def receiver() -> AsyncIterator[HttpReceiver]:
    peer = HttpReceiver(secret=SECRET)
    await peer.start()
    try:
        yield peer
    finally:
        await peer.stop()


@pytest.fixture
async def http_target(receiver: HttpReceiver) -> AsyncIterator[HttpTarget]:
    target = HttpTarget("province", HttpTargetSettings(url=receiver.url, signing="hmac"), SECRET)
    await target.start()
    try:
        yield target
    finally:
        await target.close()


async def test_http_delivered_then_duplicate(
    receiver: HttpReceiver, http_target: HttpTarget, message: UplinkMessage, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    first = await http_target.deliver(message)
    assert first.outcome is Outcome.DELIVERED, first.detail
    got = receiver.requests[0]
    assert got.signature_error is None
    assert got.idempotency_key == "01JALARM0000000000000000AA:2"
    assert got.body["idempotency_key"] == "01JALARM0000000000000000AA:2"
    assert got.body["camera"]["gb_channel_id"] == "14010000001320000123"
    assert base64.b64decode(got.body["snapshot"]) == JPEG
    again = await http_target.deliver(message)
    assert again.outcome is Outcome.DUPLICATE and again.done
    assert "province" in caplog.text and "01JALARM0000000000000000AA:2" in caplog.text
    assert SECRET not in caplog.text


async def test_http_bad_signature_is_rejected(receiver: HttpReceiver, message: UplinkMessage) -> None:
    target = HttpTarget("p", HttpTargetSettings(url=receiver.url, signing="hmac"), "wrong-secret")
    try:
        result = await target.deliver(message)
    finally:
        await target.close()
    assert result.outcome is Outcome.REJECTED
    assert receiver.requests[0].signature_error == "signature mismatch"


async def test_http_503_is_retry_with_retry_after(
    receiver: HttpReceiver, http_target: HttpTarget, message: UplinkMessage
) -> None:
    receiver.fail(503, times=1, retry_after="7")
    result = await http_target.deliver(message)
    assert result.outcome is Outcome.RETRY and result.retry_after_s == 7.0
    assert "503" in result.detail
    assert (await http_target.deliver(message)).outcome is Outcome.DELIVERED


@pytest.mark.parametrize("status", [408, 429, 500, 502])
async def test_http_transient_statuses_retry(
    receiver: HttpReceiver, http_target: HttpTarget, message: UplinkMessage, status: int
) -> None:
    receiver.fail(status, times=None)
    assert (await http_target.deliver(message)).outcome is Outcome.RETRY


async def test_http_stall_is_retry(receiver: HttpReceiver, message: UplinkMessage) -> None:
    receiver.stall(seconds=30)
    target = HttpTarget("p", HttpTargetSettings(url=receiver.url, signing="hmac", timeout_s=0.5), SECRET)
    try:
        stalled = await target.deliver(message)
        assert stalled.outcome is Outcome.RETRY and "timeout" in stalled.detail
        assert (await target.deliver(message)).outcome is Outcome.DELIVERED
    finally:
        await target.close()


async def test_http_poison_is_rejected(
    receiver: HttpReceiver, http_target: HttpTarget, message: UplinkMessage
) -> None:
    receiver.poison(message.idempotency_key)
    result = await http_target.deliver(message)
    assert result.outcome is Outcome.REJECTED and "400" in result.detail


async def test_http_connection_refused_is_retry(message: UplinkMessage) -> None:
    target = HttpTarget("p", HttpTargetSettings(url=f"http://127.0.0.1:{free_port()}/x"))
    try:
        result = await target.deliver(message)
    finally:
        await target.close()
    assert result.outcome is Outcome.RETRY and "network" in result.detail


async def test_http_multipart_picture(receiver: HttpReceiver, message: UplinkMessage) -> None:
    fmap = {"base": "record", "fields": {"pic": {"picture": "snapshot", "encoding": "multipart"}}}
    settings = HttpTargetSettings(url=receiver.url, signing="hmac", field_map=fmap)
    target = HttpTarget("p", settings, SECRET)
    try:
        result = await target.deliver(message)
    finally:
        await target.close()
    assert result.outcome is Outcome.DELIVERED, result.detail
    got = receiver.requests[0]
    assert got.signature_error is None  # signed over the exact multipart bytes
    assert got.body["pic"] == "pic" and got.body["id"] == message.alarm_id
    assert got.parts["pic"].data == JPEG
    assert got.parts["pic"].filename == "snapshot.jpg"
    assert got.parts["pic"].content_type == "image/jpeg"


ENVELOPES = [
    ("aes-ecb", "k" * 32, None),
    ("aes-cbc", "k" * 16, "69" * 16),
    ("aes-cbc", "k" * 32, None),
    ("sm4-ecb", "k" * 16, None),
    ("sm4-cbc", "k" * 16, "69" * 16),
]


@pytest.mark.parametrize(("cipher", "key", "iv"), ENVELOPES)
async def test_http_cipher_envelope_through_receiver(
    message: UplinkMessage, cipher: Any, key: str, iv: str | None
) -> None:
    peer = HttpReceiver(
        token="tok-1", cipher=cipher, key=key.encode(), iv=bytes.fromhex(iv) if iv else None, wrap="data"
    )
    await peer.start()
    fmap = {
        "fields": {"alarmId": "id", "type": "type.zh"},
        "envelope": {"array": True, "wrap": "data", "fields": {"appId": {"const": "app-1"}}},
    }
    settings = HttpTargetSettings(
        url=peer.url, signing="token", cipher=cipher, cipher_iv=iv, field_map=fmap, idempotency_field="dataId"
    )
    target = HttpTarget("p", settings, "tok-1", cipher_key=key)
    try:
        result = await target.deliver(message)
    finally:
        await target.close()
        await peer.stop()
    assert result.outcome is Outcome.DELIVERED, result.detail
    got = peer.requests[0]
    assert got.body["appId"] == "app-1" and isinstance(got.body["data"], str)
    assert got.payload == [
        {"alarmId": message.alarm_id, "type": "未戴安全帽", "dataId": message.idempotency_key}
    ]


async def test_http_wrong_token_is_rejected(message: UplinkMessage) -> None:
    peer = HttpReceiver(token="right")
    await peer.start()
    target = HttpTarget("p", HttpTargetSettings(url=peer.url, signing="token"), "wrong")
    try:
        assert (await target.deliver(message)).outcome is Outcome.REJECTED
    finally:
        await target.close()
        await peer.stop()


def test_receiver_runs_in_a_thread_for_sync_callers() -> None:
    import httpx

    peer = HttpReceiver()
    url = peer.start_in_thread()
    try:
        first = httpx.post(url, json={"a": 1}, headers={"Idempotency-Key": "k:1"})
        again = httpx.post(url, json={"a": 1}, headers={"Idempotency-Key": "k:1"})
    finally:
        peer.stop_thread()
    assert (first.status_code, again.status_code) == (200, 409)
    assert peer.requests[0].body == {"a": 1}


def test_http_body_code_rule() -> None:
    rule = {
        "body_field": "result.code",
        "ok_values": ["0"],
        "duplicate_values": ["E_DUP"],
        "retry_values": [1001],
    }
    target = HttpTarget("p", HttpTargetSettings(url="http://127.0.0.1:1/", success=rule))

    def outcome(status: int, body: Any) -> Outcome:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return target.classify(status, raw).outcome

    assert outcome(200, {"result": {"code": 0}}) is Outcome.DELIVERED
    assert outcome(200, {"result": {"code": "E_DUP"}}) is Outcome.DUPLICATE
    assert outcome(400, {"result": {"code": "E_DUP"}}) is Outcome.DUPLICATE
    assert outcome(200, {"result": {"code": "1001"}}) is Outcome.RETRY
    assert outcome(200, {"result": {"code": 7}}) is Outcome.REJECTED
    assert outcome(200, {"other": 1}) is Outcome.REJECTED
    assert outcome(200, b"<html>proxy</html>") is Outcome.RETRY
    assert outcome(409, {}) is Outcome.DUPLICATE
    assert outcome(404, {}) is Outcome.REJECTED
    assert outcome(302, {}) is Outcome.REJECTED
    assert target.classify(503, b"", "Wed, 21 Oct 2015 07:28:00 GMT").retry_after_s == 0.0


def test_http_settings_explain_mistakes() -> None:
    with pytest.raises(ValidationError, match="cipher needs field_map.envelope.wrap"):
        HttpTargetSettings(url="http://x/", cipher="aes-ecb")
    with pytest.raises(ValidationError, match="Extra inputs"):
        HttpTargetSettings.model_validate({"url": "http://x/", "secret": "leak"})
    with pytest.raises(ValidationError, match="must not set Authorization"):
        HttpTargetSettings(url="http://x/", headers={"authorization": "Bearer x"})
    with pytest.raises(ValidationError, match="16 bytes"):
        HttpTargetSettings(
            url="http://x/", cipher="aes-cbc", cipher_iv="00", field_map={"envelope": {"wrap": "d"}}
        )
    with pytest.raises(ValueError, match="needs a secret"):
        HttpTarget("p", HttpTargetSettings(url="http://x/", signing="hmac"), None)
    settings = HttpTargetSettings(url="http://x/", cipher="sm4-ecb", field_map={"envelope": {"wrap": "d"}})
    with pytest.raises(EnvelopeError, match="SM4 needs a 16 byte key"):
        HttpTarget("p", settings, None, cipher_key="too-short")


# --- MQTT target --------------------------------------------------------------------------------------

needs_mosquitto = pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed")


@pytest.fixture
def broker() -> Iterator[MosquittoBroker]:
    peer = MosquittoBroker(username="gw", password="pw-1")
    peer.start()
    try:
        yield peer
    finally:
        peer.cleanup()


async def _next_payload(sub: aiomqtt.Client) -> tuple[str, Any]:
    async with asyncio.timeout(5):
        msg = await anext(aiter(sub.messages))
    assert isinstance(msg.payload, bytes)
    return str(msg.topic), json.loads(msg.payload)


def _subscriber(broker: MosquittoBroker) -> aiomqtt.Client:
    return aiomqtt.Client(broker.host, broker.port, username="gw", password="pw-1", identifier="test-sub")


def test_topic_values_cannot_add_levels() -> None:
    body = dict(record(), scene="a/b+#", site={"site_code": None})
    assert topic_for("vigil/{site_code}/alarms/{scene}/{type}", body) == "vigil/_/alarms/a_b__/helmet"
    with pytest.raises(ValidationError, match="unknown"):
        MqttTargetSettings(host="h", topic="x/{nope}")
    with pytest.raises(ValidationError, match="multipart"):
        MqttTargetSettings(
            host="h", field_map={"fields": {"p": {"picture": "snapshot", "encoding": "multipart"}}}
        )


@needs_mosquitto
async def test_mqtt_delivered_on_puback(broker: MosquittoBroker, message: UplinkMessage) -> None:
    settings = MqttTargetSettings(host=broker.host, port=broker.port, username="gw", client_id="vigil-gw")
    target = MqttTarget("park-bus", settings, "pw-1")
    async with _subscriber(broker) as sub:
        await sub.subscribe("vigil/#", qos=1)
        await target.start()
        try:
            result = await target.deliver(message)
        finally:
            await target.close()
        assert result.outcome is Outcome.DELIVERED, result.detail
        topic, payload = await _next_payload(sub)
    assert topic == "vigil/S001/alarms/ppe"
    assert payload["idempotency_key"] == message.idempotency_key
    assert base64.b64decode(payload["snapshot"]) == JPEG


@needs_mosquitto
async def test_mqtt_broker_down_is_retry_then_delivered(
    broker: MosquittoBroker, message: UplinkMessage
) -> None:
    settings = MqttTargetSettings(
        host=broker.host, port=broker.port, username="gw", client_id="vigil-gw", publish_timeout_s=2.0
    )
    target = MqttTarget("park-bus", settings, "pw-1")
    try:
        assert (await target.deliver(message)).outcome is Outcome.DELIVERED
        broker.stop()
        down = await target.deliver(message)
        assert down.outcome is Outcome.RETRY, down.detail
        assert (await target.deliver(message)).outcome is Outcome.RETRY  # still down: connect refused
        broker.start()
        async with _subscriber(broker) as sub:
            await sub.subscribe("vigil/#", qos=1)
            back = await target.deliver(message)
            assert back.outcome is Outcome.DELIVERED, back.detail
            _, payload = await _next_payload(sub)
        assert payload["idempotency_key"] == message.idempotency_key
    finally:
        await target.close()


@needs_mosquitto
async def test_mqtt_wrong_password_is_retry(broker: MosquittoBroker, message: UplinkMessage) -> None:
    target = MqttTarget(
        "park-bus", MqttTargetSettings(host=broker.host, port=broker.port, username="gw"), "bad"
    )
    await target.start()  # must not raise
    try:
        result = await target.deliver(message)
    finally:
        await target.close()
    assert result.outcome is Outcome.RETRY and "unreachable" in result.detail


@pytest.fixture
async def mute_broker() -> AsyncIterator[tuple[int, list[int]]]:
    """A TCP peer that accepts the MQTT CONNECT and then never acknowledges a PUBLISH."""
    seen: list[int] = []  # first byte of every packet after CONNECT (0x32: PUBLISH with QoS 1)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            first = True
            while True:
                kind = (await reader.readexactly(1))[0]
                length, shift = 0, 0
                while True:  # MQTT "remaining length" varint
                    byte = (await reader.readexactly(1))[0]
                    length |= (byte & 0x7F) << shift
                    shift += 7
                    if not byte & 0x80:
                        break
                await reader.readexactly(length)
                if first:
                    writer.write(b"\x20\x02\x00\x00")  # CONNACK, accepted
                    await writer.drain()
                    first = False
                else:
                    seen.append(kind)
                    if kind == 0xC0:  # answer PINGREQ so only the PUBACK is missing
                        writer.write(b"\xd0\x00")
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], seen
    finally:
        server.close()
        await server.wait_closed()


async def test_mqtt_no_puback_is_retry(mute_broker: tuple[int, list[int]], message: UplinkMessage) -> None:
    port, seen = mute_broker
    target = MqttTarget("bus", MqttTargetSettings(host="127.0.0.1", port=port, publish_timeout_s=0.5))
    try:
        result = await target.deliver(message)
    finally:
        await target.close()
    assert 0x32 in seen  # the PUBLISH (QoS 1) reached the peer ...
    assert result.outcome is Outcome.RETRY, result.detail  # ... but without a PUBACK it is not delivered


# --- TLS ----------------------------------------------------------------------------------------------


def _pki(directory: Path) -> dict[str, Path]:
    """A throw-away CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def write(stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
        (directory / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (directory / f"{stem}.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("vigil test CA"))
        .issuer_name(name("vigil test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    write("ca", ca, ca_key)
    for stem, usage in (
        ("server", ExtendedKeyUsageOID.SERVER_AUTH),
        ("client", ExtendedKeyUsageOID.CLIENT_AUTH),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name(f"vigil-{stem}"))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        write(stem, cert, key)
    return {p.stem + p.suffix.replace(".", "_"): p for p in directory.iterdir()}


async def test_https_with_ca_file_and_client_certificate(tmp_path: Path, message: UplinkMessage) -> None:
    import ssl

    pki = _pki(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki["ca_pem"]))
    server_ctx.load_cert_chain(str(pki["server_pem"]), str(pki["server_key"]))
    server_ctx.verify_mode = ssl.CERT_REQUIRED  # mutual TLS: no client certificate, no connection
    peer = HttpReceiver(secret=SECRET, ssl_context=server_ctx)
    await peer.start()
    tls = {"ca_file": pki["ca_pem"], "cert_file": pki["client_pem"], "key_file": pki["client_key"]}
    good = HttpTarget("p", HttpTargetSettings(url=peer.url, signing="hmac", tls=tls), SECRET)
    untrusting = HttpTarget("p", HttpTargetSettings(url=peer.url, signing="hmac"), SECRET)
    try:
        result = await good.deliver(message)
        assert result.outcome is Outcome.DELIVERED, result.detail
        assert peer.requests[0].client_cert_subject == "vigil-client"
        refused = await untrusting.deliver(message)  # system trust store does not know our CA
        assert refused.outcome is Outcome.RETRY and "network" in refused.detail
    finally:
        await good.close()
        await untrusting.close()
        await peer.stop()


@needs_mosquitto
async def test_mqtt_over_tls(tmp_path: Path, message: UplinkMessage) -> None:
    pki = _pki(tmp_path)
    broker = MosquittoBroker(tls=(pki["ca_pem"], pki["server_pem"], pki["server_key"]))
    broker.start()
    settings = MqttTargetSettings(host=broker.host, port=broker.port, tls={"ca_file": pki["ca_pem"]})
    target = MqttTarget("bus", settings)
    plain_settings = MqttTargetSettings(host=broker.host, port=broker.port, connect_timeout_s=1)
    plain = MqttTarget("bus", plain_settings)
    try:
        result = await target.deliver(message)
        assert result.outcome is Outcome.DELIVERED, result.detail
        assert (await plain.deliver(message)).outcome is Outcome.RETRY  # no TLS: the broker hangs up
    finally:
        await target.close()
        await plain.close()
        broker.cleanup()
