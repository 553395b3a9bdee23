"""Per-peer interop switches; defaults suit common NVRs/IPCs and WVP-style platforms."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Interop:
    charset: str = "GB2312"  # encoding declared in MANSCDP bodies; GB2312/GBK/GB18030 encode as gb18030
    trying_for_invite: bool = True  # send 100 Trying to INVITE
    trying_for_other: bool = False  # 100 Trying to REGISTER/MESSAGE breaks some Dahua devices
    alarm_via: str = "MESSAGE"  # MESSAGE or NOTIFY (inside the superior's Alarm subscription)
    alarm_needs_response: bool = True  # cascade: wait for the superior's MANSCDP <Response> after the 200
    enforce_ssrc: bool = False  # refuse RTP whose SSRC differs from y= (else learn from the first packet)
    sdp_rtpmap_first: bool = True  # rtpmap lines right after a=recvonly
    date_header: bool = True  # GB-style Date on REGISTER 200 (time sync)
    gb_version: str | None = None  # "2.0" (2016) / "3.0" (2022) for X-GB-Ver; None = don't send
    subscribe_event: str = "Catalog"  # Event header value for our SUBSCRIBE (WVP uses "presence")
    catalog_page_size: int = 4  # items per Catalog MESSAGE we send (keeps UDP below the MTU)


DEFAULT_INTEROP = Interop()
