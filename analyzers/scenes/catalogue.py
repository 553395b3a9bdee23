"""The scene registry: every scene class registers itself from its own file (Scene.__init_subclass__),
declaring its key, names, default sampling rate, alarm type code(s) and catalogue position; the
package's ``__init__`` imports every module of ``analyzers/scenes`` (pkgutil) so all of them are here.

Adding a scene = one file in analyzers/scenes (plus its tests and its row in config/alarm_types.yaml)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from analyzers.scenes.base import Scene


@dataclass(frozen=True)
class SceneInfo:
    key: str
    name_zh: str
    name_en: str
    sample_fps: float
    alarm_types: tuple[str, ...] = ()  # alarm type codes (config/alarm_types.yaml) the scene raises
    order: int = 1000  # position in DESIGN.md's scene table, the catalogue's order


CATALOGUE: dict[str, SceneInfo] = {}
IMPLEMENTED: dict[str, type[Scene]] = {}


def register(cls: type[Scene]) -> None:
    """Enter a concrete scene class (one that sets its own ``key``) and what it declares about itself."""
    key = cls.key
    if key in IMPLEMENTED and IMPLEMENTED[key] is not cls:
        raise ValueError(
            f"scene key {key!r} declared twice: {IMPLEMENTED[key].__qualname__}, {cls.__qualname__}"
        )
    if not cls.name_zh or not cls.name_en:
        raise ValueError(f"scene {key!r} ({cls.__qualname__}) must declare name_zh and name_en")
    IMPLEMENTED[key] = cls
    CATALOGUE[key] = SceneInfo(
        key=key,
        name_zh=cls.name_zh,
        name_en=cls.name_en,
        sample_fps=cls.sample_fps,
        alarm_types=tuple(cls.alarm_types) or (key,),
        order=cls.order,
    )
    _sort()


def _sort() -> None:
    """Keep both registries in catalogue order (the declared position, then the key)."""
    keys = sorted(CATALOGUE, key=lambda k: (CATALOGUE[k].order, k))
    infos, classes = dict(CATALOGUE), dict(IMPLEMENTED)
    CATALOGUE.clear()
    IMPLEMENTED.clear()
    for k in keys:
        CATALOGUE[k] = infos[k]
        IMPLEMENTED[k] = classes[k]
