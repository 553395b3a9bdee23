"""Smoke: as flame, with smoke classes."""

from __future__ import annotations

from pydantic import Field

from analyzers.scenes.fire import FireParams, FireScene


class Smoke(FireScene):
    key = "smoke"

    class Params(FireParams):
        labels: list[str] = Field(default_factory=lambda: ["smoke"], min_length=1)
