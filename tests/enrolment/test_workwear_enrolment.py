"""Work clothes by enrolment through the real scene path: two uniform colours enrolled (stored in the
database and the content-addressed store, read back by the gateway's enrolment source), a worker in
a third colour alarms, the enrolled ones never do; with nothing enrolled the scene raises nothing and
says so as its status."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from analyzers.enrolment import EnrolmentError, embedder_path, shared_embedder, use_source
from analyzers.enrolment.embedding import Embedder
from analyzers.scenes import SceneConfig, build_scene
from gateway.db import Database, upgrade
from gateway.enrolment.runtime import DatabaseEnrolments
from gateway.enrolment.versions import enrol, list_enrolments, remove
from tests.conftest import fresh_database
from tests.enrolment.synthetic import (
    BLUE,
    GREEN,
    ORANGE,
    WHITE,
    W,
    draw_worker,
    person,
    worker_examples,
    yard,
)

T0 = 1_760_000_000.0


@pytest.fixture(params=["sqlite"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    database = fresh_database(request, tmp_path)
    upgrade(database.engine)
    yield database
    database.dispose()


@pytest.fixture(scope="module")
def embedder(models_dir: Path) -> Embedder:
    return shared_embedder(embedder_path(models_dir))


@pytest.fixture
def source(db: Database, tmp_path: Path, models_dir: Path) -> Iterator[DatabaseEnrolments]:
    found = DatabaseEnrolments(db, tmp_path / "storage", models_dir, refresh_s=0.0)
    old = use_source(found)
    yield found
    use_source(old)


def frame(colours: list[tuple[int, int, int]], seed: int) -> tuple[np.ndarray, list]:
    rng = np.random.default_rng(seed)
    image = yard(rng)
    people = []
    for i, colour in enumerate(colours):
        x = 30 + i * (W // len(colours))
        box = (float(x), 40.0, float(x + 50), 190.0)
        draw_worker(image, box, colour, rng)
        people.append(person(box))
    return image, people


def play(scene, colours: list[tuple[int, int, int]], seconds: int) -> list:  # type: ignore[no-untyped-def]
    events = []
    for i in range(seconds):
        image, people = frame(colours, seed=100 + i)
        events += scene.update(T0 + i, people, image.shape[1], image.shape[0], image=image)
    return events


def test_two_uniforms_enrolled_a_third_colour_alarms(
    db: Database, tmp_path: Path, embedder: Embedder, source: DatabaseEnrolments
) -> None:
    root = tmp_path / "storage"
    scene = build_scene("cam", SceneConfig(scene="workwear", min_duration_s=2, gap_tolerance_s=2))
    # nothing enrolled: no alarm whatever people wear, and the camera says what to do
    assert play(scene, [GREEN], 4) == []
    assert (scene.waiting_for() or "").startswith("no uniform enrolled: enrol the plant's work clothes")

    blue = enrol(db, root, embedder, "workwear", "blue coverall", worker_examples(BLUE, 8, seed=1), actor="t")
    orange = enrol(db, root, embedder, "workwear", "orange coverall", worker_examples(ORANGE, 8, seed=2))
    assert blue.status == orange.status == "active" and orange.calibration.positives == 16
    # without negatives the threshold separates each uniform from the other (leave-one-out)
    assert orange.calibration.against == "other classes" and (orange.calibration.loo_f1 or 0) > 0.9
    listed = list_enrolments(db, "workwear")
    assert [(e["name"], e["examples"], e["current"]) for e in listed] == [
        ("blue coverall", 8, True),
        ("orange coverall", 8, True),
    ]
    assert listed[0]["created_by"] == "t" and listed[1]["threshold"] is not None

    scene = build_scene("cam", SceneConfig(scene="workwear", min_duration_s=2, gap_tolerance_s=2))
    events = play(scene, [BLUE, GREEN, ORANGE], 6)
    assert scene.waiting_for() is None
    assert len(events) == 1, [e.message for e in events]
    alarm = events[0]
    assert alarm.scene == "workwear" and "without work clothes" in alarm.message
    x1 = alarm.detections[0].box[0]
    assert 30 + W // 3 - 5 <= x1 <= 30 + W // 3 + 5  # the worker in green, the middle one
    # the enrolled uniforms alone never alarm
    scene = build_scene("cam", SceneConfig(scene="workwear", min_duration_s=2, gap_tolerance_s=2))
    assert play(scene, [BLUE, ORANGE, BLUE], 6) == []

    # removing a uniform makes its wearers alarm (the running source reads the change)
    enrol(db, root, embedder, "workwear", "white coverall", worker_examples(WHITE, 8, seed=3))
    remove(db, "workwear", "orange coverall", None, "t")
    scene = build_scene("cam", SceneConfig(scene="workwear", min_duration_s=2, gap_tolerance_s=2))
    events = play(scene, [BLUE, ORANGE, WHITE], 6)
    # orange, the middle worker, alarms
    assert [round(e.detections[0].box[0]) for e in events] == [30 + W // 3], [e.details for e in events]


def test_too_few_examples_store_nothing(db: Database, tmp_path: Path, embedder: Embedder) -> None:
    root = tmp_path / "storage"
    with pytest.raises(EnrolmentError, match="too few examples: blue has 3; enrol at least 5"):
        enrol(db, root, embedder, "workwear", "blue", worker_examples(BLUE, 3, seed=1))
    with pytest.raises(EnrolmentError, match="takes no enrolment"):
        enrol(db, root, embedder, "intrusion", "blue", worker_examples(BLUE, 6, seed=1))
    assert list_enrolments(db) == []
