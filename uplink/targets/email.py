"""E-mail over SMTP: a notice of each alarm revision to the recipients' e-mail addresses (and the fixed
``to`` list), with the alarm's snapshot attached.

STARTTLS, implicit TLS or plain (a relay on the plant network); the password comes from ``secret_env``.
Delivered means the server accepted the message for at least one recipient; a 4xx answer or a lost
connection is retried, a 5xx answer (refused sender, every recipient refused, failed login) is not.
The Message-ID is the alarm revision's idempotency key, so a mail system can tell a repeat.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from uplink.notice import EMAIL, NoticeSettings, emails, notice
from uplink.records import UplinkMessage
from uplink.targets.base import DeliveryResult, Outcome, TargetContext, TargetKind, classified, register_kind

log = logging.getLogger(__name__)

MAX_ATTACHMENT = 10 * 1024 * 1024


class EmailTargetSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field(description="SMTP server host")
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = Field(
        "starttls", description="starttls (port 587), ssl (implicit TLS, port 465) or none (a plant relay)"
    )
    username: str | None = Field(None, description="SMTP login; its password comes from secret_env")
    sender: str = Field(description="the From address, e.g. vigil@plant.example", pattern=EMAIL.pattern)
    to: list[str] = Field(default_factory=list, description="addresses that get every notice as well")
    attach: list[str] = Field(
        default_factory=lambda: ["snapshot"], description="evidence kinds attached (snapshot, snapshot_raw)"
    )
    timeout_s: float = Field(20.0, gt=0, le=300)
    notice: NoticeSettings = Field(default_factory=lambda: NoticeSettings())


class EmailTarget:
    def __init__(self, name: str, settings: EmailTargetSettings, password: str | None) -> None:
        self.name = name
        self.settings = settings
        self._password = password

    def __repr__(self) -> str:  # never show the password
        return f"EmailTarget({self.name!r}, {self.settings.host}:{self.settings.port})"

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def deliver(self, message: UplinkMessage) -> DeliveryResult:
        return await classified(self.name, message, self._deliver, log)

    def recipients(self, message: UplinkMessage) -> list[str]:
        out = list(emails(message.body))
        out += [a for a in self.settings.to if a not in out]
        return out

    def compose(self, message: UplinkMessage, to: list[str]) -> EmailMessage:
        text = notice(message.body, self.settings.notice)
        mail = EmailMessage()
        mail["Subject"] = text.title
        mail["From"] = self.settings.sender
        mail["To"] = ", ".join(to)
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = f"<{message.alarm_id}.{message.revision}@vigil.alarm>"
        mail.set_content(text.text)
        for kind in self.settings.attach:
            path = message.attachments.get(kind)
            if path is None or not path.is_file() or path.stat().st_size > MAX_ATTACHMENT:
                continue
            subtype = "png" if path.suffix.lower() == ".png" else "jpeg"
            mail.add_attachment(
                path.read_bytes(),
                maintype="image",
                subtype=subtype,
                filename=f"{message.alarm_id}-{kind}.{subtype}",
            )
        return mail

    async def _deliver(self, message: UplinkMessage) -> DeliveryResult:
        to = self.recipients(message)
        if not to:
            return DeliveryResult(Outcome.DELIVERED, "nobody to write to: no recipient has an e-mail address")
        try:
            mail = await asyncio.to_thread(self.compose, message, to)
        except OSError as exc:
            return DeliveryResult(Outcome.REJECTED, f"cannot build the message: {exc}")
        return await asyncio.to_thread(self._send, mail, to)

    def _send(self, mail: EmailMessage, to: list[str]) -> DeliveryResult:
        s = self.settings
        context = ssl.create_default_context()
        try:
            smtp: smtplib.SMTP
            if s.security == "ssl":
                smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout_s, context=context)
            else:
                smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout_s)
            with smtp:
                if s.security == "starttls":
                    smtp.starttls(context=context)
                if s.username:
                    smtp.login(s.username, self._password or "")
                refused = smtp.send_message(mail, from_addr=s.sender, to_addrs=to)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            transient = all(400 <= code < 500 for code in codes)
            return DeliveryResult(
                Outcome.RETRY if transient else Outcome.REJECTED, f"recipients refused: {codes}"
            )
        except smtplib.SMTPAuthenticationError as exc:
            return DeliveryResult(
                Outcome.REJECTED, f"login refused ({exc.smtp_code}): check username and password"
            )
        except smtplib.SMTPResponseException as exc:
            outcome = Outcome.RETRY if 400 <= exc.smtp_code < 500 else Outcome.REJECTED
            return DeliveryResult(outcome, f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"[:300])
        except (smtplib.SMTPException, OSError) as exc:  # refused, reset, timeout, TLS failure
            return DeliveryResult(Outcome.RETRY, f"{type(exc).__name__}: {exc}"[:300])
        if refused:
            return DeliveryResult(
                Outcome.DELIVERED, f"sent to {len(to) - len(refused)}; refused: {sorted(refused)}"
            )
        return DeliveryResult(Outcome.DELIVERED, f"sent to {len(to)} recipient(s)")


def _build(ctx: TargetContext) -> EmailTarget:
    assert isinstance(ctx.settings, EmailTargetSettings)  # the config requires the block
    return EmailTarget(ctx.name, ctx.settings, ctx.secret)


KIND = register_kind(
    TargetKind(
        "email",
        _build,
        EmailTargetSettings,
        description="e-mail over SMTP: host, port, security, sender, to; the snapshot attached",
        to_people=True,
    )
)
