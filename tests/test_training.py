"""Training loop end to end on tiny synthetic data: build crops -> train -> export ONNX -> load through the
analyzers' classifier loader -> predict; seed reproducibility; augmentation keeps boxes valid; the
shipped model cards load and name the classes their scenes read."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from analyzers import Detection, SceneConfig, build_scene
from analyzers.colour import helmet_colour
from analyzers.crops import classify_people, part_box
from analyzers.detectors.classifier import ImageClassifier
from analyzers.runtime.card import read_card
from analyzers.training import TASKS, AugmentConfig, Source, augment, build_set, transform_boxes

ROOT = Path(__file__).resolve().parents[1]
CARDS = ROOT / "config" / "models"
SHIPPED = {"helmet": "helmet", "workwear": "workwear", "flame": "fire", "smoke": "fire", "smoking": "smoking"}


def make_yolo(root: Path, n: int, seed: int) -> Path:
    """A YOLO split: red upright 'extinguishers' on grey noise, one or two per image, plus a blue
    'cone' class the extinguisher task ignores."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "data.yaml").write_text(yaml.safe_dump({"names": ["Fire Extinguisher", "cone"], "nc": 2}))
    for i in range(n):
        img = rng.integers(60, 140, (160, 160, 3), dtype=np.uint8)
        lines = []
        for k in range(1 + i % 2):
            x, y = 20 + 70 * k + int(rng.integers(0, 20)), int(rng.integers(20, 80))
            cv2.rectangle(img, (x, y), (x + 20, y + 40), (30, 30, 220), -1)
            lines.append(f"0 {(x + 10) / 160:.4f} {(y + 20) / 160:.4f} {20 / 160:.4f} {40 / 160:.4f}")
        cv2.rectangle(img, (120, 120), (140, 150), (220, 80, 30), -1)
        lines.append(f"1 {130 / 160:.4f} {135 / 160:.4f} {20 / 160:.4f} {30 / 160:.4f}")
        cv2.imwrite(str(root / "images" / f"img{i:03d}.jpg"), img)
        (root / "labels" / f"img{i:03d}.txt").write_text("\n".join(lines))  # no trailing newline
    return root


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("plant")
    return make_yolo(base / "train", 16, 1), make_yolo(base / "valid", 6, 2)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train_tiny(tiny: tuple[Path, Path], out: Path, seed: int = 0) -> object:
    pytest.importorskip("torch")
    from analyzers.training.train import train_classifier

    train, valid = tiny
    cmap = {"Fire Extinguisher": "extinguisher"}
    return train_classifier(
        "extinguisher",
        [Source(str(train), cmap)],
        out,
        epochs=2,
        seed=seed,
        valid_source=[Source(str(valid), cmap)],
        subset=40,
        threads=1,
        batch_size=16,
        progress=False,
    )


