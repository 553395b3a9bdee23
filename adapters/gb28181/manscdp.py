"""MANSCDP (GB/T 28181 §A) XML bodies: tolerant parsing and GB18030 building.

Parsing accepts GB2312/GBK/GB18030/UTF-8 declared (or mislabelled) bodies, a BOM, lower-case tag names,
attribute-form ``CmdType``/``SN``; anything else raises :class:`ManscdpError` with a reason. DTDs and
entity declarations are refused outright (no entity expansion attacks).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET  # noqa: S405  (input is size-limited and DTD-free, see _decode)
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

MAX_BODY_BYTES = 256 * 1024
CONTENT_TYPE = "Application/MANSCDP+xml"

_DECL_RE = re.compile(rb"^\s*<\?xml[^>]*?\?>", re.S)


class ManscdpError(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class ManscdpMessage:
    root: str  # Query, Response, Notify, Control
    cmd_type: str
    sn: int
    device_id: str
    element: ET.Element
    text: str = ""

    def find(self, name: str, parent: ET.Element | None = None) -> ET.Element | None:
        """First descendant whose tag equals ``name`` case-insensitively."""
        low = name.lower()
        for el in (parent if parent is not None else self.element).iter():
            if el.tag.lower() == low:
                return el
        return None

    def get(self, name: str, default: str = "", parent: ET.Element | None = None) -> str:
        el = self.find(name, parent)
        if el is None or el.text is None:
            return default
        return el.text.strip()

    def fields(self) -> dict[str, str]:
        """Top-level simple children as a dict (first occurrence wins)."""
        out: dict[str, str] = {}
        for child in self.element:
            if len(child) == 0:
                out.setdefault(child.tag, (child.text or "").strip())
        return out


def _chinese_share(text: str) -> float:
    """Share of the non-ASCII characters that are CJK ideographs or CJK punctuation (1.0 when none)."""
    wide = [c for c in text if ord(c) > 127]
    if not wide:
        return 1.0
    return sum(1 for c in wide if "\u4e00" <= c <= "\u9fff" or "\u3000" <= c <= "\u303f") / len(wide)


def _decode(body: bytes) -> str:
    if len(body) > MAX_BODY_BYTES:
        raise ManscdpError(f"body too large ({len(body)} bytes)")
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]
    # Bodies are often mislabelled (UTF-8 declared GB2312, and the reverse), and a short GB2312 text
    # can also be valid UTF-8 ("压" = D1 B9 = "ѹ"). Decode both ways and keep the reading whose
    # non-ASCII characters are Chinese; on a tie, the declared charset wins.
    candidates: dict[str, str] = {}
    for enc in ("utf-8", "gb18030"):
        try:
            candidates[enc] = body.decode(enc)
        except UnicodeDecodeError:
            continue
    declared = _DECL_RE.search(body)
    prefer_gb = declared is not None and b"utf" not in declared.group(0).lower()
    text: str | None = None
    if candidates:
        ranked = sorted(
            candidates.items(),
            key=lambda kv: (_chinese_share(kv[1]), (kv[0] == "gb18030") == prefer_gb),
            reverse=True,
        )
        text = ranked[0][1]
    if text is None:
        text = body.decode("gb18030", errors="replace")
    text = _DECL_RE.sub(b"", text.encode("utf-8"), count=1).decode("utf-8")
    upper = text.upper()
    if "<!DOCTYPE" in upper or "<!ENTITY" in upper:
        raise ManscdpError("DTD/entity declarations are not accepted")
    return text


def parse(body: bytes) -> ManscdpMessage:
    """Parse a MANSCDP body; raises ManscdpError (never another exception) on bad input."""
    if not isinstance(body, bytes | bytearray):
        raise ManscdpError("body is not bytes")
    text = _decode(bytes(body))
    if not text.strip():
        raise ManscdpError("empty body")
    try:
        root = ET.fromstring(text)  # noqa: S314
    except ET.ParseError as exc:
        raise ManscdpError(f"bad XML: {exc}") from None
    except (ValueError, RecursionError) as exc:
        raise ManscdpError(f"bad XML: {type(exc).__name__}") from None
    if sum(1 for _ in root.iter()) > 20_000:
        raise ManscdpError("too many elements")
    msg = ManscdpMessage(root.tag.strip(), "", 0, "", root, text)
    cmd = msg.get("CmdType") or root.get("CmdType", "") or root.get("cmdtype", "")
    if not cmd:
        raise ManscdpError("missing CmdType")
    sn_text = msg.get("SN") or root.get("SN", "") or root.get("sn", "")
    if sn_text and not (sn_text.isdigit() and len(sn_text) <= 12):
        raise ManscdpError(f"bad SN {sn_text[:16]!r}")
    msg.cmd_type = cmd
    msg.sn = int(sn_text) if sn_text else 0
    msg.device_id = msg.get("DeviceID")
    return msg


# ---------------------------------------------------------------------------------------- building


def _el(name: str, value: object) -> str:
    return f"<{name}>{escape(str(value))}</{name}>\r\n"


def encode(
    root: str, cmd_type: str, sn: int, device_id: str, inner: str = "", charset: str = "GB2312"
) -> bytes:
    """Serialise with the conventional element order; encoded GB18030 unless charset is UTF-8."""
    text = (
        f'<?xml version="1.0" encoding="{charset}"?>\r\n<{root}>\r\n'
        + _el("CmdType", cmd_type)
        + _el("SN", sn)
        + _el("DeviceID", device_id)
        + inner
        + f"</{root}>\r\n"
    )
    return text.encode("utf-8" if charset.lower().replace("-", "") == "utf8" else "gb18030")


def build_query(cmd_type: str, sn: int, device_id: str, charset: str = "GB2312", **extra: object) -> bytes:
    inner = "".join(_el(k, v) for k, v in extra.items())
    return encode("Query", cmd_type, sn, device_id, inner, charset)


def build_keepalive(sn: int, device_id: str, charset: str = "GB2312") -> bytes:
    return encode("Notify", "Keepalive", sn, device_id, _el("Status", "OK"), charset)


def build_result(
    cmd_type: str, sn: int, device_id: str, result: str = "OK", charset: str = "GB2312"
) -> bytes:
    return encode("Response", cmd_type, sn, device_id, _el("Result", result), charset)


# ----------------------------------------------------------------------------------------- catalog


@dataclass
class CatalogItem:
    device_id: str
    name: str = ""
    manufacturer: str = ""
    model: str = ""
    owner: str = ""
    civil_code: str = ""
    address: str = ""
    parental: int = 0
    parent_id: str = ""
    safety_way: int = 0
    register_way: int = 1
    secrecy: int = 0
    status: str = "ON"
    longitude: str = ""
    latitude: str = ""
    ptz_type: int | None = None
    event: str = ""  # Catalog NOTIFY: ON/OFF/VLOST/DEFECT/ADD/DEL/UPDATE
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def type_code(self) -> str:
        """Digits 11-13 of a 20-digit id (131/132 camera, 118 NVR, 215 group, 216 virtual org)."""
        return self.device_id[10:13] if len(self.device_id) == 20 else ""

    @property
    def is_video_channel(self) -> bool:
        return self.type_code in ("131", "132") or (
            self.ptz_type is not None and self.type_code not in ("215", "216")
        )

    def to_xml(self) -> str:
        out = "<Item>\r\n" + _el("DeviceID", self.device_id) + _el("Name", self.name)
        if self.event:
            out += _el("Event", self.event)
        tc = self.type_code
        if tc in ("215",):
            out += _el("CivilCode", self.civil_code) if self.civil_code else ""
        elif tc == "216":
            out += _el("ParentID", self.parent_id) if self.parent_id else ""
            if "BusinessGroupID" in self.extra:
                out += _el("BusinessGroupID", self.extra["BusinessGroupID"])
        elif len(self.device_id) == 20:
            for tag, val in (
                ("Manufacturer", self.manufacturer),
                ("Model", self.model),
                ("Owner", self.owner),
                ("CivilCode", self.civil_code),
                ("Address", self.address),
                ("Parental", self.parental),
                ("ParentID", self.parent_id),
                ("SafetyWay", self.safety_way),
                ("RegisterWay", self.register_way),
                ("Secrecy", self.secrecy),
                ("Status", self.status),
            ):
                if tag == "ParentID" and not val:
                    continue
                out += _el(tag, val)
            if self.longitude:
                out += _el("Longitude", self.longitude) + _el("Latitude", self.latitude)
            if self.ptz_type is not None:
                out += "<Info>\r\n" + _el("PTZType", self.ptz_type) + "</Info>\r\n"
        return out + "</Item>\r\n"


_ITEM_FIELDS = {
    "deviceid": "device_id",
    "name": "name",
    "manufacturer": "manufacturer",
    "model": "model",
    "owner": "owner",
    "civilcode": "civil_code",
    "address": "address",
    "parentid": "parent_id",
    "status": "status",
    "longitude": "longitude",
    "latitude": "latitude",
    "event": "event",
}
_INT_FIELDS = {
    "parental": "parental",
    "safetyway": "safety_way",
    "registerway": "register_way",
    "secrecy": "secrecy",
}


def _int(text: str, default: int = 0) -> int:
    text = text.strip()
    return int(text) if text.isdigit() and len(text) < 10 else default


def catalog_items(msg: ManscdpMessage) -> list[CatalogItem]:
    out: list[CatalogItem] = []
    dl = msg.find("DeviceList")
    if dl is None:
        return out
    for item_el in dl:
        if item_el.tag.lower() != "item":
            continue
        item = CatalogItem(device_id="")
        for child in item_el:
            tag = child.tag.lower()
            value = (child.text or "").strip()
            if tag in _ITEM_FIELDS:
                setattr(item, _ITEM_FIELDS[tag], value)
            elif tag in _INT_FIELDS:
                setattr(item, _INT_FIELDS[tag], _int(value))
            elif tag == "info":
                for sub in child:
                    if sub.tag.lower() == "ptztype":
                        item.ptz_type = _int(sub.text or "", 0) or None
                    elif len(sub) == 0:
                        item.extra[sub.tag] = (sub.text or "").strip()
            elif tag == "ptztype":
                item.ptz_type = _int(value, 0) or None
            elif len(child) == 0:
                item.extra[child.tag] = value
        if item.device_id:
            out.append(item)
    return out


def build_catalog_responses(
    sn: int,
    device_id: str,
    items: list[CatalogItem],
    per_message: int = 4,
    charset: str = "GB2312",
    root: str = "Response",
) -> list[bytes]:
    """Split a catalog into messages of ``per_message`` items, each carrying the total ``SumNum``."""
    total = len(items)
    if total == 0:
        return [
            encode(
                root,
                "Catalog",
                sn,
                device_id,
                _el("SumNum", 0) + '<DeviceList Num="0">\r\n</DeviceList>\r\n',
                charset,
            )
        ]
    out = []
    for start in range(0, total, max(1, per_message)):
        chunk = items[start : start + max(1, per_message)]
        inner = _el("SumNum", total) + f'<DeviceList Num="{len(chunk)}">\r\n'
        inner += "".join(i.to_xml() for i in chunk) + "</DeviceList>\r\n"
        out.append(encode(root, "Catalog", sn, device_id, inner, charset))
    return out


class CatalogAggregator:
    """Collects paged Catalog responses for one SN until ``SumNum`` distinct items arrived."""

    def __init__(self) -> None:
        self.items: dict[str, CatalogItem] = {}
        self.sum_num: int | None = None

    def add(self, msg: ManscdpMessage) -> bool:
        """Add one page; True when complete."""
        sn = msg.get("SumNum")
        if sn.isdigit() and len(sn) < 8:
            self.sum_num = int(sn)
        for item in catalog_items(msg):
            self.items[item.device_id] = item
        return self.complete

    @property
    def complete(self) -> bool:
        return self.sum_num is not None and len(self.items) >= self.sum_num


# ------------------------------------------------------------------------------ info / status / alarm


def build_device_info_response(
    sn: int,
    device_id: str,
    *,
    name: str,
    manufacturer: str,
    model: str,
    firmware: str,
    channels: int,
    charset: str = "GB2312",
) -> bytes:
    inner = (
        _el("DeviceName", name)
        + _el("Result", "OK")
        + _el("Manufacturer", manufacturer)
        + _el("Model", model)
        + _el("Firmware", firmware)
        + _el("Channel", channels)
    )
    return encode("Response", "DeviceInfo", sn, device_id, inner, charset)


def build_device_status_response(
    sn: int, device_id: str, online: bool = True, charset: str = "GB2312"
) -> bytes:
    inner = _el("Result", "OK") + _el("Online", "ONLINE" if online else "OFFLINE") + _el("Status", "OK")
    return encode("Response", "DeviceStatus", sn, device_id, inner, charset)


@dataclass
class AlarmNotify:
    device_id: str
    sn: int
    priority: int = 0
    method: int = 0
    alarm_type: int | None = None
    time: str = ""
    description: str = ""
    longitude: str = ""
    latitude: str = ""
    event_type: str = ""


def parse_alarm(msg: ManscdpMessage) -> AlarmNotify:
    info = msg.find("Info")
    at = msg.get("AlarmType", parent=info) if info is not None else ""
    at = at or msg.get("AlarmType")
    return AlarmNotify(
        device_id=msg.device_id,
        sn=msg.sn,
        priority=_int(msg.get("AlarmPriority")),
        method=_int(msg.get("AlarmMethod")),
        alarm_type=_int(at) if at.isdigit() else None,
        time=msg.get("AlarmTime"),
        description=msg.get("AlarmDescription"),
        longitude=msg.get("Longitude"),
        latitude=msg.get("Latitude"),
        event_type=msg.get("EventType"),
    )


def build_alarm_notify(alarm: AlarmNotify, charset: str = "GB2312") -> bytes:
    inner = (
        _el("AlarmPriority", alarm.priority) + _el("AlarmMethod", alarm.method) + _el("AlarmTime", alarm.time)
    )
    if alarm.description:
        inner += _el("AlarmDescription", alarm.description)
    if alarm.longitude:
        inner += _el("Longitude", alarm.longitude) + _el("Latitude", alarm.latitude)
    if alarm.alarm_type is not None:
        inner += "<Info>\r\n" + _el("AlarmType", alarm.alarm_type)
        if alarm.event_type:
            inner += "<AlarmTypeParam>\r\n" + _el("EventType", alarm.event_type) + "</AlarmTypeParam>\r\n"
        inner += "</Info>\r\n"
    return encode("Notify", "Alarm", alarm.sn, alarm.device_id, inner, charset)


@dataclass
class Preset:
    preset_id: str
    name: str


def parse_presets(msg: ManscdpMessage) -> list[Preset]:
    out: list[Preset] = []
    pl = msg.find("PresetList")
    if pl is None:
        return out
    for item in pl:
        if item.tag.lower() == "item":
            out.append(Preset(msg.get("PresetID", parent=item), msg.get("PresetName", parent=item)))
    return out


def parse_ptz_position(msg: ManscdpMessage) -> dict[str, str]:
    """2022 PTZPosition response: Pan, Tilt, Zoom (and whatever else the device adds)."""
    out: dict[str, str] = {}
    for el in msg.element.iter():
        if len(el) == 0 and el.tag.lower() in (
            "pan",
            "tilt",
            "zoom",
            "horizontalfieldangle",
            "verticalfieldangle",
        ):
            out[el.tag] = (el.text or "").strip()
    return out


# ------------------------------------------------------------------------------ PTZ control (A.3)

PTZ_MOVES = {  # A.3.2 instruction byte: bit0 right, bit1 left, bit2 down, bit3 up, bit4 zoom in, bit5 out
    "stop": 0x00,
    "right": 0x01,
    "left": 0x02,
    "down": 0x04,
    "up": 0x08,
    "downright": 0x05,
    "downleft": 0x06,
    "upright": 0x09,
    "upleft": 0x0A,
    "zoom_in": 0x10,
    "zoom_out": 0x20,
}
PTZ_PRESETS = {"preset_set": 0x81, "preset_goto": 0x82, "preset_delete": 0x83}  # A.3.4, byte 6 = preset


def ptz_cmd(action: str, speed: int = 0x80, zoom_speed: int = 0x8, preset: int = 0, address: int = 1) -> str:
    """The 8-byte PTZCmd of GB/T 28181-2016 A.3.1 as 16 upper-case hex digits.

    Byte 1 A5H; byte 2 version 0 (high nibble) and checksum (byte 1 high + low nibble + byte 2 high nibble)
    mod 16; byte 3 address low 8 bits; byte 4 instruction; bytes 5/6 data 1/2 (pan/tilt speed, or the
    preset number in byte 6); byte 7 zoom speed (high nibble) and address high 4 bits; byte 8 the sum of
    bytes 1-7 mod 256. Raises ValueError for an unknown action or an out-of-range value.
    """
    if not 0 <= speed <= 0xFF or not 0 <= zoom_speed <= 0xF or not 0 <= address <= 0xFFF:
        raise ValueError("speed is 0-255, zoom_speed 0-15, address 0-4095")
    if action in PTZ_MOVES:
        code = PTZ_MOVES[action]
        pan = speed if code & 0x03 else 0
        tilt = speed if code & 0x0C else 0
        zoom = zoom_speed if code & 0x30 else 0
        data1, data2, data3 = pan, tilt, zoom
    elif action in PTZ_PRESETS:
        if not 1 <= preset <= 0xFF:
            raise ValueError("preset is 1-255")
        code, data1, data2, data3 = PTZ_PRESETS[action], 0, preset, 0
    else:
        raise ValueError(f"unknown PTZ action {action!r}; one of {sorted(PTZ_MOVES) + sorted(PTZ_PRESETS)}")
    b1, version = 0xA5, 0x0
    b2 = version << 4 | ((b1 >> 4) + (b1 & 0xF) + version) % 16
    raw = [b1, b2, address & 0xFF, code, data1, data2, data3 << 4 | (address >> 8) & 0xF]
    return bytes([*raw, sum(raw) % 256]).hex().upper()


def build_device_control(
    sn: int, device_id: str, ptz: str, charset: str = "GB2312", priority: int = 5
) -> bytes:
    """A.2.3.1 DeviceControl with a PTZCmd (no Response follows: PTZ commands are fire and forget)."""
    inner = _el("PTZCmd", ptz) + "<Info>\r\n" + _el("ControlPriority", priority) + "</Info>\r\n"
    return encode("Control", "DeviceControl", sn, device_id, inner, charset)


# ------------------------------------------------------------------------------ RecordInfo (A.2.4.5)


@dataclass
class RecordItem:
    device_id: str
    name: str = ""
    file_path: str = ""
    address: str = ""
    start_time: str = ""
    end_time: str = ""
    secrecy: int = 0
    type: str = ""
    recorder_id: str = ""
    file_size: str = ""


_RECORD_FIELDS = {
    "deviceid": "device_id",
    "name": "name",
    "filepath": "file_path",
    "address": "address",
    "starttime": "start_time",
    "endtime": "end_time",
    "type": "type",
    "recorderid": "recorder_id",
    "filesize": "file_size",
}


def record_items(msg: ManscdpMessage) -> list[RecordItem]:
    out: list[RecordItem] = []
    rl = msg.find("RecordList")
    if rl is None:
        return out
    for item_el in rl:
        if item_el.tag.lower() != "item":
            continue
        item = RecordItem(device_id="")
        for child in item_el:
            tag, value = child.tag.lower(), (child.text or "").strip()
            if tag in _RECORD_FIELDS:
                setattr(item, _RECORD_FIELDS[tag], value[:256])
            elif tag == "secrecy":
                item.secrecy = _int(value)
        if item.start_time or item.end_time:
            out.append(item)
    return out


class RecordAggregator:
    """Collects paged RecordInfo responses for one SN until ``SumNum`` items arrived (bounded)."""

    MAX_ITEMS = 10_000

    def __init__(self) -> None:
        self.items: list[RecordItem] = []
        self.sum_num: int | None = None

    def add(self, msg: ManscdpMessage) -> bool:
        sn = msg.get("SumNum")
        if sn.isdigit() and len(sn) < 8:
            self.sum_num = int(sn)
        room = self.MAX_ITEMS - len(self.items)
        self.items += record_items(msg)[: max(0, room)]
        return self.complete

    @property
    def complete(self) -> bool:
        return self.sum_num is not None and (
            len(self.items) >= min(self.sum_num, self.MAX_ITEMS) or self.sum_num == 0
        )
