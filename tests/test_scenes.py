"""Scene rules: minimum duration, gap tolerance, one alarm per event, re-arm, schedule, exclusions."""

from __future__ import annotations

import datetime as dt

import pytest

from analyzers import Detection, SceneConfig, build_scene
from analyzers.scenes import SceneError

W, H = 1000, 1000
T0 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC).timestamp()  # a Monday


def person(x: float, y: float, score: float = 0.9) -> Detection:
    """A person whose feet are at (x, y) in 0..1 coordinates."""
    px, py = x * W, y * H
    return Detection((px - 20, py - 120, px + 20, py), score, 0, "person")


RIGHT_HALF = [{"name": "right", "polygon": [[0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 1.0]]}]


def intrusion(**extra: object) -> SceneConfig:
    return SceneConfig.model_validate(
        {"scene": "intrusion", "regions": RIGHT_HALF, "min_duration_s": 3, "gap_tolerance_s": 2, **extra}
    )


def run(scene: object, frames: list[list[Detection]], start: float = T0) -> list[tuple[int, str]]:
    fired = []
    for i, dets in enumerate(frames):
        for ev in scene.update(start + i, dets, W, H):  # type: ignore[attr-defined]
            fired.append((i, ev.region))
    return fired


def test_intrusion_needs_min_duration_and_fires_once() -> None:
    scene = build_scene("cam", intrusion())
    inside = [person(0.7, 0.5)]
    # Inside from t=0: fires at t=3, then stays latched however long it lasts.
    assert run(scene, [inside] * 10) == [(3, "right")]


def test_feet_decide_not_the_box_centre() -> None:
    scene = build_scene("cam", intrusion())
    # Box straddles the boundary but the feet are left of it: not inside.
    assert run(scene, [[person(0.49, 0.5)]] * 6) == []


def test_short_gaps_bridged_long_gaps_restart() -> None:
    inside, empty = [person(0.7, 0.5)], []
    scene = build_scene("cam", intrusion())
    # The 1 s gap is bridged: the event began at t=0, so it fires at t=3.
    assert run(scene, [inside, inside, empty, inside, inside]) == [(3, "right")]
    scene = build_scene("cam", intrusion())
    assert run(scene, [inside, inside, empty, empty, empty, inside, inside, inside]) == []  # 3 s gap restarts


def test_rearm_after_clear_allows_a_new_alarm() -> None:
    scene = build_scene("cam", intrusion())
    inside = [person(0.7, 0.5)]
    assert run(scene, [inside] * 5) == [(3, "right")]
    scene.rearm("right")
    assert run(scene, [inside] * 5, start=T0 + 100) == [(3, "right")]


def test_quiet_period_rearms_when_configured() -> None:
    scene = build_scene("cam", intrusion(rearm_after_s=5))
    inside, empty = [person(0.7, 0.5)], []
    fired = run(scene, [inside] * 4 + [empty] * 6 + [inside] * 4)
    assert fired == [(3, "right"), (13, "right")]
    latched = build_scene("cam", intrusion())  # default: only a person's clear re-arms
    assert run(latched, [inside] * 4 + [empty] * 6 + [inside] * 4) == [(3, "right")]


def test_detection_and_alarm_thresholds() -> None:
    scene = build_scene("cam", intrusion(detection_threshold=0.5))
    assert run(scene, [[person(0.7, 0.5, score=0.4)]] * 6) == []
    scene = build_scene("cam", intrusion(detection_threshold=0.3, alarm_threshold=0.6))
    assert run(scene, [[person(0.7, 0.5, score=0.45)]] * 6) == []


def test_schedule_limits_when_rules_run() -> None:
    # 10:00 UTC Monday; a window on weekends only never fires on Monday.
    weekend = intrusion(schedule=[{"days": ["sat", "sun"]}])
    assert run(build_scene("cam", weekend), [[person(0.7, 0.5)]] * 6) == []
    local = dt.datetime.fromtimestamp(T0)
    window = intrusion(
        schedule=[
            {
                "start": (local - dt.timedelta(minutes=1)).time().isoformat(),
                "end": (local + dt.timedelta(minutes=1)).time().isoformat(),
            }
        ]
    )
    assert run(build_scene("cam", window), [[person(0.7, 0.5)]] * 6) == [(3, "right")]


def test_overnight_window() -> None:
    from analyzers.scenes import TimeWindow

    night = TimeWindow(days=["mon"], start=dt.time(22), end=dt.time(6))
    assert night.contains(dt.datetime(2026, 11, 23, 23, 0))  # Monday 23:00
    assert night.contains(dt.datetime(2026, 11, 24, 5, 0))  # Tuesday 05:00, window began Monday
    assert not night.contains(dt.datetime(2026, 11, 24, 23, 0))  # Tuesday 23:00


def test_exclusion_zone_ignored() -> None:
    cfg = intrusion(
        exclusions=[{"name": "stack", "polygon": [[0.6, 0.4], [0.8, 0.4], [0.8, 0.6], [0.6, 0.6]]}]
    )
    assert run(build_scene("cam", cfg), [[person(0.7, 0.5)]] * 6) == []
    assert run(build_scene("cam", cfg), [[person(0.9, 0.9)]] * 6) == [(3, "right")]


def test_crowd_threshold_per_region_and_message() -> None:
    cfg = SceneConfig.model_validate(
        {"scene": "crowd", "regions": RIGHT_HALF, "min_duration_s": 2, "params": {"min_people": 3}}
    )
    scene = build_scene("cam", cfg)
    two = [person(0.6, 0.5), person(0.7, 0.5), person(0.2, 0.5)]  # only two inside
    three = [person(0.6, 0.5), person(0.7, 0.5), person(0.9, 0.5)]
    events = []
    for i, dets in enumerate([two, two, three, three, three, three]):
        events += scene.update(T0 + i, dets, W, H)
    assert [(e.region, e.details["people"]) for e in events] == [("right", 3)]
    assert events[0].occurred_at == T0 + 2 and events[0].raised_at == T0 + 4
    assert "crowd of up to 3 people" in events[0].message and events[0].key == "cam/crowd/right"


def test_whole_frame_when_no_region() -> None:
    scene = build_scene("cam", SceneConfig.model_validate({"scene": "intrusion", "min_duration_s": 0}))
    assert [(e.region) for e in scene.update(T0, [person(0.1, 0.1)], W, H)] == ["frame"]


def test_unknown_and_unimplemented_scenes() -> None:
    with pytest.raises(SceneError, match="unknown scene"):
        build_scene("cam", SceneConfig(scene="nope"))
    with pytest.raises(SceneError, match="not implemented in this version"):
        build_scene("cam", SceneConfig(scene="helmet"))
