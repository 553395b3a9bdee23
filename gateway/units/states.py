"""The run state of every production unit (装置), kept in the database with an audit trail.

``UnitStates`` is read on the camera threads (``state``: a dict lookup, no database) and written by
the HTTP API, the MQTT subscriber and the OPC UA client (``set_state``: one transaction that changes
the unit and adds its audit row). ``version`` grows with every change, so a camera notices that the
rules of its scenes may now say something else.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, get_args

from sqlalchemy import select

from analyzers.scenes.unit_rules import UNIT_STATE_NAMES, UNIT_STATES, UnitState
from gateway.config.plant import ID_PATTERN, PlantConfig
from gateway.db import Database
from gateway.db.schema import Unit, UnitAudit, utcnow

log = logging.getLogger(__name__)

MAX_ACTOR = 100
ID_RE = re.compile(ID_PATTERN)


class UnitError(ValueError):
    """A request about units that cannot be done; the message (en) and ``zh`` say what to do."""

    def __init__(self, message: str, zh: str, status: int = 422) -> None:
        super().__init__(message)
        self.zh = zh
        self.status = status


@dataclass(frozen=True)
class UnitView:
    id: str
    name: str
    state: str
    state_since: dt.datetime
    changed_by: str
    via: str

    def json(self) -> dict[str, Any]:
        zh, en = UNIT_STATE_NAMES.get(self.state, (self.state, self.state))
        return {
            "id": self.id,
            "name": self.name,
            "state": self.state,
            "state_zh": zh,
            "state_en": en,
            "state_since": self.state_since.isoformat(),
            "changed_by": self.changed_by,
            "via": self.via,
        }


def check_state(state: object) -> UnitState:
    if state not in get_args(UnitState):
        known = ", ".join(UNIT_STATES)
        raise UnitError(
            f"unknown unit state {state!r}; use one of {known}", f"未知的装置状态 {state!r}，可用：{known}"
        )
    return state  # type: ignore[return-value]


class UnitStates:
    def __init__(self, db: Database, plant: PlantConfig) -> None:
        self.db = db
        self.plant = plant
        self.version = 0
        self._units: dict[str, UnitView] = {}
        self._lock = threading.Lock()
        self.listeners: list[Callable[[UnitView, str | None], None]] = []  # (unit, old state)

    def load(self) -> None:
        """Create the configured units that are not stored yet, then read every unit (blocking)."""
        with self.db.session() as s:
            for unit in self.plant.units:
                row = s.get(Unit, unit.id)
                if row is None:
                    s.add(
                        Unit(id=unit.id, name=unit.name, state=unit.state, changed_by="config", via="config")
                    )
                    s.add(
                        UnitAudit(
                            kind="state", unit_id=unit.id, new_state=unit.state, actor="config", via="config"
                        )
                    )
                elif unit.name and row.name != unit.name:
                    row.name = unit.name
            s.flush()
            rows = list(s.scalars(select(Unit)))
            views = {r.id: _view(r) for r in rows}
        with self._lock:
            self._units = views
            self.version += 1

    def state(self, unit_id: str | None) -> str | None:
        """The unit's state now (None for no unit or an unknown one)."""
        if unit_id is None:
            return None
        unit = self._units.get(unit_id)
        return unit.state if unit is not None else None

    def get(self, unit_id: str) -> UnitView | None:
        return self._units.get(unit_id)

    def all(self) -> list[UnitView]:
        return sorted(self._units.values(), key=lambda u: u.id)

    def set_state(self, unit_id: str, state: object, actor: str, via: str, create: bool = False) -> bool:
        """Change a unit's state (audited); False when it already was in that state. Blocking.
        ``create``: a unit not known yet is added (the plant system names it first)."""
        new = check_state(state)
        actor = actor[:MAX_ACTOR]
        now = utcnow()
        with self.db.session() as s:
            row = s.get(Unit, unit_id, with_for_update=True)
            if row is None:
                if create and not ID_RE.match(unit_id):
                    raise UnitError(
                        f"unit id {unit_id[:80]!r}: use 1-64 letters, digits, '.', '_' or '-'",
                        f"装置编号 {unit_id[:80]!r}：请使用 1-64 个字母、数字、'.'、'_' 或 '-'",
                    )
                if not create:
                    raise UnitError(
                        f"no unit {unit_id!r}; add it to plant.units or with PUT /api/units/{unit_id}",
                        f"没有装置 {unit_id!r}；请在 plant.units 中添加或用 PUT /api/units/{unit_id} 创建",
                        404,
                    )
                row = Unit(id=unit_id, name="", state=new, state_since=now, changed_by=actor, via=via)
                s.add(row)
                old: str | None = None
            else:
                old = row.state
                if old == new:
                    return False
                row.state, row.state_since, row.changed_by, row.via = new, now, actor, via
            s.add(
                UnitAudit(
                    at=now, kind="state", unit_id=unit_id, old_state=old, new_state=new, actor=actor, via=via
                )
            )
            s.flush()
            view = _view(row)
        with self._lock:
            self._units[unit_id] = view
            self.version += 1
        log.info("unit %s: %s -> %s by %s (%s)", unit_id, old, new, actor, via)
        for listener in list(self.listeners):
            try:
                listener(view, old)
            except Exception:  # a listener must not undo a stored change
                log.exception("unit %s: state listener failed", unit_id)
        return True

    def rename(self, unit_id: str, name: str) -> None:
        with self.db.session() as s:
            row = s.get(Unit, unit_id)
            if row is None:
                row = Unit(id=unit_id, name=name, state="running", changed_by="api", via="http")
                s.add(row)
                s.add(UnitAudit(kind="state", unit_id=unit_id, new_state="running", actor="api", via="http"))
            row.name = name
            s.flush()
            view = _view(row)
        with self._lock:
            self._units[unit_id] = view

    def audit_alarm(
        self,
        kind: str,
        unit_id: str,
        state: str,
        camera_id: str,
        scene: str,
        region: str,
        details: dict[str, Any],
    ) -> None:
        """An alarm a unit state suppressed (``suppressed``) or re-prioritised (``qualified``)."""
        with self.db.session() as s:
            s.add(
                UnitAudit(
                    kind=kind,
                    unit_id=unit_id,
                    old_state=state,
                    new_state=state,
                    camera_id=camera_id,
                    scene=scene,
                    region=region[:200],
                    actor="analyzer",
                    via="rules",
                    details=details,
                )
            )

    def audit(self, unit_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        with self.db.session() as s:
            q = select(UnitAudit).order_by(UnitAudit.id.desc()).limit(limit)
            if unit_id is not None:
                q = q.where(UnitAudit.unit_id == unit_id)
            return [
                {
                    "id": r.id,
                    "at": r.at.isoformat(),
                    "kind": r.kind,
                    "unit": r.unit_id,
                    "old_state": r.old_state,
                    "new_state": r.new_state,
                    "camera": r.camera_id,
                    "scene": r.scene,
                    "region": r.region,
                    "actor": r.actor,
                    "via": r.via,
                    "details": r.details,
                }
                for r in s.scalars(q)
            ]


def _view(row: Unit) -> UnitView:
    return UnitView(row.id, row.name, row.state, row.state_since, row.changed_by, row.via)