def test_crops_are_cut_like_the_runtime(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    spec = TASKS["extinguisher"]
    data = build_set(spec, (Source(str(tiny[0]), {"Fire Extinguisher": "extinguisher"}),), None, tmp_path)
    counts = data.counts()
    assert counts["extinguisher"] == 24 and counts["background"] > 0  # 16 images, 1 or 2 each
    assert data.images.shape[1:] == (64, 64, 3) and data.images.dtype == np.uint8
    assert len(set(data.groups)) <= 16
    # second call reads the cache and gives the same samples
    again = build_set(spec, (Source(str(tiny[0]), {"Fire Extinguisher": "extinguisher"}),), None, tmp_path)
    assert np.array_equal(again.images, data.images) and again.image_ids == data.image_ids
    assert list(tmp_path.glob("*.npz"))


def test_train_export_load_predict(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    result = train_tiny(tiny, tmp_path)
    card = read_card(result.card_path, result.model_dir)  # type: ignore[attr-defined]
    assert card.family == "classifier" and card.classes == ["extinguisher", "background"]
    assert card.sha256 == sha(result.model_dir / card.file)  # type: ignore[attr-defined]
    assert "Attribution" in result.card_path.read_text()  # type: ignore[attr-defined]
    clf = ImageClassifier(card, result.model_dir)  # type: ignore[attr-defined]
    crops = [
        np.full((50, 30, 3), 128, np.uint8),
        np.zeros((0, 0, 3), np.uint8),
        np.full((90, 70, 3), 9, np.uint8),
    ]
    probs = clf.classify(crops)
    assert probs.shape == (3, 2)
    assert np.allclose(probs[[0, 2]].sum(1), 1.0, atol=1e-4) and not probs[1].any()
    batch = clf.classify([crops[0]] * 5)  # dynamic batch
    assert batch.shape == (5, 2)
    assert set(result.valid) == {"object", "image"}  # type: ignore[attr-defined]
    assert (result.model_dir / "metrics.json").is_file()  # type: ignore[attr-defined]


def test_same_seed_same_weights(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    a = train_tiny(tiny, tmp_path / "a", seed=3)
    b = train_tiny(tiny, tmp_path / "b", seed=3)
    assert a.sha256 == b.sha256  # type: ignore[attr-defined]


def test_cli_trains_from_a_plant_folder(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from gateway.cli.train import main

    plant = tiny[0].parent  # holds train/ and valid/: the class "Fire Extinguisher" is found by name
    out = tmp_path / "out"
    argv = [
        "extinguisher",
        "--data",
        str(plant),
        "--epochs",
        "1",
        "--subset",
        "40",
        "--out",
        str(out),
        "--cache",
        str(tmp_path / "cache"),
        "--threads",
        "1",
        "--no-progress",
    ]
    assert main(argv) == 0
    assert (out / "extinguisher.yaml").is_file() and (out / "extinguisher" / "extinguisher.onnx").is_file()
    assert (
        main(
            [
                "extinguisher",
                "--evaluate",
                str(out / "extinguisher"),
                "--valid",
                str(plant / "valid"),
                "--cache",
                str(tmp_path / "cache"),
            ]
        )
        == 0
    )


def test_cli_without_data_is_a_clear_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from gateway.cli.train import main

    assert main(["extinguisher", "--out", str(tmp_path)]) == 2
    assert "--data" in capsys.readouterr().err
    assert main(["helmet", "--data", str(tmp_path / "missing"), "--out", str(tmp_path)]) == 2


@pytest.mark.parametrize("seed", range(25))
def test_augmentation_keeps_boxes_valid(seed: int) -> None:
    rng = np.random.default_rng(seed)
    h, w = 80, 120
    image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    x1 = rng.uniform(0, w - 10, 6)
    y1 = rng.uniform(0, h - 10, 6)
    boxes = np.stack([x1, y1, x1 + rng.uniform(4, 40, 6), y1 + rng.uniform(4, 30, 6)], 1).clip(
        0, [w, h, w, h]
    )
    strong = AugmentConfig(degrees=30, translate=0.3, scale=(0.5, 1.5), shear=15, low_light=0.5)
    out, kept, index = augment(image, boxes, rng, strong)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert len(kept) == len(index) <= len(boxes)
    assert (
        np.all(kept[:, 0] >= 0)
        and np.all(kept[:, 2] <= w)
        and np.all(kept[:, 1] >= 0)
        and np.all(kept[:, 3] <= h)
    )
    assert np.all(kept[:, 2] > kept[:, 0]) and np.all(kept[:, 3] > kept[:, 1])


def test_flip_and_identity_move_boxes_exactly() -> None:
    box = np.array([[10.0, 20.0, 30.0, 50.0]])
    identity = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    assert np.allclose(transform_boxes(box, identity, 100, 100)[0], box)
    flip = np.array([[-1.0, 0, 100], [0, 1.0, 0]])
    assert np.allclose(transform_boxes(box, flip, 100, 100)[0], [[70, 20, 90, 50]])
    gone = np.array([[1.0, 0, 500], [0, 1.0, 0]])  # moved out of the image: dropped
    assert len(transform_boxes(box, gone, 100, 100)[0]) == 0


def test_helmet_colour_names() -> None:
    def patch(bgr: tuple[int, int, int]) -> np.ndarray:
        return np.full((20, 20, 3), bgr, np.uint8)

    assert helmet_colour(patch((0, 0, 220))) == "red"
    assert helmet_colour(patch((0, 220, 230))) == "yellow"
    assert helmet_colour(patch((220, 60, 0))) == "blue"
    assert helmet_colour(patch((245, 245, 245))) == "white"
    assert helmet_colour(patch((0, 140, 255))) == "other"  # orange
    assert helmet_colour(np.zeros((0, 0, 3), np.uint8)) is None


def test_head_region_of_a_person() -> None:
    head = part_box((100, 100, 140, 220), "head")
    assert 100 <= head[0] < head[2] <= 140 and head[1] == 100 and head[3] <= 130


@pytest.mark.parametrize("scene_key", sorted(SHIPPED))
def test_shipped_cards_load_and_match_their_scenes(scene_key: str) -> None:
    name = SHIPPED[scene_key]
    card_path = CARDS / f"{name}.yaml"
    if not card_path.is_file():
        pytest.skip(f"{name} not trained in this tree")
    model_dir = CARDS / name
    card = read_card(card_path, model_dir)
    onnx = model_dir / card.file
    assert card.family == "classifier" and card.sha256 == sha(onnx)
    assert onnx.stat().st_size < 5 * 1024 * 1024
    # helmet and smoking default to the project's detectors, work clothes to the plant's enrolment on
    # the people yolox_nano finds; their cards run where a camera names them
    default = {"helmet": "ppe", "smoking": "cigarette", "workwear": "yolox_nano"}.get(scene_key, name)
    assert build_scene("cam", SceneConfig(scene=scene_key)).model_name == default
    scene = build_scene("cam", SceneConfig(scene=scene_key, model=name))
    assert scene.wanted_labels() & set(card.classes)
    clf = ImageClassifier(card, model_dir)
    image = np.full((240, 320, 3), 100, np.uint8)
    people = [Detection((100.0, 40.0, 160.0, 220.0), 0.9, 0, "person")]
    dets = classify_people(clf, image, people, scene.classifier_crop)  # type: ignore[attr-defined]
    assert all(d.label in card.classes and 0 <= d.score <= 1 for d in dets)


def test_helmet_scene_alarms_on_a_valid_image_without_helmet() -> None:
    """With the data (VIGIL_DATA_DIR): a head without a helmet from the valid split, classified by the
    shipped helmet card, raises the helmet scene's alarm."""
    import os

    from analyzers.crops import classify_regions
    from analyzers.evaluation import load_yolo_dataset

    root = os.environ.get("VIGIL_DATA_DIR")
    split = Path(root) / "construction_site_safety" / "valid" if root else None
    if split is None or not split.is_dir() or not (CARDS / "helmet.yaml").is_file():
        pytest.skip("needs VIGIL_DATA_DIR with construction_site_safety and the trained helmet card")
    data = load_yolo_dataset(split)
    no_hat = data.names.index("NO-Hardhat")
    item = next(i for i in data.images if any(b.class_id == no_hat for b in i.labels))
    image = cv2.imread(str(item.image))
    h, w = image.shape[:2]
    heads = [b.to_pixels(w, h) for b in item.labels if b.class_id == no_hat]
    clf = ImageClassifier(read_card(CARDS / "helmet.yaml", CARDS / "helmet"), CARDS / "helmet")
    scene = build_scene("cam", SceneConfig(scene="helmet"))
    events = []
    for i in range(12):
        dets = classify_regions(clf, image, heads, expand=1.5)
        events += scene.update(1_700_000_000.0 + i, dets, w, h, image=image)
    assert any("without a safety helmet" in e.message for e in events)


def test_grid_patches_cover_the_frame() -> None:
    from analyzers.crops import grid_boxes

    boxes = grid_boxes(608, 400)
    assert len(boxes) == 9
    assert min(b[0] for b in boxes) == 0 and min(b[1] for b in boxes) == 0
    assert max(b[2] for b in boxes) == pytest.approx(608) and max(b[3] for b in boxes) == pytest.approx(400)


def test_scan_windows_cover_the_frame_and_merge_into_objects() -> None:
    from analyzers.crops import merge_boxes, region_boxes

    windows = region_boxes("scan", 320, 240)
    assert all(0 <= b[0] < b[2] <= 320 and 0 <= b[1] < b[3] <= 240 for b in windows)
    assert {round((b[2] - b[0]) / (b[3] - b[1]), 2) for b in windows} == {0.5}  # upright, like the objects
    # three windows on one object (one inside another, one shifted) and one on a second object
    hits = [
        Detection((60.0, 120.0, 84.0, 168.0), 0.9, 0, "extinguisher"),
        Detection((64.0, 130.0, 79.0, 160.0), 0.97, 0, "extinguisher"),
        Detection((70.0, 110.0, 94.0, 158.0), 0.8, 0, "extinguisher"),
        Detection((220.0, 100.0, 244.0, 148.0), 0.7, 0, "extinguisher"),
    ]
    merged = merge_boxes(hits)
    assert [d.score for d in merged] == [0.97, 0.7]


class FixedPeople:
    """A person 'detector' that reports the same boxes in every image: the labelling rules of the
    detector crops are checked exactly, independent of what a real model finds."""

    def __init__(self, boxes: list[tuple[float, float, float, float]]) -> None:
        from types import SimpleNamespace

        self.card = SimpleNamespace(name="fixed", classes=["person"], sha256="fixed")
        self.boxes = boxes
        self.calls = 0

    def detect(
        self, images: object, conf: float = 0.3, nms_iou: float = 0.45, classes: set[int] | None = None
    ) -> list[list[Detection]]:
        self.calls += 1
        return [[Detection(b, 0.9, 0, "person") for b in self.boxes]]


def make_heads(root: Path, n: int) -> Path:
    """Two people per image: the left one's head labelled NO-Hardhat, the right one's holding a
    Hardhat and a NO-Hardhat box (ambiguous), plus a person whose head has no label."""
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "data.yaml").write_text(yaml.safe_dump({"names": ["Hardhat", "NO-Hardhat"], "nc": 2}))
    rng = np.random.default_rng(3)
    for i in range(n):
        cv2.imwrite(str(root / "images" / f"p{i}.jpg"), rng.integers(0, 255, (200, 300, 3), dtype=np.uint8))
        # person 1 box (20, 20)-(80, 180): head square (35, 20)-(65, 50); label (40, 22)-(60, 46)
        # person 2 box (120, 20)-(180, 180): head (135, 20)-(165, 50) holds both labels below
        lines = ["1 0.1667 0.17 0.0667 0.12", "0 0.4833 0.16 0.0333 0.08", "1 0.5167 0.18 0.0333 0.08"]
        (root / "labels" / f"p{i}.txt").write_text("\n".join(lines))
    return root


def test_detector_crops_are_labelled_by_the_box_they_hold(tmp_path: Path) -> None:
    import dataclasses

    from analyzers.training.people import PeopleFinder, holds, match

    root = make_heads(tmp_path / "heads", 3)
    people = FixedPeople([(20, 20, 80, 180), (120, 20, 180, 180), (220, 20, 280, 180)])
    finder = PeopleFinder(people, tmp_path / "cache")  # type: ignore[arg-type]
    spec = dataclasses.replace(TASKS["helmet"], crops="detector")
    src = (Source(str(root), {"Hardhat": "helmet", "NO-Hardhat": "no_helmet"}),)
    data = build_set(spec, src, None, tmp_path / "crops", people=finder)
    # one crop per image: the ambiguous head and the unlabelled one are skipped
    assert len(data) == 3 and data.counts() == {"helmet": 0, "no_helmet": 3}
    assert people.calls == 3
    # the person boxes are cached: a new finder over the same cache runs no detector
    again = FixedPeople([])
    spec_both = dataclasses.replace(spec, crops="both", jitter=2)
    both = build_set(
        spec_both, src, None, tmp_path / "crops2", people=PeopleFinder(again, tmp_path / "cache")
    )  # type: ignore[arg-type]
    assert again.calls == 0
    # both: 3 labelled boxes x (1 + 2 jittered) per image, plus the detector crops
    assert len(both) == 3 * 3 * 3 + 3
    with pytest.raises(ValueError, match="person detector"):
        build_set(spec, src, None, None)
    # matching: a loose head box holds a tight label; one-to-one, best first
    assert holds((35, 20, 65, 50), (40, 22, 60, 46)) and not holds((35, 20, 65, 50), (60, 40, 90, 70))
    assert match([(0, 0, 10, 10), (1, 0, 11, 10)], [(1, 0, 11, 10)]) == [(1, 0)]


def test_cli_crops_option_needs_a_person_part(
    tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.cli.train import main

    code = main(["fire", "--crops", "detector", "--data", str(tiny[0]), "--out", str(tmp_path / "o")])
    assert code == 2 and "person's part" in capsys.readouterr().err
