"""Declarative field maps: the canonical alarm record -> one upstream's JSON shape.

Every upstream names its fields differently, formats times in its own zone and codes alarm types from
its own table, so the shape lives in configuration, not code. A map is a pydantic model, loadable from
YAML::

    base: empty                       # "record" starts from the whole canonical record instead
    fields:
      alarmId: id                     # shorthand: target path <- source dotted path
      device.channel: camera.gb_channel_id        # dotted target paths nest
      platform: {const: vigil}
      alarmTime: {source: occurred_at, time: {format: strftime, pattern: "%Y-%m-%d %H:%M:%S",
                                              timezone: Asia/Shanghai}}
      alarmType: {source: type.code, codes: alarm_types}
      alarmPicture: {picture: snapshot, encoding: base64}   # base64 | data_url | url | multipart
      dataId: $idempotency_key        # $-sources name the message, not the record
    code_tables:
      alarm_types: {values: {helmet: "01", smoking: "02"}, default: "99"}
    picture_url: "https://gw.example/evidence/{sha256}"      # for encoding: url
    envelope: {array: true, wrap: data, fields: {appId: {const: my-app}}}

A source that is missing (or an evidence file that is absent) yields null, never an exception: an
upstream rejecting a null is a delivery outcome the dispatcher can report, a crash is not.
"""

from __future__ import annotations

import base64
import copy
import enum
import json
import logging
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from uplink.records import UplinkMessage

log = logging.getLogger(__name__)

MESSAGE_SOURCES = ("$idempotency_key", "$alarm_id", "$revision", "$sequence", "$target", "$now")


class PictureEncoding(enum.StrEnum):
    BASE64 = "base64"  # pure base64, no "data:" prefix
    DATA_URL = "data_url"  # data:image/jpeg;base64,...
    URL = "url"  # FieldMap.picture_url formatted with the evidence's sha256 and kind
    MULTIPART = "multipart"  # the HTTP target sends the file as a form part; the field names the part


class TimeFormat(BaseModel):
    """How a timestamp is written: ISO 8601, a strftime pattern, or epoch seconds/milliseconds."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["iso", "strftime", "epoch_s", "epoch_ms"] = "iso"
    pattern: str | None = None
    timezone: str = "UTC"  # IANA name; epoch formats ignore it

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _pattern_matches_format(self) -> TimeFormat:
        if self.format == "strftime" and not self.pattern:
            raise ValueError("time format 'strftime' needs a pattern, e.g. '%Y-%m-%d %H:%M:%S'")
        if self.format != "strftime" and self.pattern:
            raise ValueError(f"a pattern is only used with format 'strftime', not {self.format!r}")
        return self

    def render(self, value: Any) -> Any:
        moment = _parse_time(value)
        if moment is None:
            return None
        if self.format == "epoch_s":
            return int(moment.timestamp())
        if self.format == "epoch_ms":
            return int(moment.timestamp() * 1000)
        local = moment.astimezone(ZoneInfo(self.timezone))
        if self.format == "strftime":
            assert self.pattern is not None  # guaranteed by the validator
            return local.strftime(self.pattern)
        return local.isoformat()


class CodeTable(BaseModel):
    """Maps a value (compared as text) to the upstream's code; anything unlisted becomes ``default``."""

    model_config = ConfigDict(extra="forbid")

    values: dict[str, Any]
    default: Any = None

    @field_validator("values", mode="before")
    @classmethod
    def _keys_as_text(cls, value: Any) -> Any:
        # YAML reads `1: "x"` with an int key; the lookup compares text.
        return {str(k): v for k, v in value.items()} if isinstance(value, Mapping) else value

    def lookup(self, value: Any) -> Any:
        return self.values.get(_as_key(value), self.default)


