"""Rigger/signaller (司索指挥) absent from the lifting area longer than the minimum time."""

from __future__ import annotations

from analyzers.scenes.roles import ColourRule, RoleAbsent, role_defaults


class RiggerOnPost(RoleAbsent):
    key = "rigger_on_post"
    role_name = "rigger/signaller"
    # Default: a red armband marks the signaller; configure the plant's own marking.
    Params = role_defaults(ColourRule(part="arm", colours=["red"]))
