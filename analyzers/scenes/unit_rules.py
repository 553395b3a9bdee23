"""What a scene does in each run state of the production unit (装置) its camera or region belongs to:
run (alarms as usual), suppress (alarms are audited, not raised), or raise with another priority.

For example the extinguisher scene only while a hot-work permit is active
(``unit_rules: {running: suppress, shut_down: suppress, maintenance: suppress, lifting: suppress}``),
the lifting-zone scene only during lifting, and work clothes everywhere (no rules).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

UnitState = Literal["running", "shut_down", "maintenance", "hot_work", "lifting"]
UNIT_STATES: tuple[UnitState, ...] = ("running", "shut_down", "maintenance", "hot_work", "lifting")
UNIT_STATE_NAMES: dict[str, tuple[str, str]] = {
    "running": ("运行", "running"),
    "shut_down": ("停工", "shut down"),
    "maintenance": ("检修", "maintenance"),
    "hot_work": ("动火作业", "hot-work permit active"),
    "lifting": ("吊装作业", "lifting operation active"),
}


class UnitRule(BaseModel):
    """One state's rule; in YAML also just ``run`` or ``suppress``."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["run", "suppress", "raise"] = Field(
        "run", description="run: alarms as usual; suppress: audited, not raised; raise: with `priority`"
    )
    priority: int | None = Field(None, ge=0, le=4, description="raise: the alarm's priority in this state")

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        return {"action": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _priority_for_raise(self) -> UnitRule:
        if self.action == "raise" and self.priority is None:
            raise ValueError("a `raise` rule needs `priority` (0-4), e.g. {action: raise, priority: 4}")
        return self
