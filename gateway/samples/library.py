"""The sample library: detection tasks, labelled images, import/export, alarm samples and splits.

Samples are images stored content-addressed under ``<storage>/samples`` (one file per distinct image,
whatever its origin) and catalogued as ``Sample`` rows whose labels are
``[{"label": NAME, "box": [x1, y1, x2, y2]}]`` with coordinates normalised to 0..1.

Tasks and memberships. A detection task (``DetectionTask``: name, scene, label set) owns two datasets
that hold its membership lists: ``<task>/library`` (purpose ``library``: the task's samples, its
training material) and ``<task>/adversarial`` (purpose ``adversarial``: false positives of the task's
scene, stored with no labels; they are also library members, so they reach the training set as hard
negatives). One image may belong to several tasks; each task reads only the labels of its label set.

Re-imports. An image whose bytes are in the library already is never stored or catalogued twice.
Each import of an image records a key (task + the labels it brought) in ``tags["imports"]``:

- the same labels from the same task again (a re-import) change nothing, so a label a person deleted
  or corrected after the first import is not brought back;
- different labels (another data set, or a corrected one) are merged into the sample's labels: a
  union, where a box equal to an existing one (same label, coordinates within 1e-4) is not repeated.

Nothing is lost: labels are only added by an import, never removed.

Corrupt input. An image that cannot be decoded, or a label file / annotation that cannot be parsed,
is reported by file name and skipped with its labels; the rest of the import goes on.

Splits. A task's 8:2 train/test split assigns each sample by a hash of (task name, image SHA-256):
test when the hash falls in the lowest fifth. It depends on nothing else, so adding samples never
moves an existing one to the other side. ``split()`` freezes the current assignment as two datasets
(purpose ``train`` and ``test``) that model versions name; a split equal to the latest one is reused.

Removal. A sample named by a frozen train or test set is not deleted: it leaves the task libraries and
is marked ``tags["removed"]``, so every model version still names exactly its sets. Other samples
(and their files, when no other row shares them) are deleted.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from analyzers.evaluation import (
    IMAGE_SUFFIXES,
    EvalError,
    LabelBox,
    parse_label_file,
    read_names,
)
from gateway.db import Database
from gateway.db.files import EvidenceStore, SampleStore
from gateway.db.schema import (
    Alarm,
    Dataset,
    DatasetSample,
    DetectionTask,
    Evidence,
    ModelVersion,
    Sample,
    utcnow,
)
from gateway.ids import new_ulid
from gateway.times import iso

TEST_SHARE = 0.2  # the 8:2 split
BOX_EPS = 1e-4  # boxes closer than this (normalised) are the same box
COORD_DIGITS = 6
BATCH = 200  # images per transaction during an import
TASK_NAME_MAX = 64
ORIGINS = ("imported", "confirmed_alarm", "false_positive", "capture")
FROZEN_PURPOSES = ("train", "test")

Progress = Callable[[int], None]


class SampleError(ValueError):
    """The request cannot be done; the message says what to fix."""


class NotFound(SampleError):
    """No such task, sample, alarm or dataset."""


class Conflict(SampleError):
    """The request contradicts what is stored (a duplicate task, a contradicting verdict ...)."""


# --- labels -------------------------------------------------------------------------------------


def _coord(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SampleError(f"{where}: box coordinates must be numbers")
    return float(value)


def normalise_label(raw: Any, where: str = "label") -> dict[str, Any]:
    """``{"label": str, "box": [x1, y1, x2, y2]}`` checked (0..1, x1 < x2, y1 < y2) and rounded."""
    if not isinstance(raw, dict):
        raise SampleError(f"{where}: expected {{label, box}}")
    name = raw.get("label")
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise SampleError(f"{where}: label must be a non-empty name (at most 100 characters)")
    box = raw.get("box")
    if not isinstance(box, list | tuple) or len(box) != 4:
        raise SampleError(f"{where}: box must be [x1, y1, x2, y2] normalised to 0..1")
    x1, y1, x2, y2 = (_coord(v, where) for v in box)
    if not all(-0.01 <= v <= 1.01 for v in (x1, y1, x2, y2)):
        raise SampleError(f"{where}: box coordinates must be normalised to 0..1, not {list(box)}")
    x1, y1, x2, y2 = (min(max(v, 0.0), 1.0) for v in (x1, y1, x2, y2))
    if x2 <= x1 or y2 <= y1:
        raise SampleError(f"{where}: the box has no area (x1 < x2 and y1 < y2 needed): {list(box)}")
    return {"label": name.strip(), "box": [round(v, COORD_DIGITS) for v in (x1, y1, x2, y2)]}


def normalise_labels(raw: Iterable[Any]) -> list[dict[str, Any]]:
    return [normalise_label(item, f"labels[{i}]") for i, item in enumerate(raw)]


def same_box(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a["label"] == b["label"] and all(
        abs(p - q) <= BOX_EPS for p, q in zip(a["box"], b["box"], strict=True)
    )


def merge_labels(
    existing: Sequence[dict[str, Any]], incoming: Iterable[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Union: incoming boxes that equal an existing one are not repeated; order is kept."""
    out = list(existing)
    for label in incoming:
        if not any(same_box(label, have) for have in out):
            out.append(label)
    return out


