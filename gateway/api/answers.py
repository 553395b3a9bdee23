"""The documented JSON answers of the most used read routes (issue 19 item 18), as pydantic models that
the route declarations name (``response=``) and the OpenAPI document publishes. Each mirrors what its
handler builds (``alarm_json``, ``camera_json``, the stats functions, ...); tests/api/test_answer_schemas.py
fetches every route from a seeded gateway and validates the answer against the published schema with no
undocumented key allowed, so a handler and its schema cannot drift apart silently."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from analyzers.scenes.unit_rules import UnitState

AlarmStatus = Literal["raised", "confirmed", "rejected", "disposed", "cleared", "closed"]
Verdict = Literal["true_positive", "false_positive"]
Source = Literal["live", "video"]
Time = str  # ISO 8601 with offset
ModelStatus = Literal["candidate", "active", "retired"]


# --- alarms -------------------------------------------------------------------------------------


class AlarmItem(BaseModel):
    id: str = Field(description="ULID")
    camera_id: str | None
    scene: str
    region: str
    status: AlarmStatus
    priority: int
    score: float
    message: str = Field(description="in the request's language")
    tags: dict[str, Any]
    occurred_at: Time
    raised_at: Time
    confirmed_at: Time | None
    cleared_at: Time | None
    closed_at: Time | None
    verdict: Verdict | None
    verdict_reason: str | None
    revision: int
    snapshot: str | None = Field(description="the picture's URL; null for an alarm without a frame")
    source: Source = Field(description="live: a running camera; video: an offline video job")
    video_job_id: str | None
    video_ts: float | None = Field(description="seconds into the offline video")
    kind: Literal["event", "flood"] = Field(description="flood: repeats of a flooding camera-scene merged")
    repeats: int = Field(description="repeats merged into this alarm")
    last_repeat_at: Time | None
    escalation_level: int = Field(description="escalation steps pushed so far")


class AlarmList(BaseModel):
    items: list[AlarmItem]
    next: str | None = Field(
        description="the page cursor (`before`, or `offset` with `job`); null: last page"
    )
    total: int | None = Field(None, description="with count=1: the alarms matching the filters")


class AlarmRevisionItem(BaseModel):
    revision: int
    action: str
    actor: str
    at: Time
    changes: dict[str, Any]
    note: str | None


class EvidenceItem(BaseModel):
    kind: str = Field(description="snapshot_raw, snapshot, clip, clear_snapshot or photo")
    sha256: str
    media_type: str
    size: int
    retain_until: Time
    url: str


class DisposalItem(BaseModel):
    handler: str
    handled_at: Time
    result: str
    measures: str | None
    photos: list[str] = Field(description="sha256 of the photo evidence")
    recorded_at: Time


class AlarmDetail(AlarmItem):
    details: dict[str, Any]
    revisions: list[AlarmRevisionItem]
    evidence: list[EvidenceItem]
    disposals: list[DisposalItem]


# --- cameras ------------------------------------------------------------------------------------


class CameraScene(BaseModel):
    id: int
    scene: str
    enabled: bool
    tags: dict[str, Any]
    scene_tag: str | None
    status: str = Field(description='"running", "not running" or what it lacks, e.g. "model missing: ..."')
    input_size: str = Field(description='"auto", "card" or "WxH"')
    regions: list[dict[str, Any]]


class CameraFault(BaseModel):
    code: str
    message: str


class CameraPlant(BaseModel):
    unit: dict[str, Any] | None = Field(description="the camera's production unit with its run state")
    diagnosis: Any = Field(description="video diagnosis faults raised now; null when not diagnosed")


class CameraAnswer(BaseModel):
    id: str
    name: str
    location: str
    source: str | None = Field(description="the source (NVR, ONVIF, GB/T 28181 device) it came from")
    origin: str = Field(description="config, api or discovered")
    stream_url: str = Field(description="without credentials")
    sub_stream_url: str | None
    transport: str
    quality: str | None
    enabled: bool
    status: str = Field(description="online, offline, error, unknown, ...")
    last_error: str | None
    codec: str | None
    width: int | None
    height: int | None
    fps: float | None
    gop_s: float | None
    decode_mode: str | None
    stalls: int | None
    onvif: dict[str, Any] | None
    plant: CameraPlant
    last_frame_at: Time | None
    scenes: list[CameraScene]
    fault: CameraFault | None = Field(description="why the stream is down, in the user's words")


class CameraList(BaseModel):
    items: list[CameraAnswer]


# --- stats --------------------------------------------------------------------------------------


class PeriodCounts(BaseModel):
    since: Time
    total: int
    open: int
    handled: int
    by_scene: dict[str, int]


class CameraCounts(BaseModel):
    total: int
    online: int
    offline: int
    error: int
    other: int
    disabled: int


class UplinkTarget(BaseModel):
    id: int
    name: str
    kind: str
    tier: str
    enabled: bool
    running: bool
    available: bool
    circuit: str
    pending: int
    dead: int
    delivered: int
    oldest_pending_s: float | None
    last_error: str | None
    last_delivered_at: Time | None


class OverviewUplinkTarget(UplinkTarget):
    state: Literal["ok", "degraded", "down", "disabled"]


class UplinkHealth(BaseModel):
    state: Literal["none", "ok", "degraded", "down"]
    pending: int
    dead: int
    targets: list[OverviewUplinkTarget]


class LatestAlarm(AlarmItem):
    camera_name: str | None
    camera_location: str | None


class StatsOverview(BaseModel):
    timezone: str
    generated_at: Time
    today: PeriodCounts
    week: PeriodCounts
    open_total: int
    cameras: CameraCounts
    uplinks: UplinkHealth
    latest: list[LatestAlarm]


class GroupCount(BaseModel):
    key: str
    count: int
    previous: int | None = Field(None, description="with compare=1")
    previous_key: str | None = Field(None, description="group=day with compare=1: the day compared with")
    name_zh: str | None = Field(None, description="group=scene")
    name_en: str | None = Field(None, description="group=scene")
    camera_id: str | None = Field(None, description="group=camera")
    name: str | None = Field(None, description="group=camera")
    location: str | None = Field(None, description="group=camera")


class PreviousPeriod(BaseModel):
    since: Time
    until: Time
    total: int


class StatsAlarms(BaseModel):
    group: str
    timezone: str
    since: Time
    until: Time
    total: int
    items: list[GroupCount]
    previous: PreviousPeriod | None = Field(None, description="with compare=1")
    change: float | None = Field(None, description="with compare=1: relative change, null without a base")


class Durations(BaseModel):
    count: int
    mean: float | None
    p50: float | None
    p90: float | None


class DisposalFigures(BaseModel):
    total: int
    verified: int
    confirmed_true: int
    rejected_false: int
    unverified: int
    disposed: int
    cleared: int
    closed: int
    open: int
    handled: int
    time_to_confirm_s: Durations
    time_to_dispose_s: Durations


class DisposalScene(DisposalFigures):
    scene: str
    name_zh: str
    name_en: str


class StatsDisposal(BaseModel):
    timezone: str
    since: Time
    until: Time
    total: DisposalFigures
    items: list[DisposalScene]


class KpiFigures(BaseModel):
    alarms: int
    alarms_per_hour: float | None
    confirmed_30s: int
    confirmed_30s_rate: float | None
    confirmed_true: int
    disposed_30min: int
    disposed_30min_rate: float | None
    open_over_24h: int
    peak_10min: int
    chattering: int
    flood_periods: int
    flood_minutes: float


class KpiGroup(KpiFigures):
    key: str
    name_zh: str | None = Field(None, description="group=scene")
    name_en: str | None = Field(None, description="group=scene")
    name: str | None = Field(None, description="group=camera")


class FloodPeriod(BaseModel):
    alarm_id: str
    camera_id: str | None
    scene: str
    start: Time
    end: Time


class StatsKpi(BaseModel):
    timezone: str
    since: Time
    until: Time
    source: Source
    group: str
    hours: float
    total: KpiFigures
    items: list[KpiGroup]
    floods: list[FloodPeriod]


# --- scenes, models, uplinks, samples, enrolments, units, cluster ------------------------------


class SceneAlarmType(BaseModel):
    code: str
    zh: str
    en: str
    gb_alarm_method: int | None
    gb_alarm_type: int | None


class SceneParam(BaseModel):
    key: str
    label: str = Field(description="in the request's language")
    description: str
    type: str | None = Field(description="the JSON type: string, number, integer, boolean, array, object")
    nullable: bool
    required: bool
    default: Any
    enum: list[Any] | None
    items: dict[str, Any] | None = Field(description="an array's item schema")
    minimum: float | None
    maximum: float | None
    exclusive_minimum: float | None
    exclusive_maximum: float | None
    schema_: dict[str, Any] = Field(alias="schema", description="the parameter's JSON schema")


class SceneItem(BaseModel):
    key: str
    name_zh: str
    name_en: str
    catalogue_zh: str
    catalogue_en: str
    sample_fps: float
    implemented: bool = Field(description="false: catalogued, not yet implemented")
    default_model: str | None
    uses_pose: bool
    labels: list[str]
    alarm_types: list[SceneAlarmType]
    params: list[SceneParam]
    params_schema: dict[str, Any] | None = Field(description="the parameters' JSON schema")


class AlarmTypeName(BaseModel):
    code: str
    zh: str
    en: str


class AlarmTypeCatalogue(BaseModel):
    version: int
    items: list[AlarmTypeName]


class SceneList(BaseModel):
    items: list[SceneItem]
    alarm_types: AlarmTypeCatalogue = Field(description="the alarm type table")
    scene_config_schema: dict[str, Any] = Field(description="the JSON schema of a camera's scene entry")


class ModelVersionItem(BaseModel):
    id: str
    version: str
    sha256: str
    status: ModelStatus
    metrics: dict[str, Any]
    created_at: Time
    provider: str | None = Field(description="the execution provider while this version is loaded")


class ModelItem(BaseModel):
    name: str
    family: str
    description: str
    licence: str
    source: str
    created_at: Time
    versions: list[ModelVersionItem]


class ModelList(BaseModel):
    items: list[ModelItem]


class UplinkList(BaseModel):
    items: list[UplinkTarget]


class SampleItem(BaseModel):
    id: str
    sha256: str
    width: int
    height: int
    origin: Literal["imported", "confirmed_alarm", "false_positive", "capture"]
    camera_id: str | None
    scene: str | None
    alarm_id: str | None
    file_name: str | None
    removed: bool
    tags: dict[str, Any]
    labels: list[dict[str, Any]] = Field(description="[{label, box: [x1, y1, x2, y2] in 0..1}]")
    created_at: Time
    updated_at: Time
    image: str
    tasks: list[str] | None = Field(None)


class SampleList(BaseModel):
    items: list[SampleItem]
    next: str | None


class EnrolmentItem(BaseModel):
    id: str
    scene: str
    name: str
    kind: Literal["positive", "negative"]
    camera_id: str | None = Field(description="null: the whole site")
    version: int
    status: ModelStatus
    current: bool
    examples: int
    created_at: Time
    created_by: str
    activated_at: Time | None
    threshold: float | None
    calibration: dict[str, Any]
    origin: dict[str, Any]
    sha256: str


class EnrolmentList(BaseModel):
    items: list[EnrolmentItem]
    scenes: dict[str, str] = Field(description="enrollable scenes and what each enrols (person, torso, ...)")


class UnitItem(BaseModel):
    id: str
    name: str
    state: UnitState
    state_zh: str
    state_en: str
    state_since: Time
    changed_by: str
    via: str
    cameras: list[str]


class UnitList(BaseModel):
    items: list[UnitItem]


class ClusterNode(BaseModel):
    node_id: str
    address: str
    alive: bool
    cameras: int
    # engine ray only:
    camera_slots: int | None = None
    standby: int | None = None
    standby_ready: int | None = None
    load: float | None = None
    cpu: float | None = None
    loadavg: float | None = None
    resources: dict[str, Any] | None = None


class ClusterCamera(BaseModel):
    camera_id: str
    node_id: str | None
    state: str
    stream: str | None
    frames_analysed: int | None
    # engine ray only:
    actor: str | None = None
    address: str | None = None
    fps: float | None = None
    events: int | None = None
    cpu: float | None = None
    spool: Any = None
    restarts: int | None = None
    placed_at: float | None = None
    last_error: str | None = None


class ClusterAnswer(BaseModel):
    engine: str = Field(description="local or ray")
    address: str | None = Field(None, description="engine ray: the Ray cluster's address")
    nodes: list[ClusterNode]
    cameras: list[ClusterCamera]
