"""The sample library: YOLO <-> COCO round trips, corrupt files reported and skipped, re-imports that add
nothing, stable 8:2 splits, label editing, alarms to samples (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from sqlalchemy import func, select

from gateway.db import Database, upgrade
from gateway.db.files import EvidenceStore
from gateway.db.schema import Alarm, Camera, Dataset, DatasetSample, Evidence, Sample
from gateway.ids import new_ulid
from gateway.samples.library import Conflict, SampleError, SampleLibrary, split_side
from tests.conftest import ROOT, fresh_database

NAMES = ["head", "helmet", "person"]
HARD_HAT = ROOT.parent / "shared" / "data" / "hard_hat_sample"


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    database = fresh_database(request, tmp_path)
    upgrade(database.engine)
    yield database
    database.dispose()


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'v.db'}")
    upgrade(database.engine)
    yield database
    database.dispose()


def picture(seed: int, size: tuple[int, int] = (48, 64)) -> bytes:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)
    image = cv2.resize(coarse, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    ok, buf = cv2.imencode(".png", image)  # lossless: the same seed gives the same bytes
    assert ok
    return buf.tobytes()


def yolo_folder(root: Path, seeds: range, *, names: list[str] = NAMES) -> Path:
    """A YOLO split: image i has (i % 3) + 1 boxes; no trailing newline in the label files."""
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for seed in seeds:
        (root / "images" / f"img{seed:03d}.png").write_bytes(picture(seed))
        lines = []
        for k in range(seed % 3 + 1):
            cx, cy = 0.2 + 0.2 * k, 0.3 + 0.1 * k
            lines.append(f"{(seed + k) % len(names)} {cx:.6f} {cy:.6f} 0.150000 0.250000")
        (root / "labels" / f"img{seed:03d}.txt").write_text("\n".join(lines), encoding="utf-8")
    (root / "data.yaml").write_text(yaml.safe_dump({"names": names, "nc": len(names)}), encoding="utf-8")
    return root


def labels_by_sha(db: Database) -> dict[str, list[tuple[str, tuple[float, ...]]]]:
    with db.session() as s:
        return {
            row.sha256: sorted((lab["label"], tuple(lab["box"])) for lab in row.labels)
            for row in s.scalars(select(Sample))
        }


def close(
    a: dict[str, list[tuple[str, tuple[float, ...]]]], b: dict[str, list[tuple[str, tuple[float, ...]]]]
) -> bool:
    if a.keys() != b.keys():
        return False
    for key in a:
        if len(a[key]) != len(b[key]):
            return False
        for (la, ba), (lb, bb) in zip(a[key], b[key], strict=True):
            if la != lb or any(abs(x - y) > 1e-5 for x, y in zip(ba, bb, strict=True)):
                return False
    return True


def count(db: Database, model: type) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


# --- import and export --------------------------------------------------------------------------


def test_yolo_coco_round_trip(db: Database, tmp_path: Path) -> None:
    lib = SampleLibrary(db, tmp_path / "storage")
    report = lib.import_yolo(yolo_folder(tmp_path / "in", range(12)), "hats", scene="helmet")
    assert (report.added, report.skipped) == (12, [])
    original = labels_by_sha(db)
    assert sum(len(v) for v in original.values()) == sum(i % 3 + 1 for i in range(12))
    task = lib.get_task("hats")
    assert task["labels"] == NAMES and task["scene"] == "helmet"

    # YOLO out -> a fresh library -> COCO out -> another fresh library: the same images and boxes.
    lib.export("yolo", tmp_path / "yolo_out", task="hats")
    yolo_txt = (tmp_path / "yolo_out" / "labels" / "img001.txt").read_text(encoding="utf-8")
    assert yolo_txt.splitlines()[0].split()[0] == "1"
    db2 = Database(f"sqlite:///{tmp_path / 'second.db'}")
    upgrade(db2.engine)
    lib2 = SampleLibrary(db2, tmp_path / "storage2")
    assert lib2.import_yolo(tmp_path / "yolo_out", "hats").added == 12
    assert close(labels_by_sha(db2), original)
    lib2.export("coco", tmp_path / "coco_out", task="hats")
    doc = json.loads((tmp_path / "coco_out" / "annotations.json").read_text(encoding="utf-8"))
    assert [c["name"] for c in doc["categories"]] == NAMES
    assert len(doc["annotations"]) == sum(len(v) for v in original.values())
    db3 = Database(f"sqlite:///{tmp_path / 'third.db'}")
    upgrade(db3.engine)
    lib3 = SampleLibrary(db3, tmp_path / "storage3")
    assert lib3.import_coco(tmp_path / "coco_out", "hats").added == 12
    assert close(labels_by_sha(db3), original)
    # And COCO back to YOLO: the label lines match the first export up to rounding.
    lib3.export("yolo", tmp_path / "yolo_again", task="hats")
    for first in sorted((tmp_path / "yolo_out" / "labels").iterdir()):
        again = (tmp_path / "yolo_again" / "labels" / first.name).read_text(encoding="utf-8").split()
        values = first.read_text(encoding="utf-8").split()
        assert len(again) == len(values)
        assert all(abs(float(x) - float(y)) < 1e-5 for x, y in zip(values, again, strict=True))
    for extra in (db2, db3):
        extra.dispose()


def test_corrupt_files_are_reported_by_name_and_skipped(db: Database, tmp_path: Path) -> None:
    folder = yolo_folder(tmp_path / "in", range(6))
    (folder / "images" / "img001.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")  # corrupt image
    (folder / "images" / "empty.jpg").write_bytes(b"")
    (folder / "labels" / "img002.txt").write_text("0 0.5 0.5 0.2", encoding="utf-8")  # 4 values
    (folder / "labels" / "img003.txt").write_text("7 0.5 0.5 0.2 0.2\n", encoding="utf-8")  # class 7
    (folder / "labels" / "img004.txt").write_bytes(b"\xff\xfe\x00garbage")  # not UTF-8
    lib = SampleLibrary(db, tmp_path / "storage")
    report = lib.import_yolo(folder, "hats")
    skipped = dict(report.skipped)
    assert set(skipped) == {
        "images/img001.png",
        "images/empty.jpg",
        "labels/img002.txt",
        "labels/img003.txt",
        "labels/img004.txt",
    }
    assert "not a readable image" in skipped["images/img001.png"]
    assert "expected 5 values" in skipped["labels/img002.txt"]
    assert "out of range" in skipped["labels/img003.txt"]
    assert report.added == 2 and count(db, Sample) == 2  # img000 and img005

    coco = tmp_path / "coco"
    coco.mkdir()
    (coco / "a.png").write_bytes(picture(50))
    (coco / "b.png").write_bytes(picture(51))
    (coco / "c.png").write_bytes(b"not an image")
    doc = {
        "images": [
            {"id": 1, "file_name": "a.png", "width": 64, "height": 48},
            {"id": 2, "file_name": "b.png", "width": 64, "height": 48},
            {"id": 3, "file_name": "c.png", "width": 64, "height": 48},
            {"id": 4, "file_name": "missing.png", "width": 64, "height": 48},
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 20]},
            {"id": 2, "image_id": 2, "category_id": 9, "bbox": [1, 2, 10, 20]},  # unknown category
        ],
        "categories": [{"id": 1, "name": "helmet"}],
    }
    (coco / "ann.json").write_text(json.dumps(doc), encoding="utf-8")
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    report = lib.import_coco(coco, "hats")
    skipped = dict(report.skipped)
    assert set(skipped) == {"b.png", "c.png", "missing.png"}
    assert report.added == 1
    bad = lib.import_coco(tmp_path / "bad.json", "hats")
    assert bad.skipped[0][0] == "bad.json" and "not a readable COCO JSON" in bad.skipped[0][1]


def test_reimport_adds_nothing_and_keeps_edits(db: Database, tmp_path: Path) -> None:
    folder = yolo_folder(tmp_path / "in", range(10))
    lib = SampleLibrary(db, tmp_path / "storage")
    lib.import_yolo(folder, "hats")
    samples, links = count(db, Sample), count(db, DatasetSample)
    files = sorted((tmp_path / "storage" / "samples").rglob("*.png"))
    before = labels_by_sha(db)
    # A person deletes a wrong box of one sample, then the same data set is imported again.
    edited = lib.list_samples(task="hats", limit=100)["items"][0]
    lib.delete_label(edited["id"], 0, "li.wei")
    after_edit = labels_by_sha(db)
    again = lib.import_yolo(folder, "hats")
    assert (again.added, again.merged, again.linked, again.unchanged) == (0, 0, 0, 10)
    assert count(db, Sample) == samples and count(db, DatasetSample) == links
    assert sorted((tmp_path / "storage" / "samples").rglob("*.png")) == files
    assert labels_by_sha(db) == after_edit != before  # the deleted box stays deleted

    # The same images with other labels (another data set): merged, nothing duplicated.
    other = yolo_folder(tmp_path / "other", range(10), names=["worker", "hardhat", "vest"])
    merged = lib.import_yolo(other, "hats")
    assert merged.added == 0 and merged.merged == 10 and count(db, Sample) == samples
    assert merged.new_labels == ["worker", "hardhat", "vest"]
    assert lib.get_task("hats")["labels"] == [*NAMES, "worker", "hardhat", "vest"]
    for sha, labels in labels_by_sha(db).items():
        assert len(labels) == 2 * len(before[sha]) - (
            1 if labels != before[sha] and sha == edited["sha256"] else 0
        )

    # The same images into a second task: linked, not copied.
    linked = lib.import_yolo(folder, "heads")
    assert linked.linked == 10 and linked.added == 0 and count(db, Sample) == samples


def test_real_yolo_split_imports_and_exports(sqlite_db: Database, tmp_path: Path) -> None:
    valid = HARD_HAT / "valid"
    if not valid.is_dir():
        pytest.fail(f"labelled data not found at {valid}")
    lib = SampleLibrary(sqlite_db, tmp_path / "storage")
    report = lib.import_yolo(valid, "hard_hat", scene="helmet")
    assert report.images == 20 and report.added + report.unchanged == 20 and not report.skipped
    out = lib.export("yolo", tmp_path / "out", task="hard_hat")
    assert out["images"] == report.added
    assert read_names_of(tmp_path / "out") == ["head", "helmet", "person"]


def read_names_of(folder: Path) -> list[str]:
    return list(yaml.safe_load((folder / "data.yaml").read_text(encoding="utf-8"))["names"])


# --- splits -------------------------------------------------------------------------------------


def test_split_is_stable_when_samples_are_added(db: Database, tmp_path: Path) -> None:
    lib = SampleLibrary(db, tmp_path / "storage")
    lib.import_yolo(yolo_folder(tmp_path / "a", range(0, 150)), "hats")
    first = lib.split("hats")
    assert first.created and first.train + first.test == 150
    assert 0.7 <= first.train / 150 <= 0.9
    assert lib.split("hats").train_id == first.train_id  # nothing changed: the same frozen sets
    lib.import_yolo(yolo_folder(tmp_path / "b", range(150, 400)), "hats")
    second = lib.split("hats")
    assert second.created and second.train_id != first.train_id
    assert second.train + second.test == 400
    assert 0.75 <= second.train / 400 <= 0.85

    def members(dataset_id: str) -> set[str]:
        with db.session() as s:
            return set(
                s.scalars(select(DatasetSample.sample_id).where(DatasetSample.dataset_id == dataset_id))
            )

    assert members(first.train_id) <= members(second.train_id)
    assert members(first.test_id) <= members(second.test_id)
    assert not members(second.train_id) & members(second.test_id)
    with db.session() as s:
        assert {
            d.purpose
            for d in s.scalars(select(Dataset).where(Dataset.id.in_([first.train_id, first.test_id])))
        } == {
            "train",
            "test",
        }
    # The side of an image is a function of the task and its bytes only.
    assert split_side("hats", "ab" * 32) == split_side("hats", "ab" * 32)
    # A sample in a frozen set is only marked removed: the old sets keep naming it.
    victim = next(iter(members(first.test_id)))
    assert lib.delete_sample(victim, "li.wei") == {"id": victim, "deleted": False, "removed": True}
    assert victim in members(first.test_id)
    third = lib.split("hats")
    assert victim not in members(third.test_id) and third.test == second.test - 1
    # Exporting a frozen set writes exactly its samples.
    assert lib.export("yolo", tmp_path / "test_set", dataset_id=first.test_id)["images"] == first.test


# --- labels and alarms --------------------------------------------------------------------------


def test_label_edit_add_delete(sqlite_db: Database, tmp_path: Path) -> None:
    lib = SampleLibrary(sqlite_db, tmp_path / "storage")
    lib.import_yolo(yolo_folder(tmp_path / "in", range(1)), "hats")
    sample = lib.list_samples(task="hats")["items"][0]
    assert len(sample["labels"]) == 1
    out = lib.add_label(sample["id"], {"label": "helmet", "box": [0.1, 0.1, 0.3, 0.4]}, "li.wei")
    assert out["labels"][-1] == {"label": "helmet", "box": [0.1, 0.1, 0.3, 0.4]}
    out = lib.update_label(sample["id"], 1, {"label": "head", "box": [0.1, 0.1, 0.3, 0.5]}, "li.wei")
    assert out["labels"][1]["label"] == "head" and out["tags"]["edited_by"] == "li.wei"
    out = lib.delete_label(sample["id"], 0, "li.wei")
    assert [lab["label"] for lab in out["labels"]] == ["head"]
    with pytest.raises(SampleError, match="no area"):
        lib.add_label(sample["id"], {"label": "x", "box": [0.5, 0.5, 0.4, 0.6]}, "li.wei")
    with pytest.raises(SampleError, match="0..1"):
        lib.set_labels(sample["id"], [{"label": "x", "box": [0, 0, 64, 48]}], "li.wei")
    assert lib.list_samples(label="head")["items"][0]["id"] == sample["id"]
    assert lib.list_samples(label="helmet")["items"] == []
    # A sample in no frozen set is deleted with its file.
    path, media = lib.image_path(sample["id"])
    assert path.is_file() and media == "image/png"
    assert lib.delete_sample(sample["id"], "li.wei")["deleted"] is True
    assert not path.exists()


def add_alarm(db: Database, root: Path, verdict: str | None, seed: int = 7) -> str:
    image = cv2.imdecode(np.frombuffer(picture(seed, (120, 160)), np.uint8), cv2.IMREAD_COLOR)
    ok, buf = cv2.imencode(".jpg", image)
    assert ok
    digest, rel, _ = EvidenceStore(root).put(buf.tobytes(), "jpg")
    alarm_id = new_ulid()
    now = dt.datetime.now(dt.UTC)
    with db.session() as s:
        if s.get(Camera, "cam1") is None:
            s.add(Camera(id="cam1", name="Cam 1", stream_url="rtsp://127.0.0.1:9/x"))
            s.flush()
        s.add(
            Alarm(
                id=alarm_id,
                camera_id="cam1",
                scene="helmet",
                event_key=f"cam1/helmet/{alarm_id}",
                status="confirmed" if verdict else "raised",
                details={"boxes": [{"label": "no_helmet", "score": 0.9, "box": [16.0, 12.0, 48.0, 60.0]}]},
                tags={"area": "tank farm"},
                occurred_at=now,
                raised_at=now,
                verdict=verdict,
            )
        )
        s.add(
            Evidence(
                alarm_id=alarm_id,
                kind="snapshot_raw",
                sha256=digest,
                path=rel,
                media_type="image/jpeg",
                size=len(buf),
                retain_until=now + dt.timedelta(days=180),
            )
        )
    return alarm_id


def test_alarm_to_sample(db: Database, tmp_path: Path) -> None:
    root = tmp_path / "storage"
    lib = SampleLibrary(db, root)
    lib.add_task("helmets", scene="helmet", labels=["no_helmet", "helmet"])
    confirmed = add_alarm(db, root, "true_positive")
    sample, created = lib.from_alarm(confirmed, "positive", "li.wei")
    assert created and sample["origin"] == "confirmed_alarm" and sample["tasks"] == ["helmets"]
    assert sample["alarm_id"] == confirmed and sample["camera_id"] == "cam1"
    assert sample["labels"] == [{"label": "no_helmet", "box": [0.1, 0.1, 0.3, 0.5]}]
    assert sample["tags"]["area"] == "tank farm"
    again, created = lib.from_alarm(confirmed, "positive", "li.wei")
    assert not created and again["id"] == sample["id"] and count(db, Sample) == 1

    wrong = add_alarm(db, root, "false_positive", seed=8)
    with pytest.raises(Conflict, match="judged false_positive"):
        lib.from_alarm(wrong, "positive", "li.wei")
    fp, created = lib.from_alarm(wrong, "false_positive", "li.wei")
    assert created and fp["origin"] == "false_positive" and fp["labels"] == []
    assert fp["tags"]["false_boxes"][0]["label"] == "no_helmet"
    adversarial = lib.list_tasks()[0]
    assert adversarial["samples"] == 2 and adversarial["adversarial"] == 1
    assert [s["id"] for s in lib.list_samples(origin="false_positive")["items"]] == [fp["id"]]


def test_tasks_add_update_remove(sqlite_db: Database, tmp_path: Path) -> None:
    lib = SampleLibrary(sqlite_db, tmp_path / "storage")
    lib.add_task("fire", scene="flame", labels=["fire", "smoke", "fire"])
    assert lib.get_task("fire")["labels"] == ["fire", "smoke"]
    with pytest.raises(Conflict):
        lib.add_task("fire")
    with pytest.raises(SampleError, match="no '/'"):
        lib.add_task("a/b")
    lib.update_task("fire", labels=["fire"])
    lib.import_yolo(yolo_folder(tmp_path / "in", range(20), names=["fire", "smoke", "x"]), "fire")
    split = lib.split("fire")
    assert [t["samples"] for t in lib.list_tasks()] == [20]
    assert lib.remove_task("fire") == {"removed": "fire", "kept_datasets": 0}
    assert lib.list_tasks() == [] and count(sqlite_db, Sample) == 20  # the samples stay
    with sqlite_db.session() as s:
        assert s.get(Dataset, split.train_id) is None
    with pytest.raises(SampleError, match="no task"):
        lib.split("fire")
