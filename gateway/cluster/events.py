"""What an analysis node sends the control node: an alarm event (with its scene context and the frame
as JPEG) or the clip of an alarm sent before, each under a delivery key.

The delivery key names one occurrence (``<event key>@<raised at>``): the control node records each key
once, so a replay from the spool or a second delivery after a failover never doubles an alarm. The
body is JSON (pictures and clips base64) so that it is checked like every other API body.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from analyzers import AlarmEvent, Region
from analyzers.records import Detection
from gateway.alarms.recorder import SceneContext

MAX_KEY = 512


def delivery_key(event: AlarmEvent) -> str:
    """One occurrence of an event: its key and when it was raised (to the millisecond)."""
    return f"{event.key}@{event.raised_at:.3f}"


class DetectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    box: tuple[float, float, float, float]
    score: float
    class_id: int
    label: str = Field(max_length=128)
    track_id: int | None = None


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    camera_id: str = Field(max_length=64)
    scene: str = Field(max_length=64)
    region: str = Field(max_length=256)
    occurred_at: float
    raised_at: float
    score: float
    message: str = Field(max_length=4096)
    detections: list[DetectionIn] = Field(default_factory=list, max_length=1000)
    details: dict[str, Any] = Field(default_factory=dict)
    target: str | None = Field(None, max_length=256)


class RegionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=256)
    polygon: list[tuple[float, float]] = Field(max_length=256)


class ContextIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    camera_scene_id: int | None = None
    tags: dict[str, Any] = Field(default_factory=dict)
    scene_tag: str | None = Field(None, max_length=256)
    regions: list[RegionIn] = Field(default_factory=list, max_length=64)
    priority: int = Field(2, ge=0, le=4)


class Envelope(BaseModel):
    """One spooled delivery: ``alarm`` (event + context + frame) or ``clip`` (of the alarm ``key``)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["alarm", "clip"]
    key: str = Field(min_length=1, max_length=MAX_KEY, description="the delivery key of the alarm")
    camera_id: str = Field(max_length=64)
    event: EventIn | None = None
    context: ContextIn | None = None
    jpeg: str | None = Field(None, description="the analysed frame, JPEG, base64")
    clip: str | None = Field(None, description="MP4 clip, base64")
    node: str = Field("", max_length=128, description="the Ray node that sent it")

    @model_validator(mode="after")
    def _parts(self) -> Envelope:
        if self.kind == "alarm" and (self.event is None or self.context is None or self.jpeg is None):
            raise ValueError("an alarm envelope needs event, context and jpeg")
        if self.kind == "clip" and self.clip is None:
            raise ValueError("a clip envelope needs clip")
        return self

    def jpeg_bytes(self) -> bytes:
        return _unbase64(self.jpeg or "", "jpeg")

    def clip_bytes(self) -> bytes:
        return _unbase64(self.clip or "", "clip")

    def alarm_event(self) -> AlarmEvent:
        assert self.event is not None
        e = self.event
        return AlarmEvent(
            camera_id=e.camera_id,
            scene=e.scene,
            region=e.region,
            occurred_at=e.occurred_at,
            raised_at=e.raised_at,
            score=e.score,
            message=e.message,
            detections=tuple(
                Detection(d.box, d.score, d.class_id, d.label, d.track_id) for d in e.detections
            ),
            details=dict(e.details),
            target=e.target,
        )

    def scene_context(self) -> SceneContext:
        assert self.context is not None
        c = self.context
        return SceneContext(
            camera_scene_id=c.camera_scene_id,
            tags=dict(c.tags),
            scene_tag=c.scene_tag,
            regions=[Region(r.name, r.polygon) for r in c.regions],
            priority=c.priority,
        )


def _unbase64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{what} is not valid base64") from exc


def alarm_envelope(event: AlarmEvent, ctx: SceneContext, jpeg: bytes, node: str = "") -> Envelope:
    """The envelope of an alarm event raised on an analysis node."""
    return Envelope(
        kind="alarm",
        key=delivery_key(event),
        camera_id=event.camera_id,
        event=EventIn(
            camera_id=event.camera_id,
            scene=event.scene,
            region=event.region,
            occurred_at=event.occurred_at,
            raised_at=event.raised_at,
            score=event.score,
            message=event.message,
            detections=[
                DetectionIn(box=d.box, score=d.score, class_id=d.class_id, label=d.label, track_id=d.track_id)
                for d in event.detections
            ],
            details=event.details,
            target=event.target,
        ),
        context=ContextIn(
            camera_scene_id=ctx.camera_scene_id,
            tags=ctx.tags,
            scene_tag=ctx.scene_tag,
            regions=[
                RegionIn(name=r.name, polygon=[tuple(p) for p in r.polygon.tolist()]) for r in ctx.regions
            ],
            priority=ctx.priority,
        ),
        jpeg=base64.b64encode(jpeg).decode("ascii"),
        node=node,
    )


def clip_envelope(key: str, camera_id: str, clip: bytes, node: str = "") -> Envelope:
    """The envelope of the clip of the alarm delivered under ``key``."""
    return Envelope(
        kind="clip", key=key, camera_id=camera_id, clip=base64.b64encode(clip).decode("ascii"), node=node
    )
