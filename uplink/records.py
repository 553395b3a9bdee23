"""The message an uplink target delivers: one alarm revision, keyed for idempotency."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class UplinkMessage:
    target: str
    alarm_id: str
    revision: int
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def idempotency_key(self) -> str:
        return f"{self.alarm_id}:{self.revision}"
