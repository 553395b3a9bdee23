"""The closed loop on a tiny subset, as a plant runs it: import labelled photos into a task -> freeze
the 8:2 split -> `vigil train` (fixed seed, 2 epochs) -> ONNX + card -> registered version naming the
exact train and test sets -> `vigil models test` on the test set -> activate (promotion gate: the
worse version needs the override, recorded in the audit) -> roll back to the earlier version.

(tests/test_training.py covers the trainer itself: crops, export, seed reproducibility, augmentation.)
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

import gateway.models.versions as mv
from adapters import Frame
from analyzers import build_scene
from gateway.alarms.recorder import SceneContext
from gateway.app import Gateway
from gateway.cameras.analytics import CameraRunner
from gateway.cli import main as vigil
from gateway.config.schema import CameraConfig, load_config
from gateway.db import Database, upgrade
from gateway.models.pack import active_model_dir, import_pack
from gateway.samples.library import SampleLibrary
from tests.conftest import ROOT, write_config
from tests.test_classifier_scenes import T0, Collected

DATA = Path(os.environ.get("VIGIL_DATA_DIR", ROOT.parent / "shared" / "data"))
HELMET = {"Hardhat": "helmet", "NO-Hardhat": "no_helmet"}


def plant_photos(target: Path, count: int) -> Path:
    """``count`` construction-site photos with helmet / no-helmet boxes, copied as a YOLO split."""
    split = DATA / "construction_site_safety" / "train"
    if not split.is_dir():
        pytest.skip("needs VIGIL_DATA_DIR with construction_site_safety")
    names = yaml.safe_load((DATA / "construction_site_safety" / "data.yaml").read_text())["names"]
    wanted = {names.index(n) for n in HELMET}
    (target / "images").mkdir(parents=True)
    (target / "labels").mkdir()
    copied = 0
    for label in sorted((split / "labels").iterdir()):
        classes = {int(line.split()[0]) for line in label.read_text().splitlines() if line.strip()}
        image = split / "images" / f"{label.stem}.jpg"
        if classes & wanted and image.is_file():
            shutil.copy(image, target / "images" / image.name)
            shutil.copy(label, target / "labels" / label.name)
            copied += 1
            if copied == count:
                break
    (target / "data.yaml").write_text(yaml.safe_dump({"names": names, "nc": len(names)}))
    return target


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = vigil(list(argv))
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


def train(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    """`vigil train ... --json`: the JSON after the line naming the library's sets."""
    out = run(capsys, *argv)
    assert out.startswith("library: task helmet train set ")
    return dict(json.loads(out[out.index("\n{") + 1 :]))


