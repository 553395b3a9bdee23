"""People targets (WeCom robot, signed DingTalk robot, e-mail over SMTP with the snapshot, SMS through an
HTTP gateway) against loopback peers, through the outbox like every target; escalation after a short
timeout reaches the next recipients and is recorded as a revision."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import func, select

from analyzers import AlarmEvent, Detection, Region
from gateway.alarms.escalation import next_step
from gateway.alarms.recorder import SceneContext
from gateway.api import create_app
from gateway.config.alarm_policy import EscalationStep
from gateway.db.schema import Alarm, AlarmRevision, OutboxRow
from tests.conftest import make_gateway, wait_until
from tests.peers.ports import free_port
from tests.peers.robots import DingtalkRobot, SmsGateway, WecomRobot
from uplink.notice import NoticeSettings, notice
from uplink.records import UplinkMessage
from uplink.targets.base import Outcome
from uplink.targets.dingtalk import DingtalkTarget, DingtalkTargetSettings
from uplink.targets.email import EmailTarget, EmailTargetSettings
from uplink.targets.sms import SmsTarget, SmsTargetSettings
from uplink.targets.wecom import WecomTarget, WecomTargetSettings

KEY, TOKEN, SECRET, SMS_TOKEN = "wecom-robot-key", "ding-token", "SECdingtalk-secret", "sms-token"
SAFETY = {"name": "Wang Wei", "contact": "13800000001", "role": "安全员"}
SAFETY_MAIL = {"name": "Wang Wei", "contact": "wang@plant.example", "role": "安全员"}
LEADER = {"name": "Li Na", "contact": "13900000002", "role": "班组长"}
LEADER_MAIL = {"name": "Li Na", "contact": "li@plant.example", "role": "班组长"}
RECIPIENTS = [SAFETY, SAFETY_MAIL, LEADER, LEADER_MAIL]
IMAGE = np.full((120, 160, 3), 90, dtype=np.uint8)


def record(**over: Any) -> dict[str, Any]:
    body = {
        "id": "01JALARM00000000000000000A",
        "revision": 1,
        "action": "raised",
        "type": {"code": "intrusion", "zh": "区域入侵", "en": "Zone intrusion"},
        "scene": "intrusion",
        "priority": 2,
        "message": "1 person entered",
        "region": "lawn",
        "camera": {"id": "gate-1", "name": "North gate", "location": "tank farm"},
        "occurred_at": "2026-03-09T02:00:00+00:00",
        "recipients": [SAFETY, SAFETY_MAIL, LEADER],
    }
    return {**body, **over}


def message(snapshot: Path | None = None, **over: Any) -> UplinkMessage:
    body = record(**over)
    files = {"snapshot": snapshot} if snapshot else {}
    return UplinkMessage("t", body["id"], body["revision"], body, files)


class Mailbox:
    """aiosmtpd handler: keeps what it accepts; refuses RCPT for addresses in ``refuse``."""

    def __init__(self) -> None:
        self.mails: list[tuple[list[str], bytes]] = []
        self.refuse: set[str] = set()

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        self.mails.append((list(envelope.rcpt_tos), content))
        return "250 Message accepted"


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@pytest.fixture
async def peers() -> AsyncIterator[tuple[WecomRobot, DingtalkRobot, SmsGateway]]:
    robots = (WecomRobot(KEY), DingtalkRobot(TOKEN, SECRET), SmsGateway(SMS_TOKEN))
    for r in robots:
        await r.start()
    yield robots
    for r in robots:
        await r.stop()


def test_notice_is_in_the_sites_language_and_zone() -> None:
    zh = notice(record(), NoticeSettings())
    assert zh.title == "【报警】区域入侵" and "时间: 2026-03-09 10:00:00 (Asia/Shanghai)" in zh.text
    assert "摄像头: North gate（tank farm）" in zh.text
    en = notice(record(), NoticeSettings(language="en", timezone="UTC", console_url="https://v.example/"))
    assert en.title == "【Alarm】Zone intrusion" and "2026-03-09 02:00:00 (UTC)" in en.text
    assert en.lines[-1] == "https://v.example/#/alarms/01JALARM00000000000000000A"
    up = notice(
        record(action="escalated", escalation={"level": 2, "reason": "undisposed", "after_s": 1800}),
        NoticeSettings(),
    )
    assert up.title == "【报警升级（第 2 级，30 分钟 未处置）】区域入侵"


async def test_wecom_robot_gets_the_notice_with_mentions_and_a_wrong_key_is_refused(
    peers: tuple[WecomRobot, DingtalkRobot, SmsGateway],
) -> None:
    robot = peers[0]
    target = WecomTarget("w", WecomTargetSettings(url=robot.url), KEY)
    result = await target.deliver(message())
    assert result.outcome is Outcome.DELIVERED, result.detail
    body = robot.received[0].body
    assert body["text"]["content"].startswith("【报警】区域入侵")
    assert body["text"]["mentioned_mobile_list"] == ["13800000001", "13900000002"]
    wrong = WecomTarget("w", WecomTargetSettings(url=robot.url), "not-the-key")
    result = await wrong.deliver(message())
    assert result.outcome is Outcome.REJECTED and "93000" in result.detail
    unset = await WecomTarget("w", WecomTargetSettings(url=robot.url), None).deliver(message())
    assert unset.outcome is Outcome.RETRY and "secret_env" in unset.detail
    await target.close()
    await wrong.close()


async def test_dingtalk_robot_checks_the_signature(
    peers: tuple[WecomRobot, DingtalkRobot, SmsGateway],
) -> None:
    robot = peers[1]
    settings = DingtalkTargetSettings(url=robot.url, access_token_env="UNUSED")
    target = DingtalkTarget("d", settings, SECRET, TOKEN)
    result = await target.deliver(message())
    assert result.outcome is Outcome.DELIVERED, result.detail
    got = robot.received[0]
    assert got.body["at"] == {"atMobiles": ["13800000001", "13900000002"], "isAtAll": False}
    assert got.body["text"]["content"].endswith("@13800000001 @13900000002")
    forged = DingtalkTarget("d", settings, "SECnot-the-secret", TOKEN)
    result = await forged.deliver(message())
    assert result.outcome is Outcome.REJECTED and "sign not match" in result.detail
    assert len(robot.received) == 1 and len(robot.refused) == 1
    await target.close()
    await forged.close()


async def test_email_goes_to_the_recipients_with_the_snapshot(
    smtp: tuple[Mailbox, int], tmp_path: Path
) -> None:
    box, port = smtp
    snapshot = tmp_path / "snap.jpg"
    snapshot.write_bytes(b"\xff\xd8\xff\xe0fake-jpeg-bytes")
    settings = EmailTargetSettings(
        host="127.0.0.1", port=port, security="none", sender="vigil@plant.example", to=["duty@plant.example"]
    )
    target = EmailTarget("m", settings, None)
    result = await target.deliver(message(snapshot))
    assert result.outcome is Outcome.DELIVERED, result.detail
    (to, raw), *_ = box.mails
    assert to == ["wang@plant.example", "duty@plant.example"]
    mail = email.message_from_bytes(raw, policy=email.policy.default)
    assert str(mail["Subject"]) == "【报警】区域入侵"
    assert str(mail["Message-ID"]) == "<01JALARM00000000000000000A.1@vigil.alarm>"
    parts = list(mail.iter_attachments())
    assert len(parts) == 1 and parts[0].get_content() == snapshot.read_bytes()
    assert parts[0].get_content_type() == "image/jpeg"
    # Every recipient refused permanently: not retried.
    box.refuse = {"wang@plant.example", "duty@plant.example"}
    result = await target.deliver(message(snapshot))
    assert result.outcome is Outcome.REJECTED and "550" in result.detail
    # No server there: retried later.
    away = EmailTarget("m", settings.model_copy(update={"port": free_port()}), None)
    assert (await away.deliver(message())).outcome is Outcome.RETRY


async def test_sms_gateway_gets_one_request_per_phone(
    peers: tuple[WecomRobot, DingtalkRobot, SmsGateway],
) -> None:
    gateway = peers[2]
    settings = SmsTargetSettings(
        url=gateway.url,
        headers={"Authorization": "Bearer {secret}"},
        body={"mobile": "{phone}", "content": "{text}", "ref": "{key}"},
        ok_field="code",
        max_chars=40,
    )
    target = SmsTarget("s", settings, SMS_TOKEN)
    result = await target.deliver(message())
    assert result.outcome is Outcome.DELIVERED, result.detail
    assert [r.body["mobile"] for r in gateway.received] == ["13800000001", "13900000002"]
    assert all(r.body["ref"] == "01JALARM00000000000000000A:1" for r in gateway.received)
    assert all(
        len(r.body["content"]) == 40 and r.body["content"].startswith("【报警】") for r in gateway.received
    )
    bad = SmsTarget("s", settings, "wrong-token")
    result = await bad.deliver(message())
    assert result.outcome is Outcome.REJECTED and "code=401" in result.detail
    await target.close()
    await bad.close()


def test_escalation_ladder_follows_scene_priority_and_state() -> None:
    steps = [
        EscalationStep(unconfirmed_s=30, roles=["班组长"]),
        EscalationStep(scenes=["flame"], unconfirmed_s=60, tiers=["enterprise"]),
        EscalationStep(priorities=[1, 2], undisposed_min=30, roles=["主任"]),
    ]
    alarm = Alarm(scene="intrusion", priority=2, escalation_level=0, verdict=None)
    alarm.raised_at = dt.datetime(2026, 3, 9, 2, 0, tzinfo=dt.UTC)
    at = alarm.raised_at + dt.timedelta(seconds=29)
    assert next_step(steps, alarm, False, at) is None
    found = next_step(steps, alarm, False, at + dt.timedelta(seconds=1))
    assert found is not None and found[0] == 0
    # Confirmed in time for the next step: only the disposal step remains (the flame step is not its).
    alarm.escalation_level, alarm.verdict = 1, "true_positive"
    assert next_step(steps, alarm, False, at + dt.timedelta(minutes=29)) is None
    found = next_step(steps, alarm, False, at + dt.timedelta(minutes=31))
    assert found is not None and found[1].roles == ["主任"]
    assert next_step(steps, alarm, True, at + dt.timedelta(minutes=31)) is None
    with pytest.raises(ValueError, match="exactly one of"):
        EscalationStep(unconfirmed_s=1, undisposed_min=1, roles=["x"])
    with pytest.raises(ValueError, match="roles or tiers"):
        EscalationStep(unconfirmed_s=1)


async def test_people_targets_through_the_outbox_and_escalation_after_a_timeout(
    tmp_path: Path,
    aiohttp_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    smtp: tuple[Mailbox, int],
    peers: tuple[WecomRobot, DingtalkRobot, SmsGateway],
) -> None:
    box, port = smtp
    wecom, ding, sms = peers
    for name, value in (("T_WECOM", KEY), ("T_DING", SECRET), ("T_DING_TOKEN", TOKEN), ("T_SMS", SMS_TOKEN)):
        monkeypatch.setenv(name, value)
    people = {"tier": "people", "actions": ["raised", "escalated"]}
    gw = make_gateway(
        tmp_path,
        cameras=[
            {
                "id": "gate-1",
                "name": "North gate",
                "url": "rtsp://127.0.0.1:9/none",
                "enabled": False,
                "alarm": {"recipients": RECIPIENTS},
            }
        ],
        uplink=[
            {
                "name": "wecom",
                "kind": "wecom",
                "secret_env": "T_WECOM",
                "wecom": {"url": wecom.url},
                **people,
            },
            {
                "name": "ding",
                "kind": "dingtalk",
                "secret_env": "T_DING",
                "dingtalk": {"url": ding.url, "access_token_env": "T_DING_TOKEN"},
                **people,
            },
            {
                "name": "mail",
                "kind": "email",
                "email": {
                    "host": "127.0.0.1",
                    "port": port,
                    "security": "none",
                    "sender": "vigil@plant.example",
                },
                **people,
            },
            {
                "name": "sms",
                "kind": "sms",
                "secret_env": "T_SMS",
                "sms": {"url": sms.url, "headers": {"Authorization": "Bearer {secret}"}, "ok_field": "code"},
                **people,
            },
        ],
        alarms={
            "escalation": [{"unconfirmed_s": 1.0, "roles": ["班组长"]}],
            "escalation_check_s": 0.2,
        },
    )
    await aiohttp_client(create_app(gw))  # starts the gateway and serves: dispatchers and escalation run
    now = time.time()
    event = AlarmEvent(
        "gate-1",
        "intrusion",
        "lawn",
        now - 3,
        now,
        0.9,
        "1 person entered",
        (Detection((10, 10, 40, 90), 0.9, 0, "person"),),
    )
    ctx = SceneContext(None, {}, None, [Region("lawn", [(0, 0), (1, 0), (1, 1)])])
    alarm_id = await asyncio.to_thread(gw.recorder.record, event, IMAGE, ctx)
    assert alarm_id is not None

    def delivered() -> int:
        with gw.db.session() as s:
            rows = s.scalars(select(OutboxRow.status).where(OutboxRow.alarm_id == alarm_id)).all()
            return sum(1 for r in rows if r == "delivered") if all(r == "delivered" for r in rows) else -1

    # raised: 4 targets; escalated a second later (nobody confirmed): 4 more.
    await wait_until(lambda: delivered() == 8, 20, "the raised and escalated notices")
    with gw.db.session() as s:
        alarm = s.get(Alarm, alarm_id)
        assert alarm is not None and alarm.escalation_level == 1
        rev = s.scalar(
            select(AlarmRevision).where(
                AlarmRevision.alarm_id == alarm_id, AlarmRevision.action == "escalated"
            )
        )
        assert rev is not None and rev.actor == "gateway"
        assert rev.changes["escalation"]["recipients"] == [LEADER, LEADER_MAIL]
        assert rev.changes["escalation"]["reason"] == "unconfirmed"
        # One step configured: it fires once.
        count = s.scalar(
            select(func.count()).select_from(AlarmRevision).where(AlarmRevision.action == "escalated")
        )
    assert count == 1
    raised_wecom, escalated_wecom = (r.body["text"] for r in wecom.received)
    assert raised_wecom["mentioned_mobile_list"] == ["13800000001", "13900000002"]
    assert escalated_wecom["mentioned_mobile_list"] == ["13900000002"]
    assert escalated_wecom["content"].startswith("【报警升级（第 1 级，1 秒 未确认）】")
    assert [r.query["sign"] != "" for r in ding.received] == [True, True]
    assert ding.received[1].body["at"]["atMobiles"] == ["13900000002"]
    assert [r.body["to"] for r in sms.received] == ["13800000001", "13900000002", "13900000002"]
    assert [to for to, _ in box.mails] == [["wang@plant.example", "li@plant.example"], ["li@plant.example"]]
    snapshot = email.message_from_bytes(box.mails[0][1], policy=email.policy.default)
    assert [p.get_content_type() for p in snapshot.iter_attachments()] == ["image/jpeg"]
