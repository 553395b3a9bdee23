"""Configuration of the plant context around the scenes: PTZ presets of a camera, and the production
units (装置) whose run states arrive from the plant's real-time systems (HTTP API, MQTT, OPC UA)."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from analyzers.scenes.unit_rules import UnitState

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PresetConfig(_Strict):
    """A PTZ preset as the ONVIF PTZ status reports its position (generic spaces: pan and tilt -1..1,
    zoom 0..1)."""

    name: str = Field(pattern=ID_PATTERN, description="preset name that scenes' `preset` refers to")
    pan: float = Field(ge=-1, le=1)
    tilt: float = Field(ge=-1, le=1)
    zoom: float = Field(0.0, ge=0, le=1)


class PtzConfig(_Strict):
    presets: list[PresetConfig] = Field(
        default_factory=list, description="the camera's presets with positions"
    )
    tolerance: float = Field(
        0.02,
        gt=0,
        le=0.5,
        description="how far (in each axis) the position may be off a preset and still be at it",
    )
    settle_s: float = Field(
        2.0,
        ge=0,
        le=60,
        description="after the camera is back at a preset, wait this long before scenes resume",
    )

    @model_validator(mode="after")
    def _unique(self) -> PtzConfig:
        names = [p.name for p in self.presets]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"preset names must be unique: {', '.join(dupes)}")
        return self

    def preset(self, name: str) -> PresetConfig | None:
        return next((p for p in self.presets if p.name == name), None)


class UnitConfig(_Strict):
    id: str = Field(pattern=ID_PATTERN, description="unit id, as the plant's systems name it")
    name: str = Field("", description="unit name, e.g. 常减压装置")
    state: UnitState = Field("running", description="state at first start (later the last state received)")


class UnitsMqttConfig(_Strict):
    """Unit states from an MQTT broker: topic ``<prefix>/<unit id>/state`` with the payload either the
    state name or ``{"state": ..., "actor": ...}``."""

    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    topic_prefix: str = Field("vigil/units", description="states arrive on <prefix>/<unit>/state")
    username: str | None = None
    password_env: str | None = Field(None, description="environment variable holding the broker password")
    client_id: str = Field("vigil-units", description="MQTT client id of the gateway's subscriber")
    retry_s: float = Field(5.0, gt=0, le=300, description="wait before reconnecting to the broker")

    @field_validator("topic_prefix")
    @classmethod
    def _plain_prefix(cls, value: str) -> str:
        if not value or re.search(r"[#+]", value) or value.startswith("/") or value.endswith("/"):
            raise ValueError(
                "topic_prefix is a plain topic path without wildcards or outer '/', e.g. plant/units"
            )
        return value


class UnitsOpcUaConfig(_Strict):
    """Unit states from an OPC UA server (optional extra `opcua`): one string node per unit."""

    url: str = Field(description="opc.tcp://host:port/path of the plant's OPC UA server")
    nodes: dict[str, str] = Field(
        description="unit id -> node id whose value is the state, e.g. ns=2;s=U1.State"
    )
    username: str | None = None
    password_env: str | None = None
    retry_s: float = Field(10.0, gt=0, le=600)


class PlantConfig(_Strict):
    units: list[UnitConfig] = Field(default_factory=list, description="production units (装置)")
    mqtt: UnitsMqttConfig | None = Field(None, description="subscribe to unit states over MQTT; null = off")
    opcua: UnitsOpcUaConfig | None = Field(
        None, description="subscribe to unit states over OPC UA; null = off"
    )

    @model_validator(mode="after")
    def _unique(self) -> PlantConfig:
        ids = [u.id for u in self.units]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"unit ids must be unique: {', '.join(dupes)}")
        return self
