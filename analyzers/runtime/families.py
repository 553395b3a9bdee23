"""The model family registry: every family declares itself from its own file (analyzers/detectors/*.py,
analyzers/pose/*.py) with its name, what it does (detector, classifier, pose) and its loader, the
class that pre-processes and decodes that family's ONNX output. ``analyzers.detectors`` and
``analyzers.pose`` import every module of theirs, so the registry is complete once ``analyzers`` is
imported. A card's ``family`` (runtime.card.Family) names one of these.

Adding a family = one file (plus its tests, and its name in the card's ``Family`` literal)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from analyzers.runtime.card import Family, ModelCard

Role = Literal["detector", "classifier", "pose"]

# (card, model directory, threads, input size) -> the loaded model; the size is None unless the
# family takes sizes other than its card's (``sized``).
Loader = Callable[[ModelCard, Path, int, Any], Any]


@dataclass(frozen=True, slots=True)
class ModelFamily:
    name: str
    role: Role
    load: Loader
    sized: bool = False  # runs at an input size other than the card's (a scene's input_size)


FAMILIES: dict[str, ModelFamily] = {}


def register_family(family: ModelFamily) -> ModelFamily:
    if family.name not in get_args(Family):
        raise ValueError(f"model family {family.name!r} is not a card family ({', '.join(get_args(Family))})")
    if family.name in FAMILIES and FAMILIES[family.name] is not family:
        raise ValueError(f"model family {family.name!r} declared twice")
    FAMILIES[family.name] = family
    return family


def family_names(*roles: Role) -> tuple[str, ...]:
    """The registered families of these roles, in the card's ``Family`` order."""
    return tuple(n for n in get_args(Family) if n in FAMILIES and FAMILIES[n].role in roles)
