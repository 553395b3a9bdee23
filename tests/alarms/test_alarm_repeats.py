"""Repeat rules: a re-acquired target, the camera-scene cooldown and the flood guard merge events into
alarms already raised (counted, with a ``repeated`` revision); offline video alarms are their own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from analyzers import AlarmEvent, Detection, Region
from gateway.alarms.lifecycle import AlarmLifecycle, Change
from gateway.alarms.recorder import AlarmRecorder, SceneContext, VideoOrigin
from gateway.config.alarm_policy import AlarmPolicy
from gateway.db import Database, upgrade
from gateway.db.files import EvidenceStore
from gateway.db.schema import Alarm, AlarmRevision, Camera, Evidence, OutboxRow, UplinkTarget
from gateway.i18n.alarm_text import alarm_text

IMAGE = np.full((400, 600, 3), 70, dtype=np.uint8)
CTX = SceneContext(None, {}, None, [Region("r", [(0, 0), (1, 0), (1, 1)])])
T0 = 1_765_000_000.0


def recorder(tmp_path: Path, **defaults: float) -> AlarmRecorder:
    db = Database(f"sqlite:///{tmp_path / 'v.db'}")
    upgrade(db.engine)
    with db.session() as s:
        s.add(Camera(id="cam1", name="Gate", stream_url="rtsp://x/y"))
        s.add(UplinkTarget(name="park", kind="http", tier="park", settings={}))
    policy = AlarmPolicy.model_validate({"defaults": defaults, "scenes": {"flame": {"clip": True}}})
    return AlarmRecorder(db, EvidenceStore(tmp_path / "storage"), 183, policy=policy)


def event(
    at: float, target: str | None = "1", x: float = 100.0, scene: str = "helmet", region: str = "r"
) -> AlarmEvent:
    return AlarmEvent(
        "cam1",
        scene,
        region,
        occurred_at=at - 3,
        raised_at=at,
        score=0.9,
        message="no helmet",
        detections=(Detection((x, 100.0, x + 40, 200.0), 0.9, 0, "person", track_id=1),),
        target=target,
    )


def alarms(rec: AlarmRecorder) -> list[Alarm]:
    with rec.db.session() as s:
        return list(s.scalars(select(Alarm).order_by(Alarm.raised_at)))


def test_a_reacquired_target_is_merged_into_its_alarm_and_a_distant_one_is_not(tmp_path: Path) -> None:
    rec = recorder(tmp_path, cooldown_s=0, merge_distance=0.1, merge_window_s=120)
    first = rec.record(event(T0, "1", x=100), IMAGE, CTX)
    assert first is not None
    # The tracker lost person 1 and found them again as 7, a few pixels on: the same person.
    assert rec.record(event(T0 + 20, "7", x=110), IMAGE, CTX) is None
    # Person 7 walked on and was lost again: compared with where they were seen last.
    assert rec.record(event(T0 + 40, "9", x=150), IMAGE, CTX) is None
    # Someone on the far side of the frame is another person.
    other = rec.record(event(T0 + 45, "3", x=520), IMAGE, CTX)
    assert other is not None and other != first
    # Past the merge window the same place is a new event.
    assert rec.record(event(T0 + 400, "11", x=150), IMAGE, CTX) is not None
    rows = alarms(rec)
    assert [a.repeats for a in rows] == [2, 0, 0]
    assert rows[0].last_repeat_at is not None and rows[0].revision == 3
    with rec.db.session() as s:
        revs = list(s.scalars(select(AlarmRevision).where(AlarmRevision.alarm_id == first)))
        assert [(r.action, r.note) for r in revs] == [
            ("raised", None),
            ("repeated", "same_target"),
            ("repeated", "same_target"),
        ]
        assert revs[1].changes["repeats"] == [0, 1] and revs[1].changes["target"] == "7"
        # Merged events are not pushed again, and keep no pictures of their own.
        assert len(list(s.scalars(select(OutboxRow).where(OutboxRow.alarm_id == first)))) == 1
        assert len(list(s.scalars(select(Evidence)))) == 2 * 3


def test_cooldown_merges_a_camera_scenes_events_for_its_duration(tmp_path: Path) -> None:
    rec = recorder(tmp_path, cooldown_s=60, merge_distance=0)
    first = rec.record(event(T0, "1", x=100), IMAGE, CTX)
    assert rec.record(event(T0 + 30, "2", x=500), IMAGE, CTX) is None
    assert rec.record(event(T0 + 59, "3", x=300), IMAGE, CTX) is None
    second = rec.record(event(T0 + 61, "4", x=300), IMAGE, CTX)
    assert first and second and first != second
    # Another scene of the camera has its own cooldown.
    assert rec.record(event(T0 + 62, "5", scene="workwear"), IMAGE, CTX) is not None
    rows = alarms(rec)
    assert [(a.scene, a.repeats) for a in rows] == [("helmet", 2), ("helmet", 0), ("workwear", 0)]
    with rec.db.session() as s:
        notes = s.scalars(select(AlarmRevision.note).where(AlarmRevision.action == "repeated")).all()
    assert notes == ["cooldown", "cooldown"]


def test_flood_guard_raises_one_flood_alarm_and_merges_the_rest_until_quiet(tmp_path: Path) -> None:
    rec = recorder(tmp_path, cooldown_s=0, merge_distance=0, flood_alarms=3, flood_minutes=10)
    ids = [rec.record(event(T0 + 30 * i, str(i), x=20 + 50 * i), IMAGE, CTX) for i in range(9)]
    raised = [i for i in ids if i is not None]
    assert len(raised) == 4  # three alarms, then the flood alarm; five events merged into it
    rows = alarms(rec)
    assert [a.kind for a in rows] == ["event", "event", "event", "flood"]
    flood = rows[-1]
    assert flood.repeats == 5 and flood.details["flood"] == {"alarms": 3, "minutes": 10.0}
    assert flood.event_key == "cam1/helmet/~flood" and "alarm flood" in flood.message
    # The console words it in the user's language (gateway/i18n: alarm.flood).
    zh = alarm_text(flood.scene, flood.region, flood.message, flood.details, "zh")
    assert zh == "报警泛滥：10 分钟内已有 3 条报警，之后的报警并入本条（区域“r”）"
    # Ten quiet minutes after the flood's last event: alarms raise one by one again.
    after = T0 + 30 * 8 + 601
    assert rec.record(event(after, "20", x=300), IMAGE, CTX) is not None
    assert alarms(rec)[-1].kind == "event"


def test_offline_video_alarms_are_marked_and_apart_from_the_live_cameras(tmp_path: Path) -> None:
    rec = recorder(tmp_path, cooldown_s=60, merge_distance=0)
    live = rec.record(event(T0), IMAGE, CTX)
    job = SceneContext(None, {}, None, CTX.regions, video=VideoOrigin("01JOBJOBJOBJOBJOBJOBJOBJOB", T0 - 100))
    video = rec.record(event(T0 + 5), IMAGE, job)
    assert live and video
    # The job's own cooldown, in video time.
    assert rec.record(event(T0 + 6, "2"), IMAGE, job) is None
    with rec.db.session() as s:
        a, b = s.get(Alarm, live), s.get(Alarm, video)
        assert a is not None and b is not None
        assert (a.source, a.video_job_id, a.video_ts) == ("live", None, None)
        assert (b.source, b.video_job_id, b.video_ts) == ("video", "01JOBJOBJOBJOBJOBJOBJOBJOB", 102.0)
        assert b.repeats == 1
        assert s.scalars(select(OutboxRow.alarm_id)).all() == [live]  # offline alarms are not pushed


def test_clearing_an_alarm_rearms_the_events_merged_into_it(tmp_path: Path) -> None:
    rec = recorder(tmp_path, cooldown_s=60, merge_distance=0)
    first = rec.record(event(T0, None, scene="intrusion", region="east"), IMAGE, CTX)
    assert first is not None
    # Another region of the camera-scene within the cooldown: merged, its scene hold stays latched.
    assert rec.record(event(T0 + 10, None, scene="intrusion", region="west"), IMAGE, CTX) is None
    rearmed: list[tuple[str, str, str]] = []
    lifecycle = AlarmLifecycle(rec.db, rec.store, rec.outbox, 183, rearm=lambda *a: rearmed.append(a))
    lifecycle.apply(first, Change("clear", "operator"))
    assert rearmed == [("cam1", "intrusion", "east"), ("cam1", "intrusion", "west")]


def test_a_flood_alarm_rearms_the_event_that_tripped_it(tmp_path: Path) -> None:
    rec = recorder(tmp_path, cooldown_s=0, merge_distance=0, flood_alarms=1)
    assert rec.record(event(T0, "1"), IMAGE, CTX) is not None
    flood = rec.record(event(T0 + 5, "2"), IMAGE, CTX)
    assert flood is not None
    rearmed: list[tuple[str, str, str]] = []
    lifecycle = AlarmLifecycle(rec.db, rec.store, rec.outbox, 183, rearm=lambda *a: rearmed.append(a))
    lifecycle.apply(flood, Change("clear", "operator"))
    assert rearmed == [("cam1", "helmet", "r#2")]


@pytest.mark.parametrize(("scene", "clip"), [("flame", True), ("helmet", False)])
def test_clips_only_where_the_scene_asks(tmp_path: Path, scene: str, clip: bool) -> None:
    assert recorder(tmp_path).wants_clip(scene) is clip
    assert AlarmPolicy().for_scene(scene).clip is False


def test_a_misspelled_scene_in_the_rules_is_refused() -> None:
    with pytest.raises(ValueError, match=r"no scene helmt \(in alarms.scenes\); the scenes are .*helmet"):
        AlarmPolicy.model_validate({"scenes": {"helmt": {"clip": True}}})
