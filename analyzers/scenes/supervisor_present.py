"""Site supervisor (监护人) absent from the work area longer than the minimum time."""

from __future__ import annotations

from analyzers.scenes.roles import ColourRule, RoleAbsent, role_defaults


class SupervisorPresent(RoleAbsent):
    key = "supervisor_present"
    name_zh = "现场监护人不在岗"
    name_en = "site supervisor absent"
    alarm_types = ("supervisor_present",)
    order = 8
    role_name = "site supervisor"
    # Default: red or white helmets mark supervisors and managers in many Chinese plants.
    Params = role_defaults(ColourRule(part="head", colours=["red", "white"]))
