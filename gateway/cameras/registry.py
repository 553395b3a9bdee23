"""Cameras in the database: synced from the configuration, added through the API, with live status."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from adapters import StreamHealth, redact_url
from analyzers import SceneConfig
from gateway.config.schema import STORED, CameraAlarmConfig, CameraConfig
from gateway.db.schema import Camera, CameraScene, Source

GB_URL_SCHEME = "gb28181://"  # gb28181://DEVICE/CHANNEL: a channel of a registered GB/T 28181 device
GB_SOURCE_KIND = "gb28181"


def is_gb_camera(url: str | None, source_kind: str | None = None, gb_channel_id: str | None = None) -> bool:
    """The one check of "is this camera a GB/T 28181 channel" (played by a live INVITE, not opened as a
    stream): a ``gb28181://`` address, a source of kind gb28181 (a registered device), or a GB channel id
    (a catalog channel in the database)."""
    return bool((url or "").startswith(GB_URL_SCHEME) or source_kind == GB_SOURCE_KIND or gb_channel_id)


def gb_source_ids(session: Session) -> set[str]:
    """The ids of the GB/T 28181 sources (registered devices) in the database."""
    return set(session.scalars(select(Source.id).where(Source.kind == GB_SOURCE_KIND)))


def camera_is_gb(session: Session, cam: CameraConfig) -> bool:
    """is_gb_camera for a camera's configuration, its source's kind read from the database."""
    if is_gb_camera(cam.url):
        return True
    src = session.get(Source, cam.source) if cam.source is not None else None
    return is_gb_camera(cam.url, src.kind if src is not None else None)


# CameraConfig fields kept in cameras.plant_settings: unit, video diagnosis, enhancement, PTZ presets.
PLANT_FIELDS = {"unit", "diagnosis", "enhance", "ptz"}


def upsert_camera(session: Session, cam: CameraConfig, origin: str) -> dict[str, int]:
    """Write a camera and its scene tasks; returns {scene key: camera_scene id}."""
    row = session.get(Camera, cam.id)
    if row is None:
        row = Camera(id=cam.id, origin=origin)
        session.add(row)
    row.name, row.location, row.source_id = cam.name, cam.location, cam.source
    row.stream_url, row.sub_stream_url, row.transport = cam.url, cam.sub_url, cam.transport
    row.quality, row.enabled = cam.quality, cam.enabled
    row.alarm_settings = cam.alarm.model_dump(mode="json")
    row.plant_settings = cam.model_dump(mode="json", include=PLANT_FIELDS)
    row.ptz = row.ptz or bool(cam.ptz.presets)
    existing = {t.scene: t for t in row.tasks}
    wanted = {s.scene for s in cam.scenes}
    for scene in cam.scenes:
        task = existing.get(scene.scene)
        if task is None:
            task = CameraScene(scene=scene.scene)
            row.tasks.append(task)
        task.enabled = scene.enabled
        task.settings = scene.model_dump(mode="json", exclude={"tags", "scene_tag"})
        task.tags = scene.tags.model_dump(mode="json", exclude_none=True)
        task.scene_tag = scene.scene_tag
    for key, task in existing.items():
        if key not in wanted:
            row.tasks.remove(task)
    session.flush()
    return {t.scene: t.id for t in row.tasks}


def camera_config(row: Camera) -> CameraConfig:
    """Rebuild the typed camera configuration of a camera stored in the database."""
    scenes = [
        SceneConfig.model_validate(
            {**t.settings, "tags": t.tags, "scene_tag": t.scene_tag, "enabled": t.enabled}
        )
        for t in row.tasks
    ]
    # Stored before today's address rules: a camera saved with a bad address must still load (its
    # status then shows the fault), so the stored configuration skips the stream address check.
    return CameraConfig.model_validate(
        dict(
            id=row.id,
            name=row.name,
            location=row.location,
            source=row.source_id,
            url=row.stream_url,
            sub_url=row.sub_stream_url,
            transport=row.transport,
            quality=row.quality,
            enabled=row.enabled,
            scenes=scenes,
            alarm=CameraAlarmConfig.model_validate(row.alarm_settings or {}),
            **(row.plant_settings or {}),
        ),
        context=STORED,
    )


def api_cameras(session: Session) -> list[Camera]:
    return list(session.scalars(select(Camera).where(Camera.origin != "config", Camera.enabled.is_(True))))


def listed_cameras(session: Session, include_removed: bool = False) -> list[Camera]:
    """Cameras as the API lists them (with their scene tasks), by id; removed ones only when asked."""
    stmt = select(Camera).options(selectinload(Camera.tasks)).order_by(Camera.id)
    if not include_removed:
        stmt = stmt.where(Camera.status != "removed")
    return list(session.scalars(stmt))


def camera_hosts(session: Session) -> list[tuple[str, str | None]]:
    """(camera id, stream host) of every camera not removed: which devices are cameras already."""
    rows = session.execute(select(Camera.id, Camera.stream_url).where(Camera.status != "removed"))
    return [(cid, urlsplit(url).hostname) for cid, url in rows]


def apply_health(row: Camera, health: StreamHealth) -> None:
    row.status, row.last_error = health.state, health.last_error
    row.codec, row.width, row.height = health.codec, health.width, health.height
    if health.last_frame_at is not None:
        row.last_frame_at = dt.datetime.fromtimestamp(health.last_frame_at, dt.UTC)


def _size_text(setting: Any) -> str:
    return "x".join(str(v) for v in setting) if isinstance(setting, list | tuple) else str(setting)


def camera_json(
    row: Camera,
    health: StreamHealth | None,
    scene_status: dict[str, str] | None = None,
    onvif: dict[str, Any] | None = None,
    plant: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A camera as the API shows it: stream addresses without credentials, live health if running,
    and each scene's status ("running", or what it lacks, e.g. "model missing: ...")."""
    if health is not None:  # running now: live values
        status, last_error, codec, width, height = (
            health.state,
            health.last_error,
            health.codec,
            health.width,
            health.height,
        )
        fps = health.fps
        last_frame = dt.datetime.fromtimestamp(health.last_frame_at, dt.UTC) if health.last_frame_at else None
    else:  # not running: what was saved last
        status, last_error, codec, width, height = (
            row.status,
            row.last_error,
            row.codec,
            row.width,
            row.height,
        )
        fps, last_frame = None, row.last_frame_at
    return {
        "id": row.id,
        "name": row.name,
        "location": row.location,
        "source": row.source_id,
        "origin": row.origin,
        "stream_url": redact_url(row.stream_url),
        "sub_stream_url": redact_url(row.sub_stream_url) if row.sub_stream_url else None,
        "transport": row.transport,
        "quality": row.quality,
        "enabled": row.enabled,
        "status": status,
        "last_error": last_error,
        "codec": codec,
        "width": width,
        "height": height,
        "fps": fps,
        "gop_s": health.gop_s if health is not None else None,
        "decode_mode": health.decode_mode if health is not None else None,
        "stalls": health.stalls if health is not None else None,
        "onvif": onvif,  # PTZ position and recent events, for cameras on an ONVIF source
        "plant": plant,  # its unit with the unit's run state, video diagnosis faults (plant_view)
        "last_frame_at": last_frame.isoformat() if last_frame else None,
        "scenes": [
            {
                "id": t.id,
                "scene": t.scene,
                "enabled": t.enabled,
                "tags": t.tags,
                "scene_tag": t.scene_tag,
                "status": (scene_status or {}).get(t.scene, "not running"),
                # the scene's detector input size setting: "auto", "card" or "WxH"
                "input_size": _size_text(t.settings.get("input_size", "auto")),
                "regions": t.settings.get("regions", []),
            }
            for t in row.tasks
        ],
    }
