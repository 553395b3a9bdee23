"""Enrolment versions like model versions: a new version whose leave-one-out F1 is lower than the
current set's is held as a candidate by the promotion gate; activation then needs force (audited);
rollback makes the previous version current again; a camera's own class overrides the site's."""

from __future__ import annotations

from pathlib import Path

import pytest

from analyzers.enrolment import EnrolmentError, embedder_path, shared_embedder
from gateway.db import Database, upgrade
from gateway.enrolment.versions import activate, enrol, list_enrolments, load_set, rollback, show
from tests.enrolment.synthetic import BLUE, GREEN, ORANGE, worker_examples


def test_gate_force_rollback_and_camera_override(tmp_path: Path, models_dir: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'v.db'}")
    upgrade(db.engine)
    root = tmp_path / "storage"
    embedder = shared_embedder(embedder_path(models_dir))
    try:
        first = enrol(db, root, embedder, "workwear", "uniform", worker_examples(BLUE, 6, 1), actor="ops")
        # one class alone: nothing to separate it from, the class mean below its examples' spread
        alone = first.calibration
        assert (alone.against, alone.method, alone.loo_f1) == ("none", "centroid", None)
        assert alone.loo_positive_recall == 1.0  # every example passes its own leave-one-out
        enrol(db, root, embedder, "workwear", "none", worker_examples(GREEN, 6, 2), negative=True)
        # a careless second version: half of its "uniform" examples are the negatives' colour
        mixed = worker_examples(BLUE, 3, 3) + worker_examples(GREEN, 3, 4)
        held = enrol(db, root, embedder, "workwear", "uniform", mixed, actor="ops")
        assert held.status == "candidate" and held.version == 2 and "held as candidate" in held.gate
        assert held.previous_f1 is not None and (held.calibration.loo_f1 or 0) < held.previous_f1
        current = {e["name"]: e["id"] for e in list_enrolments(db, "workwear")}
        assert current["uniform"] == first.id  # the set the scenes match against did not change
        with pytest.raises(EnrolmentError, match="promotion gate"):
            activate(db, root, held.id, "ops")
        forced = activate(db, root, held.id, "ops", force=True, reason="new coveralls arrive monday")
        assert forced["current"] and show(db, held.id)["audit"][-1]["reason"] == "new coveralls arrive monday"
        back = rollback(db, "workwear", "uniform", None, "ops")
        assert back["id"] == first.id and show(db, held.id)["status"] == "candidate"

        # camera c2 wears orange: its own "uniform" replaces the site's there, not elsewhere
        enrol(db, root, embedder, "workwear", "uniform", worker_examples(ORANGE, 6, 5), camera_id="c2")
        site, c2 = load_set(db, root, "workwear", None), load_set(db, root, "workwear", "c2")
        assert site is not None and c2 is not None and site.key != c2.key
        assert len(c2.examples.classes) == 12 and c2.calibration.against == "negatives"
        assert (
            load_set(db, root, "workwear", "c1") is not None
            and load_set(db, root, "workwear", "c1").key == site.key
        )
        assert load_set(db, root, "extinguisher", None) is None  # nothing enrolled there
    finally:
        db.dispose()
