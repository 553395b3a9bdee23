"""The versioned table of internal alarm type codes (config/alarm_types.yaml) and its GB/T 28181 mapping."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

DEFAULT_TABLE = Path(__file__).resolve().parents[2] / "config" / "alarm_types.yaml"


@dataclass(frozen=True)
class AlarmType:
    code: str
    zh: str
    en: str
    gb_alarm_method: int
    gb_alarm_type: int | None

    def as_record(self, table_version: int) -> dict[str, Any]:
        return {
            "code": self.code,
            "zh": self.zh,
            "en": self.en,
            "gb_alarm_method": self.gb_alarm_method,
            "gb_alarm_type": self.gb_alarm_type,
            "table_version": table_version,
        }


@dataclass(frozen=True)
class AlarmTypeTable:
    version: int
    types: dict[str, AlarmType]

    def get(self, code: str) -> AlarmType:
        """The type for a scene code; unknown codes (a plant's own scene) report as `custom`."""
        return self.types.get(code) or self.types["custom"]


def load_table(path: Path = DEFAULT_TABLE) -> AlarmTypeTable:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        version = int(data["version"])
        types = {
            code: AlarmType(
                code=code,
                zh=str(row["zh"]),
                en=str(row["en"]),
                gb_alarm_method=int(row.get("gb_alarm_method", 5)),
                gb_alarm_type=None if row.get("gb_alarm_type") is None else int(row["gb_alarm_type"]),
            )
            for code, row in data["types"].items()
        }
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(
            f"{path}: not a valid alarm type table ({exc}); see config/alarm_types.yaml"
        ) from exc
    if "custom" not in types:
        raise ValueError(f"{path}: the table needs a `custom` type for scenes it does not list")
    return AlarmTypeTable(version, types)


@cache
def default_table() -> AlarmTypeTable:
    return load_table()