def test_import_split_train_register_test_activate_rollback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch")
    cfg = write_config(tmp_path)
    config = load_config(cfg)
    db = Database(config.database.url)
    upgrade(db.engine)
    root = config.storage.root
    lib = SampleLibrary(db, root)
    report = lib.import_yolo(
        plant_photos(tmp_path / "photos", 40), "helmet", scene="helmet", label_map=HELMET
    )
    assert report.added == 40 and not report.skipped

    common = [
        "--epochs",
        "2",
        "--batch",
        "8",
        "--threads",
        "2",
        "--no-progress",
        "--json",
        "--cache",
        str(tmp_path / "c"),
    ]
    # No --data: the task's samples in the library are the training data (auto), split 8:2 and frozen.
    base = ["--config", str(cfg), "train", "helmet"]
    first = train(capsys, *base, "--seed", "0", "--version", "1.0.0", "--out", str(tmp_path / "v1"), *common)
    split = lib.latest_split("helmet")
    assert split is not None
    assert (first["train_set_id"], first["test_set_id"]) == (split["train_set_id"], split["test_set_id"])
    v1 = mv.show_version(db, str(first["version_id"]))
    assert (v1["model"], v1["version"], v1["status"]) == ("helmet", "1.0.0", "candidate")
    assert (v1["train_set_id"], v1["test_set_id"]) == (split["train_set_id"], split["test_set_id"])
    assert v1["train_set"]["purpose"] == "train" and v1["test_set"]["purpose"] == "test"
    assert 0.0 <= v1["metrics"]["f1"] <= 1.0 and set(v1["metrics"]["classes"]) == {"helmet", "no_helmet"}

    # `vigil models test` on the version's own test set: per class P/R/F1, stored as its evaluation.
    printed = run(capsys, "--config", str(cfg), "models", "test", v1["id"], "--dataset", split["test_set_id"])
    assert "no_helmet" in printed and "img F1" in printed
    tested = mv.show_version(db, v1["id"])
    assert tested["tests"][-1]["dataset"] == split["test_set_id"]
    assert tested["metrics"]["f1"] == tested["tests"][-1]["overall"]["f1"]

    # A second version from the same frozen split (another seed, no learning): the same sets.
    untrained = ["--seed", "1", "--lr", "0", "--version", "1.0.1", "--out", str(tmp_path / "v2")]
    second = train(capsys, *base, *untrained, *common)
    assert second["test_set_id"] == split["test_set_id"] and second["version_id"] != v1["id"]
    f1 = {vid: mv.show_version(db, vid)["metrics"]["f1"] for vid in (v1["id"], str(second["version_id"]))}
    better, worse = sorted(f1, key=lambda vid: f1[vid], reverse=True)
    assert f1[better] > f1[worse], f1

    mv.activate(db, better, "ops")
    with pytest.raises(mv.GateRefused, match="promotion gate"):
        mv.activate(db, worse, "ops")
    mv.activate(db, worse, "ops", override=True, reason="field trial on camera 3")
    assert active_model_dir(db, root, "helmet")[2] == worse
    mv.rollback(db, better, "ops")
    assert active_model_dir(db, root, "helmet")[2] == better
    audit = mv.audit_log(db, "helmet")
    assert [(a["action"], a["to"], a["override"]) for a in audit] == [
        ("activate", better, False),
        ("activate", worse, True),
        ("rollback", better, False),
    ]
    assert audit[1]["reason"] == "field trial on camera 3" and audit[1]["f1_to"] < audit[1]["f1_from"]
    db.dispose()


