"""Scene rules: minimum duration, gap tolerance, one alarm per event, re-arm, schedule, exclusions."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from analyzers import Detection, SceneConfig, build_scene
from analyzers.records import COCO_KEYPOINTS, Pose
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
    # Evidence accumulates: 0.45 x (D + 1 s) must reach 0.6 x (3 s + 1 s), so a weaker detection
    # alarms at D = 5 s instead of at the 3 s minimum duration.
    scene = build_scene("cam", intrusion(detection_threshold=0.3, alarm_threshold=0.6))
    assert run(scene, [[person(0.7, 0.5, score=0.45)]] * 5) == []
    scene = build_scene("cam", intrusion(detection_threshold=0.3, alarm_threshold=0.6))
    assert run(scene, [[person(0.7, 0.5, score=0.45)]] * 8) == [(5, "right")]
    scene = build_scene("cam", intrusion(detection_threshold=0.3, alarm_threshold=0.6))
    assert run(scene, [[person(0.7, 0.5, score=0.9)]] * 8) == [(3, "right")]


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


def test_unknown_scene_and_registry() -> None:
    with pytest.raises(SceneError, match="unknown scene"):
        build_scene("cam", SceneConfig(scene="nope"))
    assert type(build_scene("cam", SceneConfig(scene="helmet"))).__name__ == "Helmet"


# --- the other scenes, on synthetic sequences --------------------------------------------------


def scene_of(key: str, **extra: object) -> object:
    cfg = {"scene": key, "regions": RIGHT_HALF, "min_duration_s": 3, "gap_tolerance_s": 2, **extra}
    return build_scene("cam", SceneConfig.model_validate(cfg))


def test_off_post_fires_when_the_duty_area_stays_empty() -> None:
    scene = scene_of("off_post")
    on_duty, away = [person(0.7, 0.5)], [person(0.2, 0.5)]  # left half is outside the duty area
    assert run(scene, [on_duty] * 5 + [away] * 3) == []  # 2 s away: not yet
    assert run(scene_of("off_post"), [on_duty] * 2 + [away] * 6) == [(5, "right")]


def test_lifting_zone_rated_and_forbidden() -> None:
    two = [person(0.6, 0.5), person(0.8, 0.5)]
    assert run(scene_of("lifting_zone", params={"rated_people": 2}), [two] * 6) == []
    three = two + [person(0.9, 0.9)]
    assert run(scene_of("lifting_zone", params={"rated_people": 2}), [three] * 6) == [(3, "right")]
    assert run(scene_of("lifting_zone"), [[person(0.7, 0.7)]] * 6) == [(3, "right")]  # forbidden zone


def coloured_person(image: np.ndarray, x: float, colour_bgr: tuple[int, int, int], part: str) -> Detection:
    det = person(x, 0.6)
    x1, y1, x2, y2 = (int(v) for v in det.box)
    h = y2 - y1
    if part == "head":
        image[y1 : y1 + int(0.16 * h), x1:x2] = colour_bgr
    else:  # armband on both sides
        image[y1 + int(0.2 * h) : y1 + int(0.5 * h), x1 : x1 + 12] = colour_bgr
        image[y1 + int(0.2 * h) : y1 + int(0.5 * h), x2 - 12 : x2] = colour_bgr
    return det


def test_supervisor_recognised_by_helmet_colour() -> None:
    image = np.full((H, W, 3), 90, dtype=np.uint8)
    worker = coloured_person(image, 0.6, (0, 220, 255), "head")  # yellow helmet
    scene = scene_of("supervisor_present")
    assert run_img(scene, [[worker]] * 6, image) == [(3, "right")]  # only a worker: supervisor absent
    supervisor = coloured_person(image, 0.85, (30, 30, 220), "head")  # red helmet
    assert run_img(scene_of("supervisor_present"), [[worker, supervisor]] * 6, image) == []


def test_rigger_recognised_by_armband() -> None:
    image = np.full((H, W, 3), 90, dtype=np.uint8)
    rigger = coloured_person(image, 0.7, (30, 30, 220), "arm")
    assert run_img(scene_of("rigger_on_post"), [[rigger]] * 6, image) == []
    assert run_img(scene_of("rigger_on_post"), [[person(0.8, 0.6)]] * 6, image) == [(3, "right")]


def run_img(scene: object, frames: list[list[Detection]], image: np.ndarray) -> list[tuple[int, str]]:
    fired = []
    for i, dets in enumerate(frames):
        for ev in scene.update(T0 + i, dets, W, H, image=image):  # type: ignore[attr-defined]
            fired.append((i, ev.region))
    return fired


def labelled(label: str, x: float, y: float, score: float = 0.8, size: float = 40) -> Detection:
    px, py = x * W, y * H
    return Detection((px - size / 2, py - size / 2, px + size / 2, py + size / 2), score, 0, label)


def test_helmet_per_person_once_and_not_for_helmets() -> None:
    scene = scene_of("helmet")
    frames = [[labelled("head", 0.6 + 0.005 * i, 0.3), labelled("helmet", 0.85, 0.3)] for i in range(8)]
    events = []
    for i, dets in enumerate(frames):
        events += scene.update(T0 + i, dets, W, H)  # type: ignore[attr-defined]
    assert len(events) == 1
    assert events[0].target is not None and events[0].key.startswith("cam/helmet/right#")
    assert "without a safety helmet" in events[0].message


def test_helmet_colour_rule() -> None:
    image = np.full((H, W, 3), 90, dtype=np.uint8)
    image[280:320, 780:820] = (255, 255, 255)  # a white helmet at (0.8, 0.3)
    frames = [[labelled("helmet", 0.8, 0.3)]] * 6
    assert run_img(scene_of("helmet", params={"allowed_colours": ["yellow"]}), frames, image) == [
        (4, "right")
    ]
    assert run_img(scene_of("helmet", params={"allowed_colours": ["white"]}), frames, image) == []


def test_flame_growth_alarms_sooner_and_exclusion_hides_the_flare() -> None:
    growing = [[labelled("fire", 0.7, 0.5, 0.6, size=20 + 10 * i)] for i in range(8)]
    steady = [[labelled("fire", 0.7, 0.5, 0.6, size=40)] for _ in range(8)]
    # Growing: score 0.6, alarms at the 3 s minimum. Steady: 0.6 x 0.6 = 0.36, so 0.36 x (D + 1)
    # reaches 0.5 x (3 + 1) only at D = 5 s.
    assert run(scene_of("flame", alarm_threshold=0.5), growing) == [(3, "right")]
    assert run(scene_of("flame", alarm_threshold=0.5), steady) == [(5, "right")]
    flare = {"exclusions": [{"name": "flare", "polygon": [[0.6, 0.4], [0.8, 0.4], [0.8, 0.6], [0.6, 0.6]]}]}
    assert run(scene_of("flame", alarm_threshold=0.5, **flare), growing) == []
    assert run(scene_of("smoke", alarm_threshold=0.3), [[labelled("smoke", 0.7, 0.5, 0.6)]] * 5) == [
        (3, "right")
    ]


def test_extinguisher_count() -> None:
    one = [labelled("fire_extinguisher", 0.7, 0.8)]
    two = one + [labelled("fire_extinguisher", 0.9, 0.8)]
    # a detector of extinguishers as the judge (the default judge is the plant's enrolment)
    judged = {"model": "plant_detector", "min_duration_s": 120}
    assert run(scene_of("extinguisher", **judged), [two] * 4, start=T0) == []
    scene = scene_of("extinguisher", **judged, sample_fps=1 / 60)
    fired = []
    for i in range(4):  # one frame a minute
        fired += [(i, e.region) for e in scene.update(T0 + 60 * i, one, W, H)]  # type: ignore[attr-defined]
    assert fired == [(2, "right")]


def test_custom_class_mapping() -> None:
    scene = scene_of(
        "custom", model="plant_detector", params={"classes": {"forklift": "forklift in walkway"}}
    )
    events = []
    for i in range(5):
        events += scene.update(T0 + i, [labelled("forklift", 0.7, 0.5)], W, H)  # type: ignore[attr-defined]
    assert [e.message for e in events] == ["forklift in walkway in 'right'"]


def pose_at(det: Detection, points: dict[str, tuple[float, float]]) -> Pose:
    kps = np.zeros((17, 3), dtype=np.float32)
    for name, (x, y) in points.items():
        kps[COCO_KEYPOINTS.index(name)] = (x, y, 0.9)
    return Pose(det.box, 0.9, kps)


def standing_pose(det: Detection, head_down: bool = False, wrist_at_ear: bool = False) -> Pose:
    x1, y1, x2, y2 = det.box
    cx, h = (x1 + x2) / 2, y2 - y1
    shoulders_y = y1 + 0.25 * h
    nose_y = shoulders_y + 0.05 * h if head_down else y1 + 0.08 * h
    points = {
        "nose": (cx, nose_y),
        "left_ear": (cx - 6, nose_y),
        "right_ear": (cx + 6, nose_y),
        "left_shoulder": (cx - 15, shoulders_y),
        "right_shoulder": (cx + 15, shoulders_y),
        "left_hip": (cx - 10, y1 + 0.55 * h),
        "right_hip": (cx + 10, y1 + 0.55 * h),
        "left_wrist": (cx - 18, y1 + 0.55 * h),
        "right_wrist": (cx + 7, nose_y) if wrist_at_ear else (cx + 18, y1 + 0.55 * h),
    }
    return pose_at(det, points)


def run_pose(scene: object, frames: list[tuple[list[Detection], list[Pose]]]) -> list[tuple[int, str]]:
    fired = []
    for i, (dets, poses) in enumerate(frames):
        for ev in scene.update(T0 + i, dets, W, H, poses=poses):  # type: ignore[attr-defined]
            fired.append((i, ev.details.get("posture") or ev.details.get("cue")))
    return fired


def test_sleeping_head_down_and_still_but_not_walking() -> None:
    still = person(0.7, 0.6)
    frames = [([still], [standing_pose(still, head_down=True)])] * 8
    # Tracked from frame 1, still after 1.5 s of track (frame 3), then 3 s minimum duration.
    assert run_pose(scene_of("sleeping"), frames) == [(6, "head down")]
    walking = [person(0.55 + 0.04 * i, 0.6) for i in range(8)]
    moving = [([p], [standing_pose(p, head_down=True)]) for p in walking]
    assert run_pose(scene_of("sleeping"), moving) == []
    upright = [([still], [standing_pose(still)])] * 8
    assert run_pose(scene_of("sleeping"), upright) == []
    lying = Detection((650, 500, 800, 560), 0.9, 0, "person")  # wider than tall
    assert run_pose(scene_of("sleeping"), [([lying], [])] * 8) == [(6, "lying")]


def test_phone_by_detector_and_by_pose() -> None:
    p = person(0.7, 0.6)
    x1, y1, x2, y2 = p.box
    at_ear = Detection((x2 - 12, y1 + 5, x2 - 2, y1 + 20), 0.7, 67, "cell phone")
    assert run_pose(scene_of("phone"), [([p, at_ear], [])] * 6) == [(4, "phone at the head")]
    assert run_pose(scene_of("phone"), [([p], [standing_pose(p, wrist_at_ear=True)])] * 6) == [
        (4, "wrist at the ear")
    ]
    assert run_pose(scene_of("phone"), [([p], [standing_pose(p)])] * 6) == []


def test_smoking_at_the_mouth_scores_higher_and_alarms_sooner() -> None:
    p = person(0.7, 0.6)
    pose = standing_pose(p)
    nose = pose.point("nose")
    assert nose is not None
    cig = Detection((nose[0] - 4, nose[1] + 2, nose[0] + 4, nose[1] + 8), 0.45, 0, "cigarette")
    # Tracked from frame 1. Alone, 0.45 x (D + 1) reaches 0.5 x (3 + 1) at D = 4 s (frame 5); at the
    # mouth the score is 0.65 and the 3 s minimum decides (frame 4).
    assert [i for i, _ in run_pose(scene_of("smoking"), [([cig], [])] * 7)] == [5]
    assert [i for i, _ in run_pose(scene_of("smoking"), [([cig], [pose])] * 7)] == [4]


def test_workwear_per_person_with_several_uniform_types() -> None:
    scene = scene_of(
        "workwear",
        model="ppe",  # a model of uniform classes as the judge (the default judge is the enrolment)
        params={"violation_labels": ["no_vest"], "uniform_labels": ["vest", "coverall"]},
    )
    frames = [[labelled("no_vest", 0.6, 0.5), labelled("vest", 0.8, 0.5), labelled("coverall", 0.9, 0.7)]] * 6
    events = []
    for i, dets in enumerate(frames):
        events += scene.update(T0 + i, dets, W, H)  # type: ignore[attr-defined]
    assert len(events) == 1 and "without work clothes" in events[0].message


def test_line_crossing_counts_each_direction() -> None:
    from analyzers.tracking import Tracker
    from analyzers.zones import Line

    line = Line("gate", (0.5, 0.0), (0.5, 1.0))  # a vertical line in the middle
    tracker = Tracker()
    crossings = []
    for i in range(
        20
    ):  # one person walks left to right, another right to left (boxes overlap frame to frame)
        dets = [person(0.3 + 0.02 * i, 0.5), person(0.7 - 0.02 * i, 0.8)]
        crossings.append(line.crossings(tracker.update(dets), W, H))
    total_in = sum(c[0] for c in crossings)
    total_out = sum(c[1] for c in crossings)
    assert (total_in, total_out) == (1, 1)


def test_every_scene_file_registers_itself_with_its_declarations() -> None:
    """The registry is filled from the scene files themselves: every module of analyzers/scenes that
    sets a ``key`` is in it, in DESIGN.md's order, with names, rate and alarm codes the table knows."""
    import importlib
    import pkgutil

    import analyzers.scenes as scenes_pkg
    from analyzers.scenes import CATALOGUE, IMPLEMENTED, Scene, scene_class
    from gateway.delivery.alarm_types import default_table

    declared = set()
    for module in pkgutil.iter_modules(scenes_pkg.__path__):
        mod = importlib.import_module(f"analyzers.scenes.{module.name}")
        for obj in vars(mod).values():
            if isinstance(obj, type) and issubclass(obj, Scene) and "key" in obj.__dict__:
                declared.add(obj.key)
    assert declared == set(IMPLEMENTED) == set(CATALOGUE)
    assert [CATALOGUE[k].order for k in CATALOGUE] == sorted(CATALOGUE[k].order for k in CATALOGUE)
    assert list(CATALOGUE)[:2] == ["helmet", "workwear"] and CATALOGUE["extinguisher"].sample_fps == 1 / 60
    table = default_table()
    for key, info in CATALOGUE.items():
        assert scene_class(key).key == key and info.name_zh and info.name_en
        assert info.alarm_types and all(code in table.types for code in info.alarm_types), key


def test_a_new_scene_class_registers_and_a_duplicate_key_is_refused() -> None:
    from analyzers.scenes import CATALOGUE, IMPLEMENTED, RegionScene

    try:

        class Demo(RegionScene):
            key = "demo_scene"
            name_zh = "演示"
            name_en = "demo"
            sample_fps = 0.5
            order = 999

        assert IMPLEMENTED["demo_scene"] is Demo and list(CATALOGUE)[-1] == "demo_scene"
        assert CATALOGUE["demo_scene"].alarm_types == ("demo_scene",)
        with pytest.raises(ValueError, match="declared twice"):

            class Again(RegionScene):
                key = "demo_scene"
                name_zh = "再"
                name_en = "again"
    finally:
        IMPLEMENTED.pop("demo_scene", None)
        CATALOGUE.pop("demo_scene", None)
