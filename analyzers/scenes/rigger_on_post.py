"""Rigger/signaller (司索指挥) absent from the lifting area longer than the minimum time."""

from __future__ import annotations

from analyzers.scenes.roles import ColourRule, RoleAbsent, role_defaults


class RiggerOnPost(RoleAbsent):
    key = "rigger_on_post"
    name_zh = "司索指挥人员不在岗"
    name_en = "rigger/signaller absent"
    alarm_types = ("rigger_on_post",)
    order = 7
    role_name = "rigger/signaller"
    # Default: a red armband marks the signaller; configure the plant's own marking.
    Params = role_defaults(ColourRule(part="arm", colours=["red"]))
