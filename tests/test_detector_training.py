"""The project's own detectors: YOLOX-Nano in torch loads the pack's COCO weights exactly, a tiny
detector trains end to end as a plant would run it (library photos -> `vigil train ppe` -> ONNX with
a dynamic input -> card with hold-out thresholds -> registered version -> `vigil eval`), and the
helmet scene judges heads straight from a detector: one alarm per person, every bare head boxed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from analyzers import build_scene
from analyzers.records import Detection
from analyzers.scenes import SceneConfig
from gateway.cli import main as vigil
from gateway.config.schema import load_config
from gateway.db import Database, upgrade
from gateway.models.pack import import_pack
from gateway.samples.library import SampleLibrary
from tests.conftest import ROOT, write_config
from tests.test_training_loop import DATA

PPE = {"Person": "person", "NO-Hardhat": "head", "Hardhat": "helmet"}


def test_yolox_nano_in_torch_matches_the_packs_onnx(models_dir: Path) -> None:
    pytest.importorskip("torch")
    import onnxruntime as ort
    import torch

    from analyzers.training.yolox_net import build

    onnx_file = models_dir / "yolox_nano" / "yolox_nano_dynamic.onnx"
    classes = (models_dir / "yolox_nano" / "coco_classes.txt").read_text().split("\n")
    classes = [c.strip() for c in classes if c.strip()]
    net = build(classes, onnx_file, classes)
    net.export = True
    net.eval()
    x = np.random.default_rng(0).uniform(0, 255, (1, 3, 192, 320)).astype(np.float32)
    want = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"]).run(None, {"images": x})[
        0
    ]
    with torch.no_grad():
        got = net(torch.from_numpy(x)).numpy()
    assert got.shape == want.shape == (1, (24 * 40 + 12 * 20 + 6 * 10), 85)
    assert np.abs(got - want).max() < 1e-3


def plant_photos(target: Path, count: int) -> Path:
    """``count`` construction-site photos with people and heads, copied as a YOLO split."""
    split = DATA / "construction_site_safety" / "train"
    if not split.is_dir():
        pytest.skip("needs VIGIL_DATA_DIR with construction_site_safety")
    names = yaml.safe_load((DATA / "construction_site_safety" / "data.yaml").read_text())["names"]
    wanted = {names.index(n) for n in ("Person", "NO-Hardhat")}
    (target / "images").mkdir(parents=True)
    (target / "labels").mkdir()
    copied = 0
    for label in sorted((split / "labels").iterdir()):
        classes = {int(line.split()[0]) for line in label.read_text().splitlines() if line.strip()}
        image = split / "images" / f"{label.stem}.jpg"
        if wanted <= classes and image.is_file():
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


def test_a_tiny_detector_trains_registers_and_is_scored_by_its_scene(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)
    cfg = write_config(tmp_path)
    config = load_config(cfg)
    db = Database(config.database.url)
    upgrade(db.engine)
    import_pack(db, config.storage.root, models_dir, ROOT / "config" / "models")  # the COCO start
    photos = plant_photos(tmp_path / "photos", 12)
    report = SampleLibrary(db, config.storage.root).import_yolo(photos, "ppe", label_map=PPE)
    assert report.added == 12

    out = run(
        capsys,
        "--config", str(cfg), "train", "ppe", "--epochs", "2", "--batch", "4", "--threads", "2",
        "--seed", "0", "--no-progress", "--json", "--cache", str(tmp_path / "c"),
        "--out", str(tmp_path / "m"),
    )  # fmt: skip
    result = json.loads(out[out.index("\n{") + 1 :])
    card = yaml.safe_load((tmp_path / "m" / "ppe.yaml").read_text())
    assert card["family"] == "yolox" and card["dynamic_size"] is True
    assert card["classes"] == ["person", "head", "helmet", "vest"]
    assert set(card["thresholds"]) == set(card["classes"]) and result["version_id"]
    metrics = json.loads((tmp_path / "m" / "ppe" / "metrics.json").read_text())
    assert metrics["epochs_run"] == 2 and metrics["seed"] == 0 and "vigil train ppe" in metrics["command"]

    # The exported ONNX runs at another input size than it was trained at (aspect-matched CCTV).
    import onnxruntime as ort

    session = ort.InferenceSession(
        str(tmp_path / "m" / "ppe" / "ppe.onnx"), providers=["CPUExecutionProvider"]
    )
    (raw,) = session.run(None, {"images": np.zeros((1, 3, 352, 640), np.float32)})
    assert raw.shape == (1, 44 * 80 + 22 * 40 + 11 * 20, 9)

    # The registered candidate, activated, is what the helmet scene's evaluation runs.
    run(capsys, "--config", str(cfg), "models", "activate", str(result["version_id"]))
    printed = run(
        capsys,
        "--config",
        str(cfg),
        "eval",
        "--scene",
        "helmet",
        "--end-to-end",
        "--data",
        str(photos),
        "--json",
    )
    classes = json.loads(printed)["classes"]
    assert {"no_helmet", "person"} <= set(classes)
    for row in classes.values():
        assert {"precision", "recall", "f1", "tp", "fp", "fn", "image_f1"} <= set(row)
        assert row["tp"] + row["fn"] == row["support"]


def head(x: float, track: int | None = None, label: str = "head") -> Detection:
    return Detection((x, 100.0, x + 30, 130.0), 0.9, 1, label)


def person(x: float) -> Detection:
    return Detection((x - 20, 90.0, x + 50, 300.0), 0.9, 0, "person")


def test_three_bare_heads_raise_one_alarm_per_person_each_boxing_all_three() -> None:
    scene = build_scene("cam", SceneConfig(scene="helmet", min_duration_s=2, gap_tolerance_s=2))
    image = np.full((480, 640, 3), 90, np.uint8)
    events = []
    for second in range(12):
        dx = second * 2.0  # people walk slowly to the right
        frame = [d for x in (50.0, 250.0, 450.0) for d in (head(x + dx), person(x + dx))]
        frame.append(head(350.0 + dx, label="helmet"))  # a fourth worker wears a helmet
        events += scene.update(1000.0 + second, frame, 640, 480, image=image)
    assert len(events) == 3, [e.message for e in events]
    assert len({e.target for e in events}) == 3 and all(e.target.startswith("p") for e in events)
    for event in events:
        bare = [d for d in event.detections if d.label == "head"]
        assert len(bare) == 3 and event.detections[0].label == "head"
        assert event.details["violation"] == "no helmet" and event.details["bare_heads"] == 3
    # a head whose person is not found is still judged (keyed by the head's own track)
    lone = build_scene("cam", SceneConfig(scene="helmet", min_duration_s=1))
    found = []
    for second in range(6):
        found += lone.update(2000.0 + second, [head(100.0)], 640, 480, image=image)
    assert len(found) == 1 and found[0].target.startswith("h")