class FieldSpec(BaseModel):
    """One target field: exactly one of ``source``, ``const`` or ``picture``, plus optional transforms."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    source: str | None = None  # dotted path in the record ("camera.gb_channel_id") or a $-message source
    const: Any = None
    picture: str | None = None  # evidence kind: snapshot, clear_snapshot, ...
    encoding: PictureEncoding = PictureEncoding.BASE64
    part: str | None = None  # multipart part name; defaults to the target field's last segment
    time: TimeFormat | None = None
    codes: str | CodeTable | None = None  # a name in FieldMap.code_tables, or an inline table
    default: Any = None  # used when the result would be null

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"source": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_kind(self) -> FieldSpec:
        given = [k for k in ("source", "const", "picture") if k in self.model_fields_set]
        if len(given) != 1:
            raise ValueError(
                f"a field needs exactly one of 'source', 'const' or 'picture' (got {given or 'none'})"
            )
        if self.time is not None and self.codes is not None:
            raise ValueError("use either 'time' or 'codes' on a field, not both")
        if self.picture is not None and (self.time is not None or self.codes is not None):
            raise ValueError("a picture field takes no 'time' or 'codes'")
        if self.source is not None and self.source.startswith("$") and self.source not in MESSAGE_SOURCES:
            raise ValueError(f"unknown message source {self.source!r}; known: {', '.join(MESSAGE_SOURCES)}")
        return self


class Envelope(BaseModel):
    """What wraps the mapped object: a one-element array and/or an outer object with extra fields."""

    model_config = ConfigDict(extra="forbid")

    array: bool = False  # send [mapped]
    wrap: str | None = None  # outer field that carries the (array of the) mapped object, or its ciphertext
    fields: dict[str, FieldSpec] = Field(default_factory=dict)  # rendered from the same record

    @model_validator(mode="after")
    def _fields_need_wrap(self) -> Envelope:
        if self.fields and not self.wrap:
            raise ValueError("envelope.fields need envelope.wrap (the outer field that carries the data)")
        return self


@dataclass(frozen=True, slots=True)
class FilePart:
    """A picture the HTTP target sends as a multipart file part."""

    name: str
    filename: str
    path: Path
    media_type: str


@dataclass(slots=True)
class Rendered:
    body: Any  # the JSON-ready payload (envelope applied)
    files: list[FilePart] = field(default_factory=list)


Encrypt = Callable[[bytes], str]


class FieldMap(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base: Literal["empty", "record"] = "empty"  # "record": start from a copy of the canonical record
    fields: dict[str, FieldSpec] = Field(default_factory=dict)
    code_tables: dict[str, CodeTable] = Field(default_factory=dict)
    picture_url: str | None = None  # e.g. "https://gw.example/evidence/{sha256}"; {kind} also known
    envelope: Envelope = Field(default_factory=Envelope)

    @field_validator("picture_url")
    @classmethod
    def _url_placeholders(cls, value: str | None) -> str | None:
        if value is not None:
            names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
            unknown = names - {"sha256", "kind"}
            if unknown or "sha256" not in names:
                raise ValueError("picture_url must contain {sha256} and may contain {kind}, nothing else")
        return value

    @model_validator(mode="after")
    def _references_resolve(self) -> FieldMap:
        for where, specs in (("fields", self.fields), ("envelope.fields", self.envelope.fields)):
            for target, spec in specs.items():
                if isinstance(spec.codes, str) and spec.codes not in self.code_tables:
                    raise ValueError(f"{where}.{target}: code table {spec.codes!r} is not in code_tables")
                if spec.picture is not None and spec.encoding is PictureEncoding.URL and not self.picture_url:
                    raise ValueError(f"{where}.{target}: encoding 'url' needs picture_url")
                if where == "envelope.fields" and spec.picture is not None:
                    raise ValueError(f"{where}.{target}: pictures belong in fields, not the envelope")
        return self

    # --- construction ------------------------------------------------------------------------------

    @classmethod
    def default(cls) -> FieldMap:
        """The identity map: the canonical record as-is plus the snapshot inline as base64."""
        return cls(base="record", fields={"snapshot": FieldSpec(picture="snapshot")})

    @classmethod
    def from_yaml(cls, text_or_path: str | Path) -> FieldMap:
        text = text_or_path.read_text("utf-8") if isinstance(text_or_path, Path) else text_or_path
        return cls.model_validate(yaml.safe_load(text) or {})

    @property
    def uses_multipart(self) -> bool:
        return any(
            s.picture is not None and s.encoding is PictureEncoding.MULTIPART for s in self.fields.values()
        )

    # --- rendering ---------------------------------------------------------------------------------

    def map_record(self, message: UplinkMessage, files: list[FilePart] | None = None) -> dict[str, Any]:
        """The mapped object alone (no envelope). Reads evidence files: call it off the event loop."""
        out: dict[str, Any] = copy.deepcopy(message.body) if self.base == "record" else {}
        for target, spec in self.fields.items():
            _set_path(out, target, self._value(spec, target, message, files))
        return out

    def render(
        self,
        message: UplinkMessage,
        *,
        encrypt: Encrypt | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Rendered:
        """Map, add ``extra`` (target path -> value) to the mapped object, then apply the envelope.

        ``encrypt`` turns the JSON of the inner payload into text (a cipher envelope); it needs
        ``envelope.wrap`` because the ciphertext has to sit in some outer field.
        """
        files: list[FilePart] = []
        mapped = self.map_record(message, files)
        for target, value in (extra or {}).items():
            _set_path(mapped, target, value)
        inner: Any = [mapped] if self.envelope.array else mapped
        if encrypt is not None:
            if not self.envelope.wrap:
                raise ValueError("an encrypted payload needs envelope.wrap in the field map")
            inner = encrypt(dumps(inner))
        if not self.envelope.wrap:
            return Rendered(inner, files)
        outer: dict[str, Any] = {}
        for target, spec in self.envelope.fields.items():
            _set_path(outer, target, self._value(spec, target, message, None))
        _set_path(outer, self.envelope.wrap, inner)
        return Rendered(outer, files)

    def _value(
        self, spec: FieldSpec, target: str, message: UplinkMessage, files: list[FilePart] | None
    ) -> Any:
        if spec.picture is not None:
            value = self._picture(spec, target, message, files)
        elif "const" in spec.model_fields_set:
            value = copy.deepcopy(spec.const)
        else:
            assert spec.source is not None
            value = _message_source(spec.source, message)
            if spec.codes is not None:
                table = self.code_tables[spec.codes] if isinstance(spec.codes, str) else spec.codes
                value = None if value is None else table.lookup(value)
            if spec.time is not None:
                value = spec.time.render(value)
        return spec.default if value is None else value

    def _picture(
        self, spec: FieldSpec, target: str, message: UplinkMessage, files: list[FilePart] | None
    ) -> Any:
        kind = spec.picture
        assert kind is not None
        meta = _evidence(message.body, kind)
        media_type = str(meta.get("media_type") or "image/jpeg")
        if spec.encoding is PictureEncoding.URL:
            sha = meta.get("sha256")
            assert self.picture_url is not None  # guaranteed by the validator
            return self.picture_url.format(sha256=sha, kind=kind) if sha else None
        path = message.attachments.get(kind)
        if path is None or not path.is_file():
            return None
        if spec.encoding is PictureEncoding.MULTIPART:
            name = spec.part or target.rsplit(".", 1)[-1]
            if files is not None:
                files.append(FilePart(name, path.name, path, media_type))
            return name
        try:
            data = base64.b64encode(path.read_bytes()).decode("ascii")
        except OSError as exc:  # vanished between is_file and read: the record still goes out
            log.warning("evidence %s for %s unreadable: %s", kind, message.idempotency_key, exc)
            return None
        return data if spec.encoding is PictureEncoding.BASE64 else f"data:{media_type};base64,{data}"


def dumps(value: Any) -> bytes:
    """JSON as upstreams usually want it: UTF-8 Chinese text, compact."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")


def lookup(data: Any, path: str) -> Any:
    """The value at a dotted path (integer segments index lists); None where any step is missing."""
    current = data
    for part in path.split("."):
        if isinstance(current, Mapping):
            current = current.get(part)
        elif isinstance(current, list) and part.lstrip("-").isdigit():
            index = int(part)
            current = current[index] if -len(current) <= index < len(current) else None
        else:
            return None
        if current is None:
            return None
    return current


def _message_source(source: str, message: UplinkMessage) -> Any:
    if not source.startswith("$"):
        return lookup(message.body, source)
    if source == "$now":
        return datetime.now(UTC).isoformat()
    attr = source[1:]
    return getattr(message, attr)


def _evidence(body: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    for item in body.get("evidence") or []:
        if isinstance(item, Mapping) and item.get("kind") == kind:
            return item
    return {}


def _set_path(out: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node = out
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value


def _as_key(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _parse_time(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    else:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            log.warning("unparseable time %r mapped to null", value)
            return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
