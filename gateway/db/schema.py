"""The relational schema: what DESIGN.md's functions need, including what later issues fill in.

Changing it means adding an Alembic migration (gateway/migrations/versions); a test checks that
the migrations and these models agree.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from gateway.secrets_at_rest import SealedText

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, dt.datetime: DateTime(timezone=True)}


class Source(Base):
    """Where cameras come from: an RTSP list, an ONVIF device, a GB/T 28181 device or platform."""

    __tablename__ = "sources"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200), default="")
    address: Mapped[str | None] = mapped_column(String(255))
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)  # never holds secrets
    status: Mapped[str] = mapped_column(String(16), default="unknown")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Camera(Base):
    __tablename__ = "cameras"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    location: Mapped[str] = mapped_column(String(200), default="")
    source_id: Mapped[str | None] = mapped_column(ForeignKey("sources.id", ondelete="SET NULL"))
    origin: Mapped[str] = mapped_column(String(16), default="config")  # config | api | discovered
    # may carry credentials: sealed in the database (gateway/secrets_at_rest.py), never returned by the API
    stream_url: Mapped[str] = mapped_column(SealedText)
    sub_stream_url: Mapped[str | None] = mapped_column(SealedText)
    transport: Mapped[str] = mapped_column(String(8), default="tcp")
    quality: Mapped[str | None] = mapped_column(String(64))
    gb_channel_id: Mapped[str | None] = mapped_column(String(20), unique=True)
    ptz: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="unknown")  # online | offline | error | ...
    last_error: Mapped[str | None] = mapped_column(Text)
    last_frame_at: Mapped[dt.datetime | None] = mapped_column()
    codec: Mapped[str | None] = mapped_column(String(16))
    # Alarm configuration: push channels (target names), recipients, conditions (min priority).
    alarm_settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Plant context: the unit it belongs to, video diagnosis thresholds, image enhancement, PTZ presets.
    plant_settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    tasks: Mapped[list[CameraScene]] = relationship(back_populates="camera", cascade="all, delete-orphan")


class CameraScene(Base):
    """A scene running on a camera (a detection task), with its settings and feature tags."""

    __tablename__ = "camera_scenes"
    __table_args__ = (UniqueConstraint("camera_id", "scene", name="uq_camera_scenes_camera_scene"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    camera_id: Mapped[str] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"))
    scene: Mapped[str] = mapped_column(String(32))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    model_version_id: Mapped[str | None] = mapped_column(ForeignKey("model_versions.id"))
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)  # regions, thresholds, schedule
    tags: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the standard's feature tags
    scene_tag: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    camera: Mapped[Camera] = relationship(back_populates="tasks")


class Alarm(Base):
    __tablename__ = "alarms"
    __table_args__ = (
        Index("ix_alarms_camera_occurred", "camera_id", "occurred_at"),
        Index("ix_alarms_status_occurred", "status", "occurred_at"),
        Index("ix_alarms_event_key_status", "event_key", "status"),
        Index("ix_alarms_scene_occurred", "scene", "occurred_at"),
        Index("ix_alarms_video_job_ts", "video_job_id", "video_ts"),  # an offline job's alarms, in video time
        Index("ix_alarms_source_occurred", "source", "occurred_at"),
        Index("ix_alarms_status_source", "status", "source"),  # open live alarms (overview)
        # Time ranges (overview, statistics, lists): covering, the statistics read no table rows.
        Index(
            "ix_alarms_occurred_cover",
            "occurred_at",
            "scene",
            "camera_id",
            "region",
            "status",
            "verdict",
            "raised_at",
            "confirmed_at",
            "cleared_at",
            "id",
        ),
    )
    id: Mapped[str] = mapped_column(String(26), primary_key=True)  # ULID: sortable, never reused
    # None for the gateway's own alarms (storage running out), which belong to no camera.
    camera_id: Mapped[str | None] = mapped_column(ForeignKey("cameras.id"))
    camera_scene_id: Mapped[int | None] = mapped_column(ForeignKey("camera_scenes.id", ondelete="SET NULL"))
    scene: Mapped[str] = mapped_column(String(32))
    region: Mapped[str] = mapped_column(String(100), default="")
    event_key: Mapped[str] = mapped_column(String(200))  # camera/scene/region: one open alarm per key
    status: Mapped[str] = mapped_column(String(16), default="raised")
    priority: Mapped[int] = mapped_column(Integer, default=2)
    score: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    tags: Mapped[dict[str, Any]] = mapped_column(default=dict)
    occurred_at: Mapped[dt.datetime] = mapped_column()
    raised_at: Mapped[dt.datetime] = mapped_column()
    confirmed_at: Mapped[dt.datetime | None] = mapped_column()
    verdict: Mapped[str | None] = mapped_column(String(16))  # true_positive | false_positive
    verdict_reason: Mapped[str | None] = mapped_column(Text)
    cleared_at: Mapped[dt.datetime | None] = mapped_column()
    closed_at: Mapped[dt.datetime | None] = mapped_column()
    model_version_id: Mapped[str | None] = mapped_column(ForeignKey("model_versions.id"))
    video_ts: Mapped[float | None] = mapped_column(Float)  # offset in an offline video
    # live (a running camera, a device, the gateway) | video (an offline video job: video_job_id)
    source: Mapped[str] = mapped_column(String(16), default="live", server_default="live")
    video_job_id: Mapped[str | None] = mapped_column(String(26))
    kind: Mapped[str] = mapped_column(String(16), default="event", server_default="event")  # event | flood
    # Repeats merged into this alarm (the same target re-acquired, a cooldown, a flood) and the last one.
    repeats: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_repeat_at: Mapped[dt.datetime | None] = mapped_column()
    escalation_level: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # steps pushed
    revision: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    revisions: Mapped[list[AlarmRevision]] = relationship(
        back_populates="alarm", order_by="AlarmRevision.revision", cascade="all, delete-orphan"
    )
    evidence: Mapped[list[Evidence]] = relationship(back_populates="alarm")


class AlarmRevision(Base):
    """The audit trail: every change to an alarm, who made it, when, and what changed."""

    __tablename__ = "alarm_revisions"
    __table_args__ = (UniqueConstraint("alarm_id", "revision", name="uq_alarm_revisions_alarm_revision"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alarm_id: Mapped[str] = mapped_column(ForeignKey("alarms.id", ondelete="CASCADE"))
    revision: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(32))  # raised | updated | confirmed | rejected | ...
    actor: Mapped[str] = mapped_column(String(100))  # user name, token name or "analyzer"
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    changes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    note: Mapped[str | None] = mapped_column(Text)

    alarm: Mapped[Alarm] = relationship(back_populates="revisions")


class Disposal(Base):
    """A disposal record: who handled the alarm, when, with what result and measures."""

    __tablename__ = "alarm_disposals"
    __table_args__ = (Index("ix_alarm_disposals_alarm_handled", "alarm_id", "handled_at"),)  # first disposal
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alarm_id: Mapped[str] = mapped_column(ForeignKey("alarms.id", ondelete="CASCADE"), index=True)
    handler: Mapped[str] = mapped_column(String(100))
    handled_at: Mapped[dt.datetime] = mapped_column()
    result: Mapped[str] = mapped_column(Text)
    measures: Mapped[str | None] = mapped_column(Text)
    photos: Mapped[list[Any]] = mapped_column(default=list)  # sha256 of the photo evidence files
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Evidence(Base):
    """An evidence file, stored content-addressed under the storage root."""

    __tablename__ = "evidence"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alarm_id: Mapped[str | None] = mapped_column(ForeignKey("alarms.id", ondelete="RESTRICT"), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # snapshot_raw | snapshot | clip | clear_snapshot | photo
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    path: Mapped[str] = mapped_column(String(255))  # relative to the storage root
    media_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    retain_until: Mapped[dt.datetime] = mapped_column()

    alarm: Mapped[Alarm | None] = relationship(back_populates="evidence")


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100), default="")
    password_hash: Mapped[str] = mapped_column(String(255))  # argon2id
    role: Mapped[str] = mapped_column(String(16))  # admin | operator | viewer
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[dt.datetime | None] = mapped_column()


class ApiToken(Base):
    """Bearer tokens: console sessions, machine tokens and callback tokens, each with scopes.

    Only a SHA-256 of the token is stored; the token itself is shown once when created.
    """

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))  # session | machine | callback
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))  # first characters, to recognise a token in lists
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    scopes: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column()
    last_used_at: Mapped[dt.datetime | None] = mapped_column()
    revoked_at: Mapped[dt.datetime | None] = mapped_column()


class Model(Base):
    __tablename__ = "models"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    family: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text, default="")
    licence: Mapped[str] = mapped_column(String(64), default="")
    source: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    versions: Mapped[list[ModelVersion]] = relationship(
        back_populates="model", order_by="ModelVersion.created_at"
    )


class Dataset(Base):
    """A training or test set: a named, frozen list of samples."""

    __tablename__ = "datasets"
    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    purpose: Mapped[str] = mapped_column(String(16))  # train | test | adversarial
    task_id: Mapped[int | None] = mapped_column(ForeignKey("detection_tasks.id"))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ModelVersion(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version", name="uq_model_versions_model_version"),)
    id: Mapped[str] = mapped_column(String(26), primary_key=True)  # the version's unique id (ULID)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    version: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(255))  # model directory, relative to the storage root
    card: Mapped[dict[str, Any]] = mapped_column(default=dict)
    train_set_id: Mapped[str | None] = mapped_column(ForeignKey("datasets.id"))
    test_set_id: Mapped[str | None] = mapped_column(ForeignKey("datasets.id"))
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)  # precision, recall, F1 on the test set
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | retired
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    activated_at: Mapped[dt.datetime | None] = mapped_column()

    model: Mapped[Model] = relationship(back_populates="versions")


class DetectionTask(Base):
    """A detection target (what a model must find) with its label set."""

    __tablename__ = "detection_tasks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    scene: Mapped[str | None] = mapped_column(String(32))
    labels: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Sample(Base):
    """An image with boxes and labels for training or evaluation."""

    __tablename__ = "samples"
    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    path: Mapped[str] = mapped_column(String(255))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    origin: Mapped[str] = mapped_column(String(24))  # imported | confirmed_alarm | false_positive | capture
    camera_id: Mapped[str | None] = mapped_column(ForeignKey("cameras.id", ondelete="SET NULL"))
    scene: Mapped[str | None] = mapped_column(String(32))
    alarm_id: Mapped[str | None] = mapped_column(ForeignKey("alarms.id", ondelete="SET NULL"))
    tags: Mapped[dict[str, Any]] = mapped_column(default=dict)
    labels: Mapped[list[Any]] = mapped_column(default=list)  # [{label, box: [x1,y1,x2,y2] in 0..1}]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class DatasetSample(Base):
    __tablename__ = "dataset_samples"
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True)
    sample_id: Mapped[str] = mapped_column(ForeignKey("samples.id", ondelete="CASCADE"), primary_key=True)


class UplinkTarget(Base):
    __tablename__ = "uplink_targets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    tier: Mapped[str] = mapped_column(String(16))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)  # never holds secrets
    circuit_state: Mapped[str] = mapped_column(String(16), default="closed")
    last_error: Mapped[str | None] = mapped_column(Text)
    last_delivered_at: Mapped[dt.datetime | None] = mapped_column()
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class OutboxRow(Base):
    """One delivery of one alarm revision to one target; written with the revision, in its transaction."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("target_id", "idempotency_key", name="uq_outbox_target_key"),
        Index("ix_outbox_target_status_next", "target_id", "status", "next_attempt_at"),
    )
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    target_id: Mapped[int] = mapped_column(ForeignKey("uplink_targets.id", ondelete="CASCADE"))
    alarm_id: Mapped[str] = mapped_column(ForeignKey("alarms.id", ondelete="CASCADE"), index=True)
    alarm_revision: Mapped[int] = mapped_column(Integer)
    idempotency_key: Mapped[str] = mapped_column(String(64))  # alarm id + revision
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | delivered | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[dt.datetime | None] = mapped_column()