def _yolo_box(b: LabelBox) -> list[float]:
    return [
        round(min(max(v, 0.0), 1.0), COORD_DIGITS)
        for v in (b.cx - b.w / 2, b.cy - b.h / 2, b.cx + b.w / 2, b.cy + b.h / 2)
    ]


def _import_key(task: str, labels: Sequence[dict[str, Any]]) -> str:
    canon = sorted((lab["label"], *lab["box"]) for lab in labels)
    return hashlib.sha256(json.dumps([task, canon]).encode()).hexdigest()[:20]


def split_side(task_name: str, sha256: str) -> str:
    """``train`` or ``test`` for one image of a task: a fixed function of the two."""
    digest = hashlib.sha256(f"{task_name}\0{sha256}".encode()).digest()
    return "test" if int.from_bytes(digest[:8], "big") / 2**64 < TEST_SHARE else "train"


def decode_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of encoded image bytes, or None when they are not a readable image."""
    if not data:
        return None
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        return None
    height, width = image.shape[:2]
    return width, height


# --- reports ------------------------------------------------------------------------------------


@dataclass
class ImportReport:
    task: str
    images: int = 0  # image files looked at
    added: int = 0  # new samples
    merged: int = 0  # existing samples that gained labels
    unchanged: int = 0  # existing samples with nothing new (a re-import)
    linked: int = 0  # existing samples that joined this task's library
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    new_labels: list[str] = field(default_factory=list)  # added to the task's label set

    def as_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "images": self.images,
            "added": self.added,
            "merged": self.merged,
            "unchanged": self.unchanged,
            "linked": self.linked,
            "skipped": [{"file": f, "reason": r} for f, r in self.skipped],
            "new_labels": self.new_labels,
        }

    def summary(self) -> str:
        text = (
            f"task {self.task}: {self.images} image(s): {self.added} added, {self.merged} merged, "
            f"{self.unchanged} unchanged, {self.linked} linked, {len(self.skipped)} skipped"
        )
        if self.new_labels:
            text += f"; new labels: {', '.join(self.new_labels)}"
        return text


@dataclass
class SplitResult:
    task: str
    train_id: str
    test_id: str
    train: int
    test: int
    created: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "train_set_id": self.train_id,
            "test_set_id": self.test_id,
            "train": self.train,
            "test": self.test,
            "created": self.created,
        }


@dataclass
class _Incoming:
    file: str  # name for reports
    data: bytes
    ext: str
    width: int
    height: int
    labels: list[dict[str, Any]]


def task_json(task: DetectionTask, counts: dict[str, int] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": task.id,
        "name": task.name,
        "scene": task.scene,
        "labels": list(task.labels),
        "created_at": iso(task.created_at),
    }
    if counts is not None:
        out.update(counts)
    return out


def sample_json(s: Sample, tasks: list[str] | None = None) -> dict[str, Any]:
    tags = dict(s.tags or {})
    out: dict[str, Any] = {
        "id": s.id,
        "sha256": s.sha256,
        "width": s.width,
        "height": s.height,
        "origin": s.origin,
        "camera_id": s.camera_id,
        "scene": s.scene,
        "alarm_id": s.alarm_id,
        "file_name": tags.get("file_name"),
        "removed": bool(tags.get("removed")),
        "tags": {k: v for k, v in tags.items() if k not in ("imports", "file_name", "removed")},
        "labels": list(s.labels or []),
        "created_at": iso(s.created_at),
        "updated_at": iso(s.updated_at),
        "image": f"/api/samples/{s.id}/image",
    }
    if tasks is not None:
        out["tasks"] = tasks
    return out


# --- the library --------------------------------------------------------------------------------


class SampleLibrary:
    """Sample-library operations on a database and a storage root. Each method is one or a few
    short transactions; call it from a worker thread in the API."""

    def __init__(self, db: Database, storage_root: Path) -> None:
        self.db = db
        self.root = storage_root
        self.store = SampleStore(storage_root)

    # --- tasks ----------------------------------------------------------------------------------

    def add_task(self, name: str, scene: str | None = None, labels: Sequence[str] = ()) -> dict[str, Any]:
        name = name.strip()
        if not name or len(name) > TASK_NAME_MAX or "/" in name:
            raise SampleError(f"a task name needs 1..{TASK_NAME_MAX} characters and no '/'")
        clean = _label_set(labels)
        with self.db.session() as s:
            if s.scalar(select(DetectionTask).where(DetectionTask.name == name)) is not None:
                raise Conflict(f"task {name!r} exists already")
            task = DetectionTask(name=name, scene=scene or None, labels=clean)
            s.add(task)
            s.flush()
            self._membership(s, task, "library")
            self._membership(s, task, "adversarial")
            return task_json(task)

    def update_task(
        self, name: str, scene: str | None = None, labels: Sequence[str] | None = None
    ) -> dict[str, Any]:
        with self.db.session() as s:
            task = self._task(s, name)
            if scene is not None:
                task.scene = scene or None
            if labels is not None:
                task.labels = _label_set(labels)
            return task_json(task)

    def list_tasks(self) -> list[dict[str, Any]]:
        with self.db.session() as s:
            out = []
            for task in s.scalars(select(DetectionTask).order_by(DetectionTask.name)):
                counts: dict[str, int] = {}
                for purpose in ("library", "adversarial"):
                    ds = self._membership(s, task, purpose, create=False)
                    counts["samples" if purpose == "library" else purpose] = (
                        s.scalar(
                            select(func.count())
                            .select_from(DatasetSample)
                            .where(DatasetSample.dataset_id == ds.id)
                        )
                        or 0
                        if ds is not None
                        else 0
                    )
                out.append(task_json(task, counts))
            return out

    def get_task(self, name: str) -> dict[str, Any]:
        with self.db.session() as s:
            task = self._task(s, name)
            splits = [
                {"id": d.id, "name": d.name, "purpose": d.purpose, "created_at": iso(d.created_at)}
                for d in s.scalars(
                    select(Dataset)
                    .where(Dataset.task_id == task.id, Dataset.purpose.in_(FROZEN_PURPOSES))
                    .order_by(Dataset.id.desc())
                    .limit(20)
                )
            ]
            return {**task_json(task), "splits": splits}

    def remove_task(self, name: str) -> dict[str, Any]:
        """Remove a task and its membership lists. Samples stay in the library; train/test sets that a
        model version names stay too (detached from the task), the others are deleted."""
        with self.db.session() as s:
            task = self._task(s, name)
            kept = 0
            for ds in s.scalars(select(Dataset).where(Dataset.task_id == task.id)):
                used = s.scalar(
                    select(func.count())
                    .select_from(ModelVersion)
                    .where((ModelVersion.train_set_id == ds.id) | (ModelVersion.test_set_id == ds.id))
                )
                if used:
                    ds.task_id = None
                    ds.description = f"{ds.description} (task {name} removed)".strip()
                    kept += 1
                else:
                    s.execute(delete(DatasetSample).where(DatasetSample.dataset_id == ds.id))
                    s.delete(ds)
            s.flush()
            s.delete(task)
            return {"removed": name, "kept_datasets": kept}

    def _task(self, s: Session, name: str) -> DetectionTask:
        task = s.scalar(select(DetectionTask).where(DetectionTask.name == name))
        if task is None:
            raise NotFound(f"no task {name!r}; `vigil tasks list` shows the tasks")
        return task

    def _membership(
        self, s: Session, task: DetectionTask, purpose: str, create: bool = True
    ) -> Dataset | None:
        ds = s.scalar(select(Dataset).where(Dataset.task_id == task.id, Dataset.purpose == purpose))
        if ds is None and create:
            ds = Dataset(
                id=new_ulid(),
                name=f"{task.name}/{purpose}",
                purpose=purpose,
                task_id=task.id,
                description=f"the {purpose} of task {task.name}",
            )
            s.add(ds)
            s.flush()
        return ds

    def _link(self, s: Session, dataset: Dataset, sample_id: str) -> bool:
        if s.get(DatasetSample, (dataset.id, sample_id)) is not None:
            return False
        s.add(DatasetSample(dataset_id=dataset.id, sample_id=sample_id))
        return True

    def _task_or_create(
        self, s: Session, name: str, scene: str | None, labels: Sequence[str]
    ) -> DetectionTask:
        task = s.scalar(select(DetectionTask).where(DetectionTask.name == name))
        if task is None:
            if not name or len(name) > TASK_NAME_MAX or "/" in name:
                raise SampleError(f"a task name needs 1..{TASK_NAME_MAX} characters and no '/'")
            task = DetectionTask(name=name, scene=scene, labels=_label_set(labels))
            s.add(task)
            s.flush()
        return task

    # --- import ---------------------------------------------------------------------------------

    def import_yolo(
        self,
        path: Path,
        task: str,
        scene: str | None = None,
        label_map: dict[str, str] | None = None,
        progress: bool = False,
    ) -> ImportReport:
        """Import a YOLO txt data set: a split folder (images/, labels/) or a folder of splits
        (train/, valid/, test/ ...), with class names from data.yaml (in the split or its parent) or
        classes.txt. A task that does not exist is created with the data set's label set."""
        splits = _yolo_splits(path)
        report = ImportReport(task)
        work: list[tuple[Path, Path, list[str]]] = []
        for split in splits:
            names = _yolo_names(split)
            for image in sorted(
                p for p in (split / "images").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
            ):
                work.append((split, image, names))
        all_names = _dedupe([n for _, _, names in work for n in names])
        mapped = [(label_map or {}).get(n, n) for n in all_names]

        def load(item: tuple[Path, Path, list[str]]) -> _Incoming | None:
            split, image, names = item
            file = _rel(image, path)
            label_file = split / "labels" / f"{image.stem}.txt"
            try:
                boxes = parse_label_file(label_file, len(names)) if label_file.is_file() else []
            except EvalError as exc:
                report.skipped.append((_rel(label_file, path), _short(str(exc), label_file)))
                return None
            return self._read_image(
                image,
                file,
                [
                    {
                        "label": (label_map or {}).get(names[b.class_id], names[b.class_id]),
                        "box": _yolo_box(b),
                    }
                    for b in boxes
                ],
                report,
            )

        self._run_import(work, load, task, scene, mapped, report, progress, str(path))
        return report

    def import_coco(
        self,
        path: Path,
        task: str,
        scene: str | None = None,
        label_map: dict[str, str] | None = None,
        progress: bool = False,
    ) -> ImportReport:
        """Import COCO JSON: a .json file, or a folder holding one (or splits each holding one).
        Images are found beside the JSON file or in an images/ folder beside it."""
        report = ImportReport(task)
        work: list[tuple[Path, dict[str, Any], list[Any], dict[int, str]]] = []
        names: list[str] = []
        for json_file in _coco_files(path):
            try:
                doc = json.loads(json_file.read_text(encoding="utf-8"))
                images = doc["images"]
                categories = {int(c["id"]): str(c["name"]) for c in doc.get("categories", [])}
                annotations = doc.get("annotations", [])
                if not isinstance(images, list) or not isinstance(annotations, list):
                    raise TypeError("images and annotations must be lists")
            except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
                report.skipped.append((_rel(json_file, path), f"not a readable COCO JSON file: {exc}"))
                continue
            by_image: dict[Any, list[Any]] = {}
            for ann in annotations:
                by_image.setdefault(ann.get("image_id") if isinstance(ann, dict) else None, []).append(ann)
            used = {a.get("category_id") for a in annotations if isinstance(a, dict)}
            names.extend(categories[c] for c in sorted(categories) if c in used)
            for info in images:
                key = info.get("id") if isinstance(info, dict) else None
                work.append((json_file, info, by_image.get(key, []), categories))
        names = _dedupe(names)
        mapped = [(label_map or {}).get(n, n) for n in names]

        def load(item: tuple[Path, dict[str, Any], list[Any], dict[int, str]]) -> _Incoming | None:
            json_file, info, anns, categories = item
            if not isinstance(info, dict) or not isinstance(info.get("file_name"), str):
                report.skipped.append((_rel(json_file, path), f"image entry without file_name: {info!r:.80}"))
                return None
            rel_name = info["file_name"]
            image = next(
                (
                    c
                    for c in (json_file.parent / rel_name, json_file.parent / "images" / rel_name)
                    if c.is_file()
                ),
                None,
            )
            if image is None:
                report.skipped.append((rel_name, f"image file not found beside {json_file.name}"))
                return None
            file = _rel(image, path)
            incoming = self._read_image(image, file, [], report)
            if incoming is None:
                return None
            width, height = incoming.width, incoming.height
            if info.get("width") not in (None, width) or info.get("height") not in (None, height):
                report.skipped.append(
                    (
                        file,
                        f"the JSON says {info.get('width')}x{info.get('height')}, "
                        f"the image is {width}x{height}",
                    )
                )
                return None
            for ann in anns:
                try:
                    cat = categories[int(ann["category_id"])]
                    x, y, w, h = (float(v) for v in ann["bbox"])
                    box = [x / width, y / height, (x + w) / width, (y + h) / height]
                    incoming.labels.append(
                        normalise_label({"label": (label_map or {}).get(cat, cat), "box": box}, "annotation")
                    )
                except (KeyError, TypeError, ValueError) as exc:
                    report.skipped.append(
                        (
                            file,
                            f"bad annotation {ann.get('id', '?') if isinstance(ann, dict) else '?'}: {exc}",
                        )
                    )
                    return None
            return incoming

        self._run_import(work, load, task, scene, mapped, report, progress, str(path))
        return report

    def _read_image(
        self, image: Path, file: str, labels: list[dict[str, Any]], report: ImportReport
    ) -> _Incoming | None:
        try:
            data = image.read_bytes()
        except OSError as exc:
            report.skipped.append((file, f"cannot read: {exc}"))
            return None
        size = decode_size(data)
        if size is None:
            report.skipped.append((file, "not a readable image (corrupt or unknown format)"))
            return None
        return _Incoming(file, data, _ext(image), size[0], size[1], labels)

    def _run_import(
        self,
        work: Sequence[Any],
        load: Callable[[Any], _Incoming | None],
        task_name: str,
        scene: str | None,
        names: list[str],
        report: ImportReport,
        progress: bool,
        source: str,
    ) -> None:
        from tqdm import tqdm

        with self.db.session() as s:
            task = self._task_or_create(s, task_name, scene, names)
            new = [n for n in names if n not in task.labels]
            if new:
                task.labels = [*task.labels, *new]
                report.new_labels = new
            self._membership(s, task, "library")
            self._membership(s, task, "adversarial")
        with tqdm(total=len(work), desc=f"importing {task_name}", unit="image", disable=not progress) as bar:
            for start in range(0, len(work), BATCH):
                chunk = []
                for item in work[start : start + BATCH]:
                    chunk.append(load(item))
                    bar.update(1)
                report.images += len(chunk)
                written: list[str] = []
                try:
                    with self.db.session() as s:
                        task = self._task(s, task_name)
                        library = self._membership(s, task, "library")
                        assert library is not None
                        for item in chunk:
                            if item is not None:
                                self._store(s, item, task, library, report, written, source)
                except BaseException:
                    for rel in written:  # no row names them
                        self.store.remove(rel)
                    raise

    def _store(
        self,
        s: Session,
        item: _Incoming,
        task: DetectionTask,
        library: Dataset,
        report: ImportReport,
        written: list[str],
        source: str,
    ) -> None:
        digest = hashlib.sha256(item.data).hexdigest()
        key = _import_key(task.name, item.labels)
        existing = s.scalar(select(Sample).where(Sample.sha256 == digest).order_by(Sample.id).limit(1))
        if existing is None:
            digest, rel, wrote = self.store.put(item.data, item.ext)
            if wrote:
                written.append(rel)
            sample = Sample(
                id=new_ulid(),
                sha256=digest,
                path=rel,
                width=item.width,
                height=item.height,
                origin="imported",
                scene=task.scene,
                tags={"file_name": Path(item.file).name, "source": source, "imports": [key]},
                labels=item.labels,
            )
            s.add(sample)
            s.flush()
            self._link(s, library, sample.id)
            report.added += 1
            return
        tags = dict(existing.tags or {})
        imports = list(tags.get("imports", []))
        if key in imports:
            report.unchanged += 1
        else:
            merged = merge_labels(existing.labels or [], item.labels)
            if merged != list(existing.labels or []):
                existing.labels = merged
                report.merged += 1
            else:
                report.unchanged += 1
            tags["imports"] = [*imports, key]
            existing.tags = tags
        if not tags.get("removed") and self._link(s, library, existing.id):
            report.linked += 1

    # --- alarms -> samples ----------------------------------------------------------------------

    def from_alarm(
        self, alarm_id: str, kind: str, actor: str, task: str | None = None
    ) -> tuple[dict[str, Any], bool]:
        """A confirmed alarm as a positive sample (its raw snapshot and boxes, origin confirmed_alarm),
        or a false positive as an adversarial one (no labels; the wrong boxes kept in tags). Joins the
        named task, else every task of the alarm's scene. Returns (sample, whether it was created);
        asking again returns the same sample."""
        if kind not in ("positive", "false_positive"):
            raise SampleError("kind must be positive or false_positive")
        origin = "confirmed_alarm" if kind == "positive" else "false_positive"
        with self.db.session() as s:
            alarm = s.get(Alarm, alarm_id)
            if alarm is None:
                raise NotFound(f"no alarm {alarm_id}")
            contradicts = "false_positive" if kind == "positive" else "true_positive"
            if alarm.verdict == contradicts:
                raise Conflict(
                    f"alarm {alarm_id} was judged {alarm.verdict}; it cannot be added as a "
                    f"{'positive' if kind == 'positive' else 'false positive'} sample"
                )
            rel = s.scalar(
                select(Evidence.path).where(Evidence.alarm_id == alarm_id, Evidence.kind == "snapshot_raw")
            )
            if rel is None:
                raise NotFound(f"alarm {alarm_id} has no raw snapshot to make a sample of")
            try:
                data = EvidenceStore(self.root).path(rel).read_bytes()
            except (OSError, ValueError) as exc:
                raise NotFound(
                    f"the raw snapshot of alarm {alarm_id} is missing from storage ({exc})"
                ) from exc
            size = decode_size(data)
            if size is None:
                raise SampleError(f"the raw snapshot of alarm {alarm_id} is not a readable image")
            width, height = size
            boxes = []
            for b in (alarm.details or {}).get("boxes", []):
                try:
                    x1, y1, x2, y2 = (float(v) for v in b["box"])
                    boxes.append(
                        normalise_label(
                            {"label": b["label"], "box": [x1 / width, y1 / height, x2 / width, y2 / height]}
                        )
                    )
                except (KeyError, TypeError, ValueError, SampleError):
                    continue  # a degenerate detection box is no label
            if task is not None:
                tasks = [self._task(s, task)]
            else:
                tasks = list(s.scalars(select(DetectionTask).where(DetectionTask.scene == alarm.scene)))
            digest = hashlib.sha256(data).hexdigest()
            sample = s.scalar(select(Sample).where(Sample.sha256 == digest).order_by(Sample.id).limit(1))
            created = sample is None
            if sample is None:
                digest, srel, _ = self.store.put(data, "jpg")
                tags: dict[str, Any] = {
                    **(alarm.tags or {}),
                    "file_name": f"alarm-{alarm.id}.jpg",
                    "added_by": actor,
                    "alarm_verdict": alarm.verdict or "unreviewed",
                }
                if kind == "false_positive":
                    tags["false_boxes"] = boxes
                sample = Sample(
                    id=new_ulid(),
                    sha256=digest,
                    path=srel,
                    width=width,
                    height=height,
                    origin=origin,
                    camera_id=alarm.camera_id,
                    scene=alarm.scene,
                    alarm_id=alarm.id,
                    tags=tags,
                    labels=boxes if kind == "positive" else [],
                )
                s.add(sample)
                s.flush()
            elif sample.origin in ("confirmed_alarm", "false_positive") and sample.origin != origin:
                raise Conflict(f"this picture is a {sample.origin} sample ({sample.id}) already")
            for t in tasks:
                library = self._membership(s, t, "library")
                assert library is not None
                self._link(s, library, sample.id)
                if kind == "false_positive":
                    adversarial = self._membership(s, t, "adversarial")
                    assert adversarial is not None
                    self._link(s, adversarial, sample.id)
            return sample_json(sample, [t.name for t in tasks]), created

    # --- samples and labels ---------------------------------------------------------------------

    def list_samples(
        self,
        task: str | None = None,
        origin: str | None = None,
        scene: str | None = None,
        camera_id: str | None = None,
        label: str | None = None,
        dataset_id: str | None = None,
        before: str | None = None,
        limit: int = 50,
        include_removed: bool = False,
    ) -> dict[str, Any]:
        """Newest first; ``next`` is the cursor (a sample id) for the following page."""
        with self.db.session() as s:
            stmt = select(Sample)
            if task is not None:
                t = self._task(s, task)
                library = self._membership(s, t, "library", create=False)
                ids = select(DatasetSample.sample_id).where(
                    DatasetSample.dataset_id == (library.id if library else "")
                )
                stmt = stmt.where(Sample.id.in_(ids))
            if dataset_id is not None:
                if s.get(Dataset, dataset_id) is None:
                    raise NotFound(f"no dataset {dataset_id}")
                stmt = stmt.where(
                    Sample.id.in_(
                        select(DatasetSample.sample_id).where(DatasetSample.dataset_id == dataset_id)
                    )
                )
            if origin:
                stmt = stmt.where(Sample.origin == origin)
            if scene:
                stmt = stmt.where(Sample.scene == scene)
            if camera_id:
                stmt = stmt.where(Sample.camera_id == camera_id)
            if before:
                stmt = stmt.where(Sample.id < before)
            stmt = stmt.order_by(Sample.id.desc())
            items: list[dict[str, Any]] = []
            last: str | None = None
            offset = 0
            page = max(limit * 2, 100)
            while len(items) < limit:
                rows = list(s.scalars(stmt.offset(offset).limit(page)))
                if not rows:
                    last = None
                    break
                offset += len(rows)
                for row in rows:
                    if not include_removed and (row.tags or {}).get("removed"):
                        continue
                    if label and not any(lab.get("label") == label for lab in row.labels or []):
                        continue
                    items.append(sample_json(row))
                    last = row.id
                    if len(items) == limit:
                        break
            return {"items": items, "next": last if len(items) == limit else None}

    def get_sample(self, sample_id: str) -> dict[str, Any]:
        with self.db.session() as s:
            sample = self._sample(s, sample_id)
            tasks = list(
                s.scalars(
                    select(DetectionTask.name)
                    .join(Dataset, Dataset.task_id == DetectionTask.id)
                    .join(DatasetSample, DatasetSample.dataset_id == Dataset.id)
                    .where(DatasetSample.sample_id == sample_id, Dataset.purpose == "library")
                    .order_by(DetectionTask.name)
                )
            )
            return sample_json(sample, tasks)

    def image_path(self, sample_id: str) -> tuple[Path, str]:
        """The stored image file and its media type."""
        with self.db.session() as s:
            rel = self._sample(s, sample_id).path
        path = self.store.path(rel)
        ext = path.suffix.lower().lstrip(".")
        media = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "bmp": "image/bmp"}.get(
            ext, f"image/{ext}"
        )
        return path, media

    def _sample(self, s: Session, sample_id: str) -> Sample:
        sample = s.get(Sample, sample_id)
        if sample is None:
            raise NotFound(f"no sample {sample_id}")
        return sample

    def _edit(
        self, sample_id: str, actor: str, change: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]
    ) -> dict[str, Any]:
        with self.db.session() as s:
            sample = self._sample(s, sample_id)
            sample.labels = change(list(sample.labels or []))
            sample.tags = {**(sample.tags or {}), "edited_by": actor, "edited_at": iso(utcnow())}
            sample.updated_at = utcnow()
            return sample_json(sample)

    def set_labels(self, sample_id: str, labels: Sequence[Any], actor: str) -> dict[str, Any]:
        clean = normalise_labels(labels)
        return self._edit(sample_id, actor, lambda _old: clean)

    def add_label(self, sample_id: str, label: Any, actor: str) -> dict[str, Any]:
        clean = normalise_label(label)
        return self._edit(sample_id, actor, lambda old: [*old, clean])

    def update_label(self, sample_id: str, index: int, label: Any, actor: str) -> dict[str, Any]:
        clean = normalise_label(label)

        def change(old: list[dict[str, Any]]) -> list[dict[str, Any]]:
            if not 0 <= index < len(old):
                raise NotFound(f"sample {sample_id} has no label {index} (it has {len(old)})")
            old[index] = clean
            return old

        return self._edit(sample_id, actor, change)

    def delete_label(self, sample_id: str, index: int, actor: str) -> dict[str, Any]:
        def change(old: list[dict[str, Any]]) -> list[dict[str, Any]]:
            if not 0 <= index < len(old):
                raise NotFound(f"sample {sample_id} has no label {index} (it has {len(old)})")
            del old[index]
            return old

        return self._edit(sample_id, actor, change)

    def delete_sample(self, sample_id: str, actor: str) -> dict[str, Any]:
        """Delete a sample; one that a frozen train/test set names is only marked removed."""
        rel: str | None = None
        with self.db.session() as s:
            sample = self._sample(s, sample_id)
            frozen = s.scalar(
                select(func.count())
                .select_from(DatasetSample)
                .join(Dataset, Dataset.id == DatasetSample.dataset_id)
                .where(DatasetSample.sample_id == sample_id, Dataset.purpose.in_(FROZEN_PURPOSES))
            )
            if frozen:
                s.execute(
                    delete(DatasetSample).where(
                        DatasetSample.sample_id == sample_id,
                        DatasetSample.dataset_id.in_(
                            select(Dataset.id).where(Dataset.purpose.in_(("library", "adversarial")))
                        ),
                    )
                )
                sample.tags = {
                    **(sample.tags or {}),
                    "removed": True,
                    "removed_by": actor,
                    "removed_at": iso(utcnow()),
                }
                return {"id": sample_id, "deleted": False, "removed": True}
            s.execute(delete(DatasetSample).where(DatasetSample.sample_id == sample_id))
            shared = s.scalar(
                select(func.count())
                .select_from(Sample)
                .where(Sample.path == sample.path, Sample.id != sample_id)
            )
            if not shared:
                rel = sample.path
            s.delete(sample)
        if rel is not None:
            self.store.remove(rel)
        return {"id": sample_id, "deleted": True, "removed": True}

    # --- splits ---------------------------------------------------------------------------------

    def split(self, task: str) -> SplitResult:
        """Freeze the task's current 8:2 split as a train and a test dataset (reused when unchanged)."""
        with self.db.session() as s:
            t = self._task(s, task)
            library = self._membership(s, t, "library")
            assert library is not None
            rows = s.execute(
                select(Sample.id, Sample.sha256)
                .join(DatasetSample, DatasetSample.sample_id == Sample.id)
                .where(DatasetSample.dataset_id == library.id)
            ).all()
            sides: dict[str, set[str]] = {"train": set(), "test": set()}
            for sample_id, sha in rows:
                sides[split_side(t.name, sha)].add(sample_id)
            latest = self._latest_split(s, t)
            if latest is not None:
                train_ds, test_ds = latest
                have = {
                    purpose: set(
                        s.scalars(select(DatasetSample.sample_id).where(DatasetSample.dataset_id == ds.id))
                    )
                    for purpose, ds in (("train", train_ds), ("test", test_ds))
                }
                if have == sides:
                    return SplitResult(
                        t.name, train_ds.id, test_ds.id, len(sides["train"]), len(sides["test"]), False
                    )
            stamp = new_ulid()
            ids = {}
            for purpose in ("train", "test"):
                ds = Dataset(
                    id=new_ulid(),
                    name=f"{t.name}/{purpose}/{stamp}",
                    purpose=purpose,
                    task_id=t.id,
                    description=(
                        f"{purpose} set of task {t.name}: {len(sides[purpose])} samples, "
                        f"8:2 split by hash of task name and image SHA-256"
                    ),
                )
                s.add(ds)
                s.flush()
                s.add_all(DatasetSample(dataset_id=ds.id, sample_id=sid) for sid in sorted(sides[purpose]))
                ids[purpose] = ds.id
            return SplitResult(
                t.name, ids["train"], ids["test"], len(sides["train"]), len(sides["test"]), True
            )

    def _latest_split(self, s: Session, task: DetectionTask) -> tuple[Dataset, Dataset] | None:
        rows = list(
            s.scalars(
                select(Dataset)
                .where(Dataset.task_id == task.id, Dataset.purpose.in_(FROZEN_PURPOSES))
                .order_by(Dataset.created_at.desc(), Dataset.id.desc())
                .limit(2)
            )
        )
        by = {d.purpose: d for d in rows}
        if (
            set(by) != {"train", "test"}
            or by["train"].name.rsplit("/", 1)[-1] != by["test"].name.rsplit("/", 1)[-1]
        ):
            return None
        return by["train"], by["test"]

    def latest_split(self, task: str) -> dict[str, Any] | None:
        with self.db.session() as s:
            found = self._latest_split(s, self._task(s, task))
            if found is None:
                return None
            return {"train_set_id": found[0].id, "test_set_id": found[1].id}

    def dataset_info(self, dataset_id: str) -> dict[str, Any]:
        with self.db.session() as s:
            ds = s.get(Dataset, dataset_id)
            if ds is None:
                raise NotFound(f"no dataset {dataset_id}")
            task = s.get(DetectionTask, ds.task_id) if ds.task_id is not None else None
            count = s.scalar(
                select(func.count()).select_from(DatasetSample).where(DatasetSample.dataset_id == ds.id)
            )
            return {
                "id": ds.id,
                "name": ds.name,
                "purpose": ds.purpose,
                "task": task.name if task else None,
                "samples": count,
                "description": ds.description,
                "created_at": iso(ds.created_at),
            }

    # --- export ---------------------------------------------------------------------------------

    def export(
        self,
        fmt: str,
        out: Path,
        task: str | None = None,
        dataset_id: str | None = None,
        progress: bool = False,
    ) -> dict[str, Any]:
        """Write a task's library (or one dataset) as YOLO txt (images/, labels/, data.yaml) or COCO
        JSON (images/, annotations.json). Only labels of the task's label set are written."""
        from tqdm import tqdm

        if fmt not in ("yolo", "coco"):
            raise SampleError("format must be yolo or coco")
        with self.db.session() as s:
            if dataset_id is not None:
                ds = s.get(Dataset, dataset_id)
                if ds is None:
                    raise NotFound(f"no dataset {dataset_id}")
                t = s.get(DetectionTask, ds.task_id) if ds.task_id is not None else None
                if task is not None and (t is None or t.name != task):
                    raise SampleError(f"dataset {dataset_id} is not a dataset of task {task}")
            elif task is not None:
                t = self._task(s, task)
                ds = self._membership(s, t, "library")
            else:
                raise SampleError("name a task or a dataset to export")
            assert ds is not None
            rows = list(
                s.scalars(
                    select(Sample)
                    .join(DatasetSample, DatasetSample.sample_id == Sample.id)
                    .where(DatasetSample.dataset_id == ds.id)
                    .order_by(Sample.id)
                )
            )
            if t is not None:
                names = list(t.labels)
            else:
                names = _dedupe([lab["label"] for r in rows for lab in r.labels or []])
            for row in rows:
                s.expunge(row)
        if dataset_id is None:
            rows = [r for r in rows if not (r.tags or {}).get("removed")]
        out.mkdir(parents=True, exist_ok=True)
        (out / "images").mkdir(exist_ok=True)
        index = {n: i for i, n in enumerate(names)}
        file_names = _export_names(rows)
        coco_images: list[dict[str, Any]] = []
        coco_anns: list[dict[str, Any]] = []
        if fmt == "yolo":
            (out / "labels").mkdir(exist_ok=True)
        for number, row in enumerate(tqdm(rows, desc="exporting", unit="image", disable=not progress), 1):
            name = file_names[row.id]
            shutil.copyfile(self.store.path(row.path), out / "images" / name)
            labels = [lab for lab in row.labels or [] if lab["label"] in index]
            if fmt == "yolo":
                lines = []
                for lab in labels:
                    x1, y1, x2, y2 = lab["box"]
                    lines.append(
                        f"{index[lab['label']]} {(x1 + x2) / 2:.6f} {(y1 + y2) / 2:.6f} "
                        f"{x2 - x1:.6f} {y2 - y1:.6f}"
                    )
                (out / "labels" / f"{Path(name).stem}.txt").write_text(
                    "".join(line + "\n" for line in lines), encoding="utf-8"
                )
            else:
                coco_images.append(
                    {"id": number, "file_name": name, "width": row.width, "height": row.height}
                )
                for lab in labels:
                    x1, y1, x2, y2 = lab["box"]
                    w, h = (x2 - x1) * row.width, (y2 - y1) * row.height
                    coco_anns.append(
                        {
                            "id": len(coco_anns) + 1,
                            "image_id": number,
                            "category_id": index[lab["label"]] + 1,
                            "bbox": [
                                round(x1 * row.width, 4),
                                round(y1 * row.height, 4),
                                round(w, 4),
                                round(h, 4),
                            ],
                            "area": round(w * h, 4),
                            "iscrowd": 0,
                        }
                    )
        if fmt == "yolo":
            (out / "data.yaml").write_text(
                yaml.safe_dump({"names": names, "nc": len(names)}, sort_keys=False, allow_unicode=True),
                encoding="utf-8",
            )
        else:
            doc = {
                "info": {"description": f"vigil export of {ds.name}", "date_created": iso(utcnow())},
                "images": coco_images,
                "annotations": coco_anns,
                "categories": [
                    {"id": i + 1, "name": n, "supercategory": "none"} for i, n in enumerate(names)
                ],
            }
            (out / "annotations.json").write_text(
                json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8"
            )
        return {
            "format": fmt,
            "dataset": ds.name,
            "dataset_id": ds.id,
            "images": len(rows),
            "path": str(out),
            "names": names,
        }


