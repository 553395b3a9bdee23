"""Which database rows stand for a registered GB/T 28181 device and its channels.

A device is known by its 20-digit id on the wire, but the configuration may name it differently: a
``kind: gb28181`` source with a slug id (``plant-nvr``) whose cameras address ``gb28181://DEVICE/CHANNEL``,
or whose camera ids are the channel ids. Those rows are the device's, so that its online state, its
channels and its cameras are one thing (no second source row for the device, no second camera row for a
configured channel). A source is linked to a device by, in this order: ``settings.device_id`` (stored
once a link is found), its id being the device id, or a camera on it addressing the device. All
functions here are blocking (run them in a thread) and take an open session.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from adapters.gb28181.common import is_gb_id
from gateway.cameras.registry import GB_SOURCE_KIND, GB_URL_SCHEME
from gateway.db.schema import Camera, Source


def channel_url(device_id: str, channel_id: str) -> str:
    """The stream address stored for a GB channel camera (no credentials: SIP does the auth)."""
    return f"{GB_URL_SCHEME}{device_id}/{channel_id}"


def parse_channel_url(url: str) -> tuple[str | None, str | None]:
    """``gb28181://DEVICE/CHANNEL`` -> (device, channel); other addresses -> (None, None)."""
    if not url.startswith(GB_URL_SCHEME):
        return None, None
    parts = url[len(GB_URL_SCHEME) :].strip("/").split("/")
    device = parts[0] if parts and is_gb_id(parts[0]) else None
    channel = parts[1] if len(parts) > 1 and is_gb_id(parts[1]) else None
    return device, channel


def _cameras_on(session: Session, source_ids: set[str]) -> list[Camera]:
    if not source_ids:
        return []
    return list(session.scalars(select(Camera).where(Camera.source_id.in_(source_ids))))


def source_devices(session: Session) -> dict[str, str | None]:
    """Every GB source id -> the device id it stands for (None while nothing links it yet)."""
    sources = list(session.scalars(select(Source).where(Source.kind == GB_SOURCE_KIND)))
    out: dict[str, str | None] = {}
    by_url: dict[str, str] = {}
    for cam in _cameras_on(session, {s.id for s in sources}):
        device, _ = parse_channel_url(cam.stream_url or "")
        if device is not None and cam.source_id is not None:
            by_url.setdefault(cam.source_id, device)
    for src in sources:
        stored = (src.settings or {}).get("device_id")
        if isinstance(stored, str) and is_gb_id(stored):
            out[src.id] = stored
        elif is_gb_id(src.id):
            out[src.id] = src.id
        else:
            out[src.id] = by_url.get(src.id)
    return out


def device_sources(session: Session, device_id: str) -> list[Source]:
    """The source rows standing for a device (the configured ones first); empty when none does."""
    linked = [sid for sid, dev in source_devices(session).items() if dev == device_id]
    rows = [session.get(Source, sid) for sid in sorted(linked, key=lambda sid: (sid == device_id, sid))]
    return [r for r in rows if r is not None]


def device_source(session: Session, device_id: str) -> Source:
    """The source row of a device: the configured source linked to it, else one with the device's id
    (created; a device nobody configured, discovered by its registration)."""
    rows = device_sources(session, device_id)
    if rows:
        return rows[0]
    row = Source(id=device_id, kind=GB_SOURCE_KIND, name=device_id, settings={}, status="unknown")
    session.add(row)
    session.flush()
    return row


def link_source(row: Source, device_id: str) -> None:
    """Remember that a configured source stands for this device (found through one of its cameras)."""
    if row.id != device_id and (row.settings or {}).get("device_id") != device_id:
        row.settings = {**(row.settings or {}), "device_id": device_id}


def channel_camera(session: Session, device_id: str, channel_id: str) -> Camera | None:
    """The camera row of a device's channel: the one whose id or GB channel id is the channel, or a
    camera addressing ``gb28181://DEVICE/CHANNEL`` (a configured camera with a slug id). A configured or
    API camera wins over a row the catalog created (origin gb28181)."""
    candidates = [
        r
        for r in (
            session.get(Camera, channel_id),
            session.scalar(select(Camera).where(Camera.gb_channel_id == channel_id)),
        )
        if r is not None
    ]
    sources = {s.id for s in device_sources(session, device_id)} | {device_id}
    for cam in _cameras_on(session, sources):
        if parse_channel_url(cam.stream_url or "") == (device_id, channel_id):
            candidates.append(cam)
    candidates = [c for c in candidates if c.status != "removed" or c.origin == "gb28181"]
    if not candidates:
        return None
    return min(candidates, key=lambda c: (c.origin == "gb28181", c.status == "removed", c.id != channel_id))


def device_cameras(session: Session, device_id: str, channel_ids: set[str]) -> list[Camera]:
    """Every camera of a device: on a source standing for it, addressing it, or one of its channels."""
    sources = {s.id for s in device_sources(session, device_id)} | {device_id}
    found = {c.id: c for c in _cameras_on(session, sources)}
    if channel_ids:
        for cam in session.scalars(select(Camera).where(Camera.gb_channel_id.in_(channel_ids))):
            found[cam.id] = cam
        for cam in session.scalars(select(Camera).where(Camera.id.in_(channel_ids))):
            found[cam.id] = cam
    out = []
    for cam in found.values():
        device, _ = parse_channel_url(cam.stream_url or "")
        if device is None or device == device_id:  # a camera on the source addressing another device
            out.append(cam)
    return out
