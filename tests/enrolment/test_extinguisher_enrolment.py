"""Extinguishers by enrolment: a plant's own labelled photos enrolled (with background windows of the
same photos as the negative), the hot-work scene at 1 frame/min finds them by scanning the frame and
alarms when they are taken away, not while they are there; the boxes found are the evidence."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from analyzers.enrolment import embedder_path, shared_embedder, use_source
from analyzers.enrolment.embedding import Embedder
from analyzers.enrolment.windows import window_shape
from analyzers.scenes import SceneConfig, build_scene
from gateway.db import Database, upgrade
from gateway.enrolment.folder import BACKGROUND, background_crops, folder_crops
from gateway.enrolment.runtime import DatabaseEnrolments
from gateway.enrolment.versions import enrol
from tests.enrolment.synthetic import H, W, draw_extinguisher, wall

T0 = 1_760_000_000.0


def photos(target: Path, count: int, seed: int) -> Path:
    """A plant's labelled photos (YOLO layout): one or two extinguishers on a wall."""
    rng = np.random.default_rng(seed)
    (target / "images").mkdir(parents=True)
    (target / "labels").mkdir()
    (target / "data.yaml").write_text(yaml.safe_dump({"names": ["fire extinguisher"], "nc": 1}))
    for i in range(count):
        image = wall(rng)
        lines = []
        for k in range(1 + i % 2):
            h = int(rng.integers(int(0.22 * H), int(0.3 * H)))
            w = h // 2
            x = int(rng.integers(10, W // 2 - w)) + k * W // 2
            y = int(rng.integers(int(0.35 * H), int(0.8 * H) - h))
            draw_extinguisher(image, (x, y, x + w, y + h), rng)
            lines.append(f"0 {(x + w / 2) / W:.5f} {(y + h / 2) / H:.5f} {w / W:.5f} {h / H:.5f}")
        cv2.imwrite(str(target / "images" / f"p{i:03d}.jpg"), image)
        (target / "labels" / f"p{i:03d}.txt").write_text("\n".join(lines) + "\n")
    return target


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'v.db'}")
    upgrade(database.engine)
    yield database
    database.dispose()


@pytest.fixture(scope="module")
def embedder(models_dir: Path) -> Embedder:
    return shared_embedder(embedder_path(models_dir))


def test_enrolled_extinguishers_alarm_when_removed_not_while_present(
    db: Database, tmp_path: Path, embedder: Embedder, models_dir: Path
) -> None:
    root = tmp_path / "storage"
    folder = photos(tmp_path / "photos", 8, seed=3)
    found = folder_crops(folder, "fire extinguisher", "scan")
    assert len(found.crops) == 12 and found.images == 8  # 1 or 2 per photo
    enrol(db, root, embedder, "extinguisher", "red 4kg", found.crops, shapes=found.shapes)
    background = background_crops(folder, "fire extinguisher", "scan", shapes=found.shapes)
    added = enrol(db, root, embedder, "extinguisher", BACKGROUND, background, negative=True)
    assert added.status == "active" and added.calibration.against == "negatives"

    source = DatabaseEnrolments(db, root, models_dir, refresh_s=0.0)
    old = use_source(source)
    try:
        cfg = SceneConfig(
            scene="extinguisher",
            min_duration_s=120,
            params={"required": 2, "candidates": 12},  # windows shaped like the enrolled boxes
        )
        scene = build_scene("hot", cfg)
        assert scene.waiting_for() is None
        # shape proposals: windows as tall as the enrolled boxes (22-30 % of the picture), half as wide
        enrolled = source.enrolled("extinguisher", "hot")
        assert enrolled is not None and len(enrolled.shapes) == 12
        sides, aspect = window_shape(enrolled.shapes)
        assert all(0.2 <= side <= 0.31 for side in sides) and 0.4 <= aspect <= 0.6
        rng = np.random.default_rng(7)
        guarded = wall(rng)
        draw_extinguisher(guarded, (60, 120, 92, 184), rng)
        draw_extinguisher(guarded, (330, 110, 364, 178), rng)
        empty = wall(rng)
        events = []
        for i in range(2):  # one frame a minute, both extinguishers in view
            events += scene.update(T0 + 60 * i, [], W, H, image=guarded)
        assert events == []
        found_now = scene.classify(guarded)
        assert len(found_now) == 2
        for x1, y1, x2, y2 in ((60, 120, 92, 184), (330, 110, 364, 178)):  # each found where it hangs
            assert any(
                d.box[0] <= (x1 + x2) / 2 <= d.box[2] and d.box[1] <= (y1 + y2) / 2 <= d.box[3]
                for d in found_now
            )
        for i in range(2, 5):  # taken away: the third minute without them alarms
            events += scene.update(T0 + 60 * i, [], W, H, image=empty)
        assert [e.message for e in events] == ["hot work in 'frame' with 0 of 2 required fire extinguishers"]
        # one of two: still fewer than required, in the evidence the one that is there
        scene = build_scene("hot", cfg)
        one = wall(rng)
        draw_extinguisher(one, (300, 100, 334, 170), rng)
        events = [e for i in range(3) for e in scene.update(T0 + 60 * i, [], W, H, image=one)]
        assert len(events) == 1 and len(events[0].detections) == 1 and events[0].details["found"] == 1
    finally:
        use_source(old)


def test_nothing_enrolled_means_no_alarm_and_says_so() -> None:
    old = use_source(None)
    try:
        scene = build_scene("hot", SceneConfig(scene="extinguisher", min_duration_s=0))
        image = np.zeros((H, W, 3), np.uint8)
        assert [e for i in range(4) for e in scene.update(T0 + 60 * i, [], W, H, image=image)] == []
        assert (scene.waiting_for() or "").startswith("no extinguisher enrolled")
    finally:
        use_source(old)
