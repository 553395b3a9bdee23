"""Uplink targets: one file per kind of upstream (http, mqtt, websocket, gb28181), each registering
its kind, typed settings and builder (base.register_kind); every module here is imported once so that
``KINDS`` holds them all."""

from __future__ import annotations

import importlib
import pkgutil

from uplink.targets.base import KINDS, TargetContext, TargetKind, register_kind

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["KINDS", "TargetContext", "TargetKind", "register_kind"]
