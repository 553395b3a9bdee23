"""The message an uplink target delivers: one alarm revision, keyed for idempotency.

``body`` is the canonical alarm record (gateway.canonical.canonical), a JSON-ready dict:

    id, revision, action      ULID, revision number, what this revision did: raised | updated |
                              confirmed | rejected | disposed | cleared | closed
    type                      {code, zh, en, gb_alarm_method, gb_alarm_type, table_version}
                              from config/alarm_types.yaml
    scene, status, priority, score, message, region
    site                      {name, site_code, enterprise_code}
    camera                    {id, name, location, gb_channel_id}
    occurred_at, raised_at, confirmed_at, cleared_at, closed_at: ISO 8601 UTC ("...+00:00") or null
    verdict, verdict_reason   true_positive | false_positive, and why
    disposal                  {handler, handled_at, result, measures, photos} or null
    evidence                  [{kind, sha256, media_type, size}]; kinds: snapshot_raw, snapshot,
                              clear_snapshot, clip, photo
    recipients                [{name, contact, role}] from the camera's alarm configuration
    details, tags             boxes and the standard's feature tags

``attachments`` maps an evidence kind to its file on disk, so a target can inline a picture as
base64, send it as a multipart part, or name it by URL without touching the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class UplinkMessage:
    target: str
    alarm_id: str
    revision: int
    body: dict[str, Any] = field(default_factory=dict)
    attachments: dict[str, Path] = field(default_factory=dict)
    sequence: int = 0  # the outbox row id: increasing, a feed's replay cursor

    @property
    def idempotency_key(self) -> str:
        return f"{self.alarm_id}:{self.revision}"