class Video(Base):
    """A video in the library (uploaded or imported), stored once under ``videos/`` by its SHA-256.

    The same bytes for the same camera and start are one row; the same bytes as another camera's or
    start are another row naming the same file. Kept ``evidence_retention_days`` like evidence.
    """

    __tablename__ = "videos"
    __table_args__ = (
        UniqueConstraint("sha256", "camera_id", "started_at", name="uq_videos_sha256_camera_start"),
        Index("ix_videos_camera_started", "camera_id", "started_at"),
        Index("ix_videos_started_ended", "started_at", "ended_at"),
    )
    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    # No foreign key: a camera removed without alarms is deleted, its videos stay until retention.
    camera_id: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[dt.datetime] = mapped_column()  # the first frame, UTC
    ended_at: Mapped[dt.datetime] = mapped_column()  # started_at + duration_s: range queries
    duration_s: Mapped[float] = mapped_column(Float)
    frames: Mapped[int | None] = mapped_column(Integer)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    codec: Mapped[str] = mapped_column(String(32), default="")
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    path: Mapped[str] = mapped_column(String(255))  # relative to the storage root, under videos/
    filename: Mapped[str] = mapped_column(String(255), default="")  # as uploaded
    uploaded_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    retain_until: Mapped[dt.datetime] = mapped_column()


