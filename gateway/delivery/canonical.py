"""The canonical alarm record: what every uplink target maps from (fields in uplink/records.py)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.db.schema import Alarm, Camera, Disposal, Evidence
from gateway.delivery.alarm_types import AlarmTypeTable
from gateway.times import iso


def canonical(
    session: Session, alarm: Alarm, action: str, site: dict[str, str], types: AlarmTypeTable
) -> dict[str, Any]:
    """The alarm as it stands at this revision, with its camera, disposal and evidence."""
    camera = session.get(Camera, alarm.camera_id) if alarm.camera_id else None
    disposal = session.scalar(
        select(Disposal).where(Disposal.alarm_id == alarm.id).order_by(Disposal.id.desc()).limit(1)
    )
    evidence = session.scalars(select(Evidence).where(Evidence.alarm_id == alarm.id).order_by(Evidence.id))
    recipients = (camera.alarm_settings or {}).get("recipients", []) if camera is not None else []
    return {
        "id": alarm.id,
        "revision": alarm.revision,
        "action": action,
        "type": types.get(alarm.scene).as_record(types.version),
        "scene": alarm.scene,
        "status": alarm.status,
        "priority": alarm.priority,
        "score": round(alarm.score, 4),
        "message": alarm.message,
        "region": alarm.region,
        "site": dict(site),
        "camera": {
            "id": alarm.camera_id,
            "name": camera.name if camera else None,
            "location": camera.location if camera else None,
            "gb_channel_id": camera.gb_channel_id if camera else None,
        },
        "occurred_at": iso(alarm.occurred_at),
        "raised_at": iso(alarm.raised_at),
        "confirmed_at": iso(alarm.confirmed_at),
        "cleared_at": iso(alarm.cleared_at),
        "closed_at": iso(alarm.closed_at),
        "verdict": alarm.verdict,
        "verdict_reason": alarm.verdict_reason,
        "disposal": None
        if disposal is None
        else {
            "handler": disposal.handler,
            "handled_at": iso(disposal.handled_at),
            "result": disposal.result,
            "measures": disposal.measures,
            "photos": list(disposal.photos or []),
        },
        "evidence": [
            {"kind": e.kind, "sha256": e.sha256, "media_type": e.media_type, "size": e.size} for e in evidence
        ],
        "recipients": list(recipients),
        "details": alarm.details,
        "tags": alarm.tags,
    }
