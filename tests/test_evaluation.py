"""`vigil eval`: YOLO label reading, greedy matching, metric rules, the command end to end and its errors."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import yaml
from sqlalchemy import select

from analyzers.detectors.yolox import YoloxDetector
from analyzers.evaluation import (
    ClassMetrics,
    EvalError,
    Evaluator,
    Truth,
    evaluate,
    iou,
    load_yolo_dataset,
    parse_class_map,
    plan_classes,
)
from analyzers.records import Detection
from analyzers.runtime import read_card
from gateway.cli import main
from gateway.config.schema import load_config
from gateway.db import Database
from gateway.db.schema import ModelVersion
from tests.conftest import ROOT, write_config

DATA_DIR = Path(os.environ.get("VIGIL_DATA_DIR", ROOT.parent / "shared" / "data"))
VTEST_FRAMES = (0, 200, 400)  # no person score near the 0.3 threshold in these (checked below)


def pred(label: str, box: tuple[float, float, float, float], score: float) -> Detection:
    return Detection(box, score, 0, label)


def write_dataset(
    root: Path, names: list[str], images: dict[str, np.ndarray], labels: dict[str, str]
) -> Path:
    """A YOLO split at root/valid with data.yaml in root, as Roboflow exports it."""
    split = root / "valid"
    (split / "images").mkdir(parents=True)
    (split / "labels").mkdir()
    (root / "data.yaml").write_text(yaml.safe_dump({"names": names, "nc": len(names)}), encoding="utf-8")
    for name, image in images.items():
        assert cv2.imwrite(str(split / "images" / f"{name}.png"), image)
    for name, text in labels.items():
        (split / "labels" / f"{name}.txt").write_text(text, encoding="utf-8")
    return split


def as_dict(metrics: dict[str, ClassMetrics]) -> dict[str, dict[str, float]]:
    return {k: m.as_dict() for k, m in metrics.items()}


# --- metrics on a hand-made label set -----------------------------------------------------------

NAMES = ["person", "helmet", "vest", "boot", "glove"]
BLANK = np.zeros((100, 200, 3), np.uint8)  # 200 wide, 100 high: label x * 200, y * 100


def test_hand_made_set_gives_the_numbers_worked_out_by_hand(tmp_path: Path) -> None:
    split = write_dataset(
        tmp_path,
        NAMES,
        {k: BLANK for k in "abcd"},
        {
            # person A (10,10,50,90), person B (100,10,140,90), helmet (20,0,40,20), boot (170,85,190,95);
            # no trailing newline
            "a": "0 0.15 0.5 0.2 0.8\n0 0.6 0.5 0.2 0.8\n1 0.15 0.1 0.1 0.2\n3 0.9 0.9 0.1 0.1",
            "b": "0 0.15 0.5 0.2 0.8\n\n1 0.15 0.1 0.1 0.2\n",  # blank line, trailing newline
            # c has no label file: no objects
            "d": "",
        },
    )
    data = load_yolo_dataset(split)
    assert data.names == NAMES and [p.stem for p in (i.image for i in data.images)] == list("abcd")
    assert data.object_counts == {"person": 3, "helmet": 2, "vest": 0, "boot": 1, "glove": 0}
    truths = {i.image.stem: i.truths(data.names, 200, 100) for i in data.images}
    assert truths["a"][1].box == pytest.approx((100, 10, 140, 90))
    assert truths["c"] == [] and truths["d"] == []

    b_short = (100.0, 10.0, 140.0, 49.0)  # 1560 of B's 3200 px: IoU 0.4875, just below 0.5
    assert iou(b_short, truths["a"][1].box) == pytest.approx(0.4875)
    predictions = {
        "a": [
            pred("person", (11, 10, 51, 90), 0.8),  # second box on A (listed first): FP
            pred("person", (10, 10, 50, 90), 0.9),  # A: TP
            pred("person", b_short, 0.7),  # B at IoU 0.4875: FP, and B is missed (FN)
        ],  # helmet and boot missed
        "b": [
            pred("person", (10, 10, 50, 70), 0.7),  # IoU 0.75: TP
            pred("helmet", (20, 0, 40, 20), 0.6),  # TP
            pred("helmet", (150, 50, 170, 70), 0.5),  # FP
        ],
        "c": [pred("person", (0, 0, 20, 20), 0.4), pred("vest", (50, 50, 60, 60), 0.5)],  # FPs, no labels
        "d": [],
    }
    result = as_dict(evaluate([(truths[k], predictions[k]) for k in "abcd"], NAMES))
    # person: TP 2, FP 3, FN 1; images: a, b found, c false alarm
    assert result["person"] == pytest.approx(
        {
            "precision": 0.4,
            "recall": 0.6667,
            "f1": 0.5,
            "image_precision": 0.6667,
            "image_recall": 1.0,
            "image_f1": 0.8,
            "support": 3,
        }
    )
    # helmet: TP 1, FP 1, FN 1; images: b found, a missed
    assert result["helmet"] == pytest.approx(
        {
            "precision": 0.5,
            "recall": 0.5,
            "f1": 0.5,
            "image_precision": 1.0,
            "image_recall": 0.5,
            "image_f1": 0.6667,
            "support": 2,
        }
    )
    zeros = dict.fromkeys(("precision", "recall", "f1", "image_precision", "image_recall", "image_f1"), 0.0)
    # vest: predicted but never labelled -> recall 0/0 counts as 0.0 because the model claimed it
    assert result["vest"] == {**zeros, "support": 0}
    # boot: labelled but never predicted -> precision 0/0 counts as 0.0 because there was one to find
    assert result["boot"] == {**zeros, "support": 1}
    # glove: neither labelled nor predicted -> nothing to find, nothing claimed: 1.0 throughout
    assert result["glove"] == {**dict.fromkeys(zeros, 1.0), "support": 0}


def test_matching_is_greedy_by_score_and_iou_threshold_is_inclusive() -> None:
    g1, g2 = (0.0, 0.0, 10.0, 10.0), (5.0, 0.0, 15.0, 10.0)
    high = pred("person", (3, 0, 13, 10), 0.9)  # IoU 0.54 with g1, 0.67 with g2: takes g2
    low = pred("person", g2, 0.8)  # would fit g2 exactly, but g2 is taken and g1 is at IoU 0.33
    ev = Evaluator(["person"])
    ev.add([Truth("person", g1), Truth("person", g2)], [low, high])
    c = ev.counts["person"]
    assert (c.tp, c.fp, c.fn) == (1, 1, 1)

    half = pred("person", (0, 0, 10, 5), 0.5)  # IoU exactly 0.5 with g1
    strict = Evaluator(["person"], iou_threshold=0.5)
    strict.add([Truth("person", g1)], [half])
    assert strict.metrics()["person"].precision == 1.0
    # class-aware: a helmet box on a person matches nothing; classes not evaluated are ignored
    ev = Evaluator(["person", "helmet"])
    ev.add([Truth("person", g1), Truth("dog", g2)], [pred("helmet", g1, 0.9), pred("dog", g2, 0.9)])
    assert (ev.counts["person"].fn, ev.counts["helmet"].fp, ev.counts["helmet"].tp) == (1, 1, 0)


def test_class_plan_maps_and_keeps_same_named_classes() -> None:
    assert parse_class_map("person=person, head=no_helmet") == {"person": "person", "head": "no_helmet"}
    plan = plan_classes(
        ["head", "helmet", "person"], ["person", "helmet", "no_helmet"], {"head": "no_helmet"}
    )
    assert plan.pairs == {"head": "no_helmet", "helmet": "helmet", "person": "person"}
    plan = plan_classes(["Person", "person"], ["person"], {"Person": "person"})
    assert plan.pairs == {"Person": "person"} and plan.skipped == ["person"]  # person is taken by Person
    for bad in ("person", "=person", "a=b,a=c"):
        with pytest.raises(EvalError, match="--map"):
            parse_class_map(bad)
    with pytest.raises(EvalError, match="mapped from"):
        plan_classes(["a", "b"], ["person"], {"a": "person", "b": "person"})


# --- the command end to end ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def vtest_people(models_dir: Path, vtest: Path) -> list[tuple[np.ndarray, list[Detection]]]:
    """Three vtest.avi frames and the people the detector finds in them at conf 0.3."""
    frames = []
    with av.open(str(vtest)) as container:
        for i, f in enumerate(container.decode(video=0)):
            if i in VTEST_FRAMES:
                frames.append(f.to_ndarray(format="bgr24"))
            if i == max(VTEST_FRAMES):
                break
    card = read_card(ROOT / "config" / "models" / "yolox_nano.yaml", models_dir / "yolox_nano")
    found = YoloxDetector(card, models_dir / "yolox_nano", threads=1).detect(frames, conf=0.1, classes={0})
    # Labels copied from the detector give 1.0 only if no score is close enough to 0.3 to flip
    # between runs (thread counts change float sums slightly).
    assert not [d.score for ds in found for d in ds if 0.2 < d.score < 0.4]
    return [(f, [d for d in ds if d.score >= 0.3]) for f, ds in zip(frames, found, strict=True)]


def yolo_line(box: tuple[float, float, float, float], width: int, height: int) -> str:
    x1, y1, x2, y2 = max(box[0], 0), max(box[1], 0), min(box[2], width), min(box[3], height)
    cx, cy, w, h = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height
    return f"0 {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}"


def people_dataset(
    root: Path, frames: list[tuple[np.ndarray, list[Detection]]], extra: dict[int, str]
) -> Path:
    labels = {}
    for n, (image, people) in enumerate(frames):
        h, w = image.shape[:2]
        lines = [yolo_line(d.box, w, h) for d in people]
        labels[f"f{n}"] = "\n".join([*lines, extra[n]] if n in extra else lines)
    return write_dataset(root, ["person", "helmet"], {f"f{n}": f for n, (f, _) in enumerate(frames)}, labels)


def run_json(
    capsys: pytest.CaptureFixture[str], *args: str, config: Path | None = None
) -> dict[str, dict[str, float]]:
    assert main([*(["--config", str(config)] if config else []), "eval", *args, "--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # the JSON document and nothing else on stdout
    result: dict[str, dict[str, float]] = json.loads(out)["classes"]
    return result


PERFECT = {
    "precision": 1.0,
    "recall": 1.0,
    "f1": 1.0,
    "image_precision": 1.0,
    "image_recall": 1.0,
    "image_f1": 1.0,
}


def test_eval_on_frames_labelled_with_what_the_detector_finds(
    tmp_path: Path,
    models_dir: Path,
    vtest_people: list[tuple[np.ndarray, list[Detection]]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    found = sum(len(p) for _, p in vtest_people)
    model = str(models_dir / "yolox_nano")
    exact = people_dataset(tmp_path / "exact", vtest_people, {})
    # helmet is not a COCO class: it is left out of the report (and said so on stderr)
    assert run_json(capsys, "--model", model, "--data", str(exact)) == {
        "person": {**PERFECT, "support": found}
    }

    # A made-up person on empty ground of the third frame (nothing detected near it) that the model
    # cannot find, and the first frame's most confident person left unlabelled: that detection is a FP.
    image, people = vtest_people[2]
    ghost = (400.0, 420.0, 440.0, 520.0)
    assert all(iou(ghost, d.box) == 0 for d in people)
    dropped = max(vtest_people[0][1], key=lambda d: d.score)
    frames = [(vtest_people[0][0], [d for d in vtest_people[0][1] if d is not dropped]), *vtest_people[1:]]
    flawed = people_dataset(
        tmp_path / "flawed", frames, {2: yolo_line(ghost, image.shape[1], image.shape[0])}
    )
    person = run_json(capsys, "--model", model, "--data", str(flawed), "--map", "person=person")["person"]
    ratio = round((found - 1) / found, 4)  # TP found-1, FP 1, FN 1
    assert person == {**PERFECT, "precision": ratio, "recall": ratio, "f1": ratio, "support": found}

    # the readable table
    assert main(["eval", "--model", model, "--data", str(flawed)]) == 0
    out = capsys.readouterr().out
    assert "person" in out and f"{ratio:.4f}" in out and "not evaluated" in out and "helmet" in out


def test_eval_finds_imported_models_and_scene_models(
    tmp_path: Path,
    models_dir: Path,
    vtest_people: list[tuple[np.ndarray, list[Detection]]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = write_config(tmp_path)
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "yolox_nano").symlink_to(models_dir / "yolox_nano")
    assert main(["--config", str(config), "db", "upgrade"]) == 0
    cards = str(ROOT / "config" / "models")
    assert main(["--config", str(config), "models", "import", str(pack), "--cards", cards]) == 0
    with Database(load_config(config, environ={}).database.url).session() as s:
        version_id = s.scalar(select(ModelVersion.id))
    assert version_id
    capsys.readouterr()
    data = str(people_dataset(tmp_path / "data", vtest_people, {}))
    expected = {"person": {**PERFECT, "support": sum(len(p) for _, p in vtest_people)}}
    for which in (["--model", "yolox_nano"], ["--model", version_id], ["--scene", "crowd"]):
        assert run_json(capsys, *which, "--data", data, config=config) == expected, which


# --- bad input ----------------------------------------------------------------------------------


def test_bad_input_exits_2_and_says_why(
    tmp_path: Path, models_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = str(models_dir / "yolox_nano")
    good = write_dataset(tmp_path / "good", ["person", "head"], {"a": BLANK}, {"a": "0 0.5 0.5 0.2 0.4"})

    def fails(*args: str, data: Path | str = good, config: Path | None = None) -> str:
        assert main([*(["--config", str(config)] if config else []), "eval", *args, "--data", str(data)]) == 2
        streams = capsys.readouterr()
        assert streams.out == ""
        return streams.err

    assert "not found" in fails("--model", model, data=tmp_path / "missing")
    no_yaml = tmp_path / "no_yaml"
    (no_yaml / "images").mkdir(parents=True)
    (no_yaml / "labels").mkdir()
    assert "no data.yaml" in fails("--model", model, data=no_yaml)
    assert "pass one of its splits: valid" in fails("--model", model, data=tmp_path / "good")

    for text, why in (
        ("0 0.5 0.5 0.2 0.4\n0 0.5 0.5 0.2", "expected 5 values"),
        ("0 0.5 0.5 0.2 0.4\n0 0.5 0.5 0.2 0.4 0.1 0.9", "polygon"),
        ("0 0.5 0.5 0.2 0.4\nperson 0.5 0.5 0.2 0.4", "not a class index"),
        ("0 0.5 0.5 0.2 0.4\n7 0.5 0.5 0.2 0.4", "class 7 is out of range"),
        ("0 0.5 0.5 0.2 0.4\n0 320 240 64 48", "normalised"),
        ("0 0.5 0.5 0.2 0.4\n0 0.5 0.5 0 0.4", "no area"),
    ):
        bad = write_dataset(
            tmp_path / f"bad{len(list(tmp_path.iterdir()))}", ["person"], {"a": BLANK}, {"a": text}
        )
        err = fails("--model", model, data=bad)
        assert f"{bad / 'labels' / 'a.txt'}, line 2" in err and why in err, err

    assert "'hardhat' is not a dataset class" in fails("--model", model, "--map", "hardhat=person")
    assert "'no_helmet' is not a class" in fails("--model", model, "--map", "head=no_helmet")
    assert "not DATASET_CLASS=MODEL_CLASS" in fails("--model", model, "--map", "head")
    heads = write_dataset(tmp_path / "h", ["head"], {"a": BLANK}, {})
    assert "no dataset class" in fails("--model", model, data=heads)
    assert "unknown scene" in fails("--scene", "juggling")
    # No database here: the scene's model comes from the config's model pack, with the config's cards.
    config = write_config(tmp_path, models={"pack_dir": str(models_dir)})
    shutil.copytree(ROOT / "config" / "models", tmp_path / "models")
    # the crowd scene judges person only: a COCO class it does not use cannot be mapped to
    err = fails("--scene", "crowd", "--map", "head=car", config=config)
    assert "'car' is not a class" in err and "no database at" in err
    cardless = tmp_path / "cardless"
    cardless.mkdir()
    assert "no model card" in fails("--model", str(cardless))
    classifier = tmp_path / "classifier"
    classifier.mkdir()
    card = yaml.safe_load((ROOT / "config" / "models" / "yolox_nano.yaml").read_text(encoding="utf-8"))
    (classifier / card["file"]).symlink_to(models_dir / "yolox_nano" / card["file"])
    card.update(family="classifier", classes=["person"], classes_file=None)
    (classifier / "model.yaml").write_text(yaml.safe_dump(card), encoding="utf-8")
    # eval scores classifier cards too, so a detector's weights under a classifier card fail on shape
    assert "the card lists 1 classes (expected [?,1])" in fails("--model", str(classifier))
    assert "--iou" in fails("--model", model, "--iou", "0")


# --- a classifier scene end to end --------------------------------------------------------------


def test_eval_end_to_end_scores_the_helmet_card_through_the_person_detector(
    tmp_path: Path, models_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`vigil eval --end-to-end`: person detector -> head part -> classifier on a tiny labelled split;
    the counts add up to the labels, and a detector card is refused with exit status 2."""
    split = DATA_DIR / "construction_site_safety" / "valid"
    card = ROOT / "config" / "models" / "helmet"
    if not split.is_dir() or not (card / "helmet.onnx").is_file():
        pytest.skip("needs VIGIL_DATA_DIR with construction_site_safety and the trained helmet card")
    tiny = tmp_path / "tiny"
    (tiny / "images").mkdir(parents=True)
    (tiny / "labels").mkdir()
    shutil.copy(split.parent / "data.yaml", tiny / "data.yaml")
    chosen = sorted(split.glob("labels/*.txt"))[:6]
    for label in chosen:
        shutil.copy(label, tiny / "labels" / label.name)
        shutil.copy(next((split / "images").glob(label.stem + ".*")), tiny / "images")
    monkeypatch.setenv("VIGIL_TRAIN_CACHE", str(tmp_path / "cache"))
    config = ROOT / "config" / "demo.yaml"
    people = str(models_dir / "yolox_nano")
    args = ["--config", str(config), "eval", "--model", str(card), "--data", str(tiny), "--end-to-end"]
    assert main([*args, "--people-model", people, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    names = yaml.safe_load((tiny / "data.yaml").read_text())["names"]
    lines = [ln.split() for p in chosen for ln in p.read_text().splitlines() if ln.strip()]
    heads = {"helmet": "Hardhat", "no_helmet": "NO-Hardhat"}
    for cls, raw in heads.items():
        row = result["levels"]["object"][cls]
        assert row["support"] == sum(names[int(ln[0])] == raw for ln in lines)
        assert row["tp"] + row["fn"] == row["support"] and 0.0 <= row["f1"] <= 1.0
        frames = sum(
            any(names[int(ln.split()[0])] == raw for ln in p.read_text().splitlines()) for p in chosen
        )
        assert result["levels"]["image"][cls]["support"] == frames
    assert list((tmp_path / "cache" / "people").glob("people-*.json"))  # person boxes cached
    # the same run again reads the cached boxes and gives the same numbers
    assert main([*args, "--people-model", people, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == result
    # a detector is no classifier of people's parts
    assert main(["eval", "--model", people, "--data", str(tiny), "--end-to-end"]) == 2
    assert "--end-to-end" in capsys.readouterr().err