class AnalysisJob(Base):
    """An offline analysis: an upload's (one video) or a history replay's (cameras over a time range)."""

    __tablename__ = "analysis_jobs"
    __table_args__ = (Index("ix_analysis_jobs_status", "status"),)
    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # upload | replay
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued|running|done|failed|cancelled
    camera_ids: Mapped[list[Any]] = mapped_column(default=list)
    since: Mapped[dt.datetime | None] = mapped_column()
    until: Mapped[dt.datetime | None] = mapped_column()
    scenes: Mapped[list[Any] | None] = mapped_column(JSON)  # scene keys; None: every enabled scene
    model: Mapped[str | None] = mapped_column(String(120))  # as given
    model_version_id: Mapped[str | None] = mapped_column(ForeignKey("model_versions.id"))  # resolved
    frames_done: Mapped[int] = mapped_column(Integer, default=0)
    frames_total: Mapped[int | None] = mapped_column(Integer)
    alarm_count: Mapped[int] = mapped_column(Integer, default=0)
    notes: Mapped[list[Any]] = mapped_column(default=list)  # per camera: why nothing was analysed
    error: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column()
    finished_at: Mapped[dt.datetime | None] = mapped_column()

    videos: Mapped[list[AnalysisJobVideo]] = relationship(
        back_populates="job", order_by="AnalysisJobVideo.id", cascade="all, delete-orphan"
    )


