"""What the people targets (WeCom, DingTalk, e-mail, SMS) say and to whom: a short notice of one alarm
revision in the site's language and time zone, and the record's recipients' phones and e-mail addresses.

The record's ``recipients`` are the camera's (its alarm configuration); an escalation's record carries
the recipients chosen by the escalation step instead, and ``escalation`` (level, reason, after_s).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator

Language = Literal["zh", "en"]
PHONE = re.compile(r"^\+?[0-9][0-9 -]{5,19}$")
EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")

_ACTIONS: dict[str, tuple[str, str]] = {
    "raised": ("报警", "Alarm"),
    "updated": ("报警更新", "Alarm updated"),
    "confirmed": ("报警已确认", "Alarm confirmed"),
    "rejected": ("报警已驳回（误报）", "Alarm rejected (false positive)"),
    "disposed": ("报警已处置", "Alarm disposed"),
    "cleared": ("报警已销警", "Alarm cleared"),
    "closed": ("报警已关闭", "Alarm closed"),
}
_REASONS = {
    "unconfirmed": ("{after} 未确认", "not confirmed within {after}"),
    "undisposed": ("{after} 未处置", "not disposed within {after}"),
}


class NoticeSettings(BaseModel):
    """How a people target words its notices (shared by the WeCom, DingTalk, e-mail and SMS targets)."""

    model_config = ConfigDict(extra="forbid")

    language: Language = Field("zh", description="zh or en")
    timezone: str = Field("Asia/Shanghai", description="the site's time zone, for the times in the notice")
    console_url: str | None = Field(
        None, description="the console's address, e.g. https://vigil.plant.example; adds a link to the alarm"
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (KeyError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Asia/Shanghai") from exc
        return value


@dataclass(frozen=True)
class Notice:
    title: str
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join((self.title, *self.lines))


def _duration(seconds: float, lang: Language) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} 分钟" if lang == "zh" else f"{seconds / 60:g} min"
    return f"{seconds:g} 秒" if lang == "zh" else f"{seconds:g} s"


def _local(value: Any, zone: ZoneInfo) -> str:
    if not value:
        return "-"
    try:
        when = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return when.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def notice(record: dict[str, Any], settings: NoticeSettings) -> Notice:
    """The notice of one alarm revision, in the target's language and the site's zone."""
    lang = settings.language
    zh = lang == "zh"
    action = str(record.get("action") or "raised")
    kind = record.get("type") or {}
    name = kind.get("zh" if zh else "en") or record.get("scene") or ""
    escalation = record.get("escalation")
    if action == "escalated" and isinstance(escalation, dict):
        after = _duration(float(escalation.get("after_s") or 0), lang)
        reason_zh, reason_en = _REASONS.get(str(escalation.get("reason")), ("{after}", "{after}"))
        reason = (reason_zh if zh else reason_en).format(after=after)
        level = escalation.get("level")
        head = f"报警升级（第 {level} 级，{reason}）" if zh else f"Alarm escalated (level {level}, {reason})"
    else:
        head = _ACTIONS.get(action, (action, action))[0 if zh else 1]
    camera = record.get("camera") or {}
    where = camera.get("name") or camera.get("id") or "-"
    if camera.get("location"):
        where = f"{where}（{camera['location']}）" if zh else f"{where} ({camera['location']})"
    zone = ZoneInfo(settings.timezone)
    labels = (
        ("摄像头", "区域", "时间", "优先级", "说明")
        if zh
        else ("Camera", "Region", "Time", "Priority", "Details")
    )
    lines = [
        f"{labels[0]}: {where}",
        f"{labels[1]}: {record.get('region') or '-'}",
        f"{labels[2]}: {_local(record.get('occurred_at'), zone)} ({settings.timezone})",
        f"{labels[3]}: {record.get('priority', '-')}",
        f"{labels[4]}: {record.get('message') or '-'}",
    ]
    if settings.console_url:
        lines.append(f"{settings.console_url.rstrip('/')}/#/alarms/{record.get('id')}")
    return Notice(f"【{head}】{name}", tuple(lines))


def recipients(record: dict[str, Any]) -> list[dict[str, str]]:
    return [r for r in record.get("recipients") or [] if isinstance(r, dict)]


def phones(record: dict[str, Any]) -> list[str]:
    """The recipients' phone numbers (contacts that look like one), in order, once each."""
    out: list[str] = []
    for r in recipients(record):
        contact = str(r.get("contact") or "").strip()
        if PHONE.match(contact):
            number = re.sub(r"[ -]", "", contact)
            if number not in out:
                out.append(number)
    return out


def emails(record: dict[str, Any]) -> list[str]:
    """The recipients' e-mail addresses (contacts that look like one), in order, once each."""
    out: list[str] = []
    for r in recipients(record):
        contact = str(r.get("contact") or "").strip()
        if EMAIL.match(contact) and contact not in out:
            out.append(contact)
    return out


# Robot answers ({"errcode": 0, "errmsg": "ok"}): these codes mean "too many messages, try later".
ROBOT_BUSY = frozenset({45009, 45033, 130101, 410100})  # WeCom: API freq / concurrency; DingTalk: limits


def robot_answer(status: int, content: bytes) -> tuple[str, str]:
    """Classify a WeCom/DingTalk robot's answer: ("delivered" | "retry" | "rejected", detail)."""
    detail = f"HTTP {status}: {content[:300].decode('utf-8', 'replace')}".strip()
    if status == 429 or status >= 500:
        return "retry", detail
    if not 200 <= status < 300:
        return "rejected", detail
    try:
        body = json.loads(content)
        code = int(body.get("errcode"))
    except (ValueError, TypeError, AttributeError):
        return "retry", f"answer is not the robot's JSON: {detail}"
    if code == 0:
        return "delivered", detail
    return ("retry" if code in ROBOT_BUSY else "rejected"), f"errcode {code}: {detail}"
