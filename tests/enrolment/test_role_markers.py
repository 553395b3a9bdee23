"""Role markers by enrolment: the rigger scene accepts a plant's enrolled marker beside its colour
rules; without the marked person in the area it alarms, with them it does not."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from analyzers.enrolment import embedder_path, shared_embedder, use_source
from analyzers.scenes import SceneConfig, build_scene
from gateway.db import Database, upgrade
from gateway.enrolment.runtime import DatabaseEnrolments
from gateway.enrolment.versions import enrol
from tests.enrolment.synthetic import BLUE, ORANGE, draw_worker, person, worker_examples, yard

T0 = 1_760_000_000.0


def play(scene, colours: list[tuple[int, int, int]], seconds: int) -> list:  # type: ignore[no-untyped-def]
    events = []
    for i in range(seconds):
        rng = np.random.default_rng(200 + i)
        image = yard(rng)
        people = []
        for k, colour in enumerate(colours):
            box = (float(40 + k * 150), 40.0, float(90 + k * 150), 190.0)
            draw_worker(image, box, colour, rng)
            people.append(person(box))
        events += scene.update(T0 + i, people, image.shape[1], image.shape[0], image=image)
    return events


def test_an_enrolled_marker_keeps_the_rigger_on_post(tmp_path: Path, models_dir: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'v.db'}")
    upgrade(db.engine)
    root = tmp_path / "storage"
    embedder = shared_embedder(embedder_path(models_dir))
    # the plant's signallers wear orange; the crew wears blue (enrolled as the negative)
    enrol(db, root, embedder, "rigger_on_post", "orange signaller", worker_examples(ORANGE, 8, 4, "person"))
    enrol(db, root, embedder, "rigger_on_post", "crew", worker_examples(BLUE, 8, 5, "person"), negative=True)
    old = use_source(DatabaseEnrolments(db, root, models_dir, refresh_s=0.0))
    try:
        # no colour rule that could fire on the synthetic picture: only the enrolment decides
        cfg = SceneConfig(
            scene="rigger_on_post",
            min_duration_s=2,
            params={"role": [{"part": "head", "colours": ["green"]}]},
        )
        assert play(build_scene("lift", cfg), [BLUE, ORANGE], 5) == []
        events = play(build_scene("lift", cfg), [BLUE, BLUE], 5)
        assert len(events) == 1 and events[0].message.startswith("no rigger/signaller in 'frame'")
        # the plant can turn enrolled markers off: then only the colour rules count
        off = cfg.model_copy(update={"params": {**cfg.params, "enrolled_markers": False}})
        assert len(play(build_scene("lift", off), [BLUE, ORANGE], 5)) == 1
    finally:
        use_source(old)
        db.dispose()