class AnalysisJobVideo(Base):
    """One video of a job (the part of it inside the job's range) and its result."""

    __tablename__ = "analysis_job_videos"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("analysis_jobs.id", ondelete="CASCADE"), index=True)
    video_id: Mapped[str | None] = mapped_column(ForeignKey("videos.id", ondelete="SET NULL"), index=True)
    camera_id: Mapped[str] = mapped_column(String(64))
    from_s: Mapped[float] = mapped_column(Float, default=0.0)  # seconds into the video
    to_s: Mapped[float | None] = mapped_column(Float)  # None: to its end
    status: Mapped[str] = mapped_column(String(16), default="queued")
    frames: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int | None] = mapped_column(Integer)
    alarm_count: Mapped[int] = mapped_column(Integer, default=0)
    alarm_ids: Mapped[list[Any]] = mapped_column(default=list)  # the first 500
    model_versions: Mapped[dict[str, Any]] = mapped_column(default=dict)  # scene -> model version id
    error: Mapped[str | None] = mapped_column(Text)

    job: Mapped[AnalysisJob] = relationship(back_populates="videos")


class GbDeviceApproval(Base):
    """A GB/T 28181 device admitted (or refused) through the API, kept across restarts. The password is
    never stored: only HA1 = MD5(device id:realm:password), which is all a digest registrar needs; it is
    valid for ``realm`` only (a changed server domain asks for a new approval)."""

    __tablename__ = "gb_device_approvals"
    device_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  # approved / refused
    realm: Mapped[str] = mapped_column(String(64), default="")
    ha1: Mapped[str | None] = mapped_column(String(32))  # secret-equivalent: never logged or returned
    decided_by: Mapped[str] = mapped_column(String(100), default="")
    decided_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Unit(Base):
    """A production unit (装置) and its run state, set by the plant's real-time systems."""

    __tablename__ = "units"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    state: Mapped[str] = mapped_column(String(16), default="running")
    state_since: Mapped[dt.datetime] = mapped_column(default=utcnow)
    changed_by: Mapped[str] = mapped_column(String(100), default="")
    via: Mapped[str] = mapped_column(String(16), default="config")  # config | http | mqtt | opcua


