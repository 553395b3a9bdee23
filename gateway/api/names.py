"""What several API answers name alike: a scene's or alarm type's zh/en names and the site's time zone."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from analyzers.scenes import CATALOGUE
from gateway.delivery.alarm_types import default_table


def scene_names(key: str) -> tuple[str, str]:
    """(zh, en) of a scene or alarm type code, from the alarm type table, else the scene catalogue."""
    table = default_table()
    if key in table.types:
        t = table.types[key]
        return t.zh, t.en
    info = CATALOGUE.get(key)
    return (info.name_zh, info.name_en) if info else (key, key)


def site_zone(gw: Any) -> ZoneInfo:
    """The site's time zone (config site.timezone): the one clock of statistics and exports."""
    return ZoneInfo(gw.config.site.timezone)