def draw_extinguisher(image: np.ndarray, x: int, y: int, height: int) -> tuple[int, int, int, int]:
    """A red extinguisher-like cylinder (body, dark cap, black hose) with its box x1, y1, x2, y2."""
    width = max(6, int(height * 0.38))
    cv2.rectangle(image, (x, y + height // 6), (x + width, y + height), (30, 30, 200), -1)
    cv2.ellipse(
        image,
        (x + width // 2, y + height // 6),
        (width // 2, max(2, height // 14)),
        0,
        180,
        360,
        (30, 30, 200),
        -1,
    )
    cv2.rectangle(image, (x + width // 3, y), (x + 2 * width // 3, y + height // 6), (40, 40, 40), -1)
    cv2.line(image, (x + 2 * width // 3, y + 2), (x + width + 3, y + height // 2), (10, 10, 10), 2)
    cv2.rectangle(
        image, (x + 2, y + height // 2), (x + width - 2, y + height // 2 + height // 8), (235, 235, 235), -1
    )
    return x, y, x + width + 3, y + height


def site(rng: np.random.Generator, width: int = 320, height: int = 240) -> np.ndarray:
    """A hot-work background: smooth noise, grey machinery blocks and an orange hose."""
    noise = rng.integers(40, 200, (height // 8, width // 8, 3), dtype=np.uint8)
    image = cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)
    for _ in range(3):
        x, y = int(rng.integers(0, width - 60)), int(rng.integers(0, height - 60))
        grey = int(rng.integers(70, 160))
        cv2.rectangle(
            image,
            (x, y),
            (x + int(rng.integers(20, 60)), y + int(rng.integers(20, 60))),
            (grey, grey, grey),
            -1,
        )
    cv2.line(
        image, (0, int(rng.integers(0, height))), (width, int(rng.integers(0, height))), (0, 120, 240), 3
    )
    return image


def extinguisher_photos(target: Path, count: int, seed: int) -> Path:
    """A plant's own labelled photos (YOLO txt): one or two extinguishers on each hot-work background."""
    rng = np.random.default_rng(seed)
    (target / "images").mkdir(parents=True)
    (target / "labels").mkdir()
    (target / "data.yaml").write_text(yaml.safe_dump({"names": ["fire extinguisher"], "nc": 1}))
    for i in range(count):
        image = site(rng)
        h, w = image.shape[:2]
        lines = []
        for k in range(1 + i % 2):
            size = int(rng.integers(45, 75))
            x1, y1, x2, y2 = draw_extinguisher(
                image, 20 + 150 * k + int(rng.integers(0, 100)), int(rng.integers(5, h - size - 5)), size
            )
            lines.append(
                f"0 {(x1 + x2) / 2 / w:.5f} {(y1 + y2) / 2 / h:.5f} {(x2 - x1) / w:.5f} {(y2 - y1) / h:.5f}"
            )
        cv2.imwrite(str(target / "images" / f"site{i:03d}.jpg"), image)
        (target / "labels" / f"site{i:03d}.txt").write_text("\n".join(lines))
    return target


def test_a_plants_own_extinguisher_photos_become_the_scenes_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], models_dir: Path
) -> None:
    """No licence-clean extinguisher data exists: the day a plant imports its photos, the same
    machinery trains, registers and activates a card, and the hot-work scene runs with it."""
    pytest.importorskip("torch")
    cfg = write_config(tmp_path)
    gw = Gateway(load_config(cfg, environ={}), analyse=False)
    upgrade(gw.db.engine)
    root = gw.config.storage.root
    import_pack(gw.db, root, models_dir, ROOT / "config" / "models")
    camera = CameraConfig.model_validate(
        {
            "id": "hot",
            "name": "hot work",
            "url": "rtsp://127.0.0.1:9/x",
            # the trained card judges where the camera names it (the default judge is the enrolment)
            "scenes": [{"scene": "extinguisher", "model": "extinguisher"}],
        }
    )
    scene = build_scene("hot", camera.scenes[0])
    ctx = SceneContext(None, {}, None, [])
    assert gw.analytics.scene_run(camera, scene, ctx).status.startswith("model missing")

    report = SampleLibrary(gw.db, root).import_yolo(
        extinguisher_photos(tmp_path / "photos", 40, 5), "extinguisher"
    )
    assert report.added == 40
    out = run(
        capsys,
        "--config",
        str(cfg),
        "train",
        "extinguisher",
        "--epochs",
        "6",
        "--batch",
        "16",
        "--threads",
        "2",
        "--no-progress",
        "--json",
        "--cache",
        str(tmp_path / "c"),
        "--out",
        str(tmp_path / "out"),
    )
    trained = json.loads(out[out.index("\n{") + 1 :])
    version = mv.show_version(gw.db, trained["version_id"])
    assert version["model"] == "extinguisher" and version["test_set_id"] == trained["test_set_id"]
    mv.activate(gw.db, version["id"], "ops")

    run_ = gw.analytics.scene_run(camera, build_scene("hot", camera.scenes[0]), ctx)
    assert run_.status == "running" and run_.model is not None and run_.model.name == "extinguisher"
    assert run_.model.kind == "classifier" and run_.crop == "scan"  # the card says how it looks
    runner = CameraRunner(camera, [run_], Collected())  # type: ignore[arg-type]
    rng = np.random.default_rng(99)
    empty = site(rng)
    guarded = site(rng)
    draw_extinguisher(guarded, 60, 120, 60)
    draw_extinguisher(guarded, 220, 100, 65)
    try:
        for i in range(3):  # the scene samples one frame a minute
            runner.analyse(Frame("hot", T0 + 60 * i, guarded, float(i), True))
        runner.drain()
        seen = len(runner.recorder.events)  # type: ignore[attr-defined]
        for i in range(3, 6):
            runner.analyse(Frame("hot", T0 + 60 * i, empty, float(i), True))
        runner.drain()
    finally:
        runner.stop()
        gw.analytics.stop()
    assert runner.stats.errors == 0, runner.stats.last_error
    events = runner.recorder.events[seen:]  # type: ignore[attr-defined]
    assert [e.message for e in events] == ["hot work in 'frame' with 0 of 2 required fire extinguishers"]
    assert seen == 0  # two extinguishers in view: no alarm