class UnitAudit(Base):
    """Audit trail of unit run states: every state change, and every alarm a state suppressed or
    qualified (with the camera, scene and region it came from)."""

    __tablename__ = "unit_audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(16))  # state | suppressed | qualified
    unit_id: Mapped[str] = mapped_column(String(64), index=True)
    old_state: Mapped[str | None] = mapped_column(String(16))
    new_state: Mapped[str | None] = mapped_column(String(16))
    camera_id: Mapped[str | None] = mapped_column(String(64))
    scene: Mapped[str | None] = mapped_column(String(32))
    region: Mapped[str | None] = mapped_column(String(200))
    actor: Mapped[str] = mapped_column(String(100), default="")
    via: Mapped[str] = mapped_column(String(16), default="")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Enrolment(Base):
    """One version of an enrolled appearance class of a scene (a uniform type, an extinguisher type, a
    role marker, or a negative class such as "not uniform"): its example crops and their features in
    the content-addressed store (gateway/enrolment), site-wide or for one camera."""

    __tablename__ = "enrolments"
    __table_args__ = (Index("ix_enrolments_scene_camera_name", "scene", "camera_id", "name"),)
    id: Mapped[str] = mapped_column(String(26), primary_key=True)  # ULID
    scene: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    negative: Mapped[bool] = mapped_column(Boolean, default=False)
    camera_id: Mapped[str | None] = mapped_column(String(64))  # None: the whole site
    version: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16), default="candidate")  # candidate | active | retired
    examples: Mapped[int] = mapped_column(Integer, default=0)
    features_path: Mapped[str] = mapped_column(String(255))  # .npz, relative to the storage root
    sha256: Mapped[str] = mapped_column(String(64))  # of the features file
    crops: Mapped[list[Any]] = mapped_column(default=list)  # example crops (JPEG), relative paths
    embedder: Mapped[str] = mapped_column(String(64), default="")  # SHA-256 of the embedding model
    calibration: Mapped[dict[str, Any]] = mapped_column(default=dict)  # of the set with this version
    origin: Mapped[dict[str, Any]] = mapped_column(default=dict)  # where the examples came from
    audit: Mapped[list[Any]] = mapped_column(default=list)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    activated_at: Mapped[dt.datetime | None] = mapped_column()
