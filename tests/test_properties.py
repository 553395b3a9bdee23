"""Property tests (hypothesis) for zones and the alarm rule."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from analyzers import Detection, Region, SceneConfig, build_scene
from analyzers.scenes import Hold

W, H = 640, 480
T0 = 1_795_000_000.0


def foot(x: float, y: float) -> Detection:
    return Detection((x - 5, y - 50, x + 5, y), 0.9, 0, "person")


@settings(max_examples=200, deadline=None)
@given(
    x1=st.floats(0.0, 0.8),
    y1=st.floats(0.0, 0.8),
    w=st.floats(0.1, 0.2),
    h=st.floats(0.1, 0.2),
    px=st.floats(0.0, 1.0),
    py=st.floats(0.0, 1.0),
)
def test_rectangle_region_agrees_with_geometry(
    x1: float, y1: float, w: float, h: float, px: float, py: float
) -> None:
    x2, y2 = min(1.0, x1 + w), min(1.0, y1 + h)
    region = Region("r", [(x1, y1), (x2, y1), (x2, y2), (x1, y2)])
    fx, fy = px * (W - 1), py * (H - 1)
    margin = 2.0  # pixels: the polygon is rasterised, so stay off its edges
    inside_geom = (
        x1 * (W - 1) + margin < fx < x2 * (W - 1) - margin
        and y1 * (H - 1) + margin < fy < y2 * (H - 1) - margin
    )
    outside_geom = not (
        x1 * (W - 1) - margin <= fx <= x2 * (W - 1) + margin
        and y1 * (H - 1) - margin <= fy <= y2 * (H - 1) + margin
    )
    hit = bool(region.inside([foot(fx, fy)], W, H))
    if inside_geom:
        assert hit
    if outside_geom:
        assert not hit


def first_bridged_run(presence: list[bool], min_duration: int, gap: float) -> int | None:
    """Where the rule must fire: the first frame ending a run (gaps <= gap bridged) of min_duration."""
    since = last = None
    for t, present in enumerate(presence):
        if present:
            if since is None or last is None or t - last > gap:
                since = t
            last = t
            if t - since >= min_duration:
                return t
        elif last is not None and t - last > gap:
            since = last = None
    return None


@settings(max_examples=200, deadline=None)
@given(presence=st.lists(st.booleans(), min_size=1, max_size=40), min_duration=st.integers(0, 8))
def test_intrusion_fires_once_exactly_when_the_rule_says(presence: list[bool], min_duration: int) -> None:
    cfg = SceneConfig.model_validate(
        {"scene": "intrusion", "min_duration_s": min_duration, "gap_tolerance_s": 2}
    )
    scene = build_scene("cam", cfg)
    fired = []
    for t, present in enumerate(presence):
        dets = [foot(320, 240)] if present else []
        fired += [t for _ in scene.update(T0 + t, dets, W, H)]
    expected = first_bridged_run(presence, min_duration, gap=2)
    assert fired == ([] if expected is None else [expected])


@settings(max_examples=200, deadline=None)
@given(
    scores=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=30),
    sizes=st.lists(st.floats(0.001, 1.0), min_size=0, max_size=30),
)
def test_scores_stay_in_range_and_growth_only_helps(scores: list[float], sizes: list[float]) -> None:
    flame = build_scene("cam", SceneConfig(scene="flame"))
    hold = Hold(scores=list(scores), sizes=list(sizes))
    plain = sum(scores) / len(scores)
    weighted = flame.score(hold)
    assert 0.0 <= hold.growth() <= 1.0
    assert plain * (1 - flame.growth_weight) - 1e-9 <= weighted <= plain + 1e-9
    growing = Hold(scores=list(scores), sizes=[float(i + 1) for i in range(5)])
    assert flame.score(growing) >= weighted - 1e-9