# --- helpers ------------------------------------------------------------------------------------


def _label_set(labels: Iterable[str]) -> list[str]:
    clean = _dedupe([str(n).strip() for n in labels if str(n).strip()])
    if any(len(n) > 100 for n in clean):
        raise SampleError("a label name has at most 100 characters")
    return clean


def _dedupe(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _ext(path: Path) -> str:
    ext = path.suffix.lower().lstrip(".")
    return "jpg" if ext == "jpeg" else ext


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root if root.is_dir() else root.parent).as_posix()
    except ValueError:
        return path.name


def _short(message: str, path: Path) -> str:
    """An evaluation error without the full path (the report names the file)."""
    return message.replace(f"{path}, ", "").replace(f"{path}: ", "")


def _yolo_splits(path: Path) -> list[Path]:
    if not path.is_dir():
        raise SampleError(f"{path}: not a folder; pass a YOLO split (images/, labels/) or a folder of splits")
    if (path / "images").is_dir():
        return [path]
    splits = sorted(p for p in path.iterdir() if (p / "images").is_dir())
    if not splits:
        raise SampleError(f"{path}: no images/ folder here nor in its sub-folders (train/, valid/, test/)")
    return splits


def _yolo_names(split: Path) -> list[str]:
    for folder in (split, split.parent):
        if (folder / "data.yaml").is_file():
            try:
                return read_names(folder / "data.yaml")
            except EvalError as exc:
                raise SampleError(str(exc)) from exc
        classes = folder / "classes.txt"
        if classes.is_file():
            names = [n.strip() for n in classes.read_text(encoding="utf-8").splitlines() if n.strip()]
            if names:
                return names
    raise SampleError(
        f"{split}: no data.yaml or classes.txt with the class names here or in the parent folder"
    )


def _coco_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise SampleError(f"{path}: no such file or folder")
    found = sorted(path.glob("*.json"))
    if not found:
        found = sorted(p for sub in sorted(path.iterdir()) if sub.is_dir() for p in sub.glob("*.json"))
    if not found:
        raise SampleError(f"{path}: no COCO .json file here nor in its sub-folders")
    return found


def _export_names(rows: Sequence[Sample]) -> dict[str, str]:
    """Original file names where they are unique, else the image's SHA-256."""
    wanted: dict[str, str] = {}
    for row in rows:
        ext = Path(row.path).suffix
        original = (row.tags or {}).get("file_name")
        stem = Path(original).stem if isinstance(original, str) and original else row.sha256
        wanted[row.id] = f"{stem}{ext}"
    stems = Counter(Path(n).stem for n in wanted.values())
    return {
        sid: name if stems[Path(name).stem] == 1 else f"{row.sha256}{Path(row.path).suffix}"
        for (sid, name), row in zip(wanted.items(), rows, strict=True)
    }
