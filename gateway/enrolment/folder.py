"""Example crops for an enrolment from a folder: the boxes of one class of a YOLO-layout split
(DIR/images, DIR/labels, data.yaml), cut as the scene cuts its part at run time (a work-clothes
example is the torso of the labelled person who wears the vest), or, in a folder with one
sub-folder per class, every image of DIR/CLASS as one crop (photos of an extinguisher, crops picked
from frames).

Every error a user can make says what to do: a folder without that class (its classes are listed),
images that do not read (counted, the first named), too few examples (how many are needed)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from analyzers.crops import crop_expand, part_box
from analyzers.detectors.classifier import crop_box
from analyzers.enrolment import MIN_EXAMPLES, EnrolmentError
from analyzers.evaluation import EvalError, LabelBox, load_yolo_dataset

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
MIN_SIDE = 8  # pixels: a smaller box shows nothing to learn from
MAX_IMAGE_BYTES = 50 * 1024 * 1024

Progress = Callable[[int, int], None]  # (done, total)
Box = tuple[float, float, float, float]


@dataclass
class FolderCrops:
    crops: list[np.ndarray]
    images: int  # images the crops came from
    unreadable: list[str] = field(default_factory=list)
    skipped_small: int = 0
    layout: str = "yolo"  # yolo | class folder
    by_person: int = 0  # crops cut as the part of the labelled person holding the box
    # (box height / picture height, box width / box height) of each crop from a labelled box
    shapes: list[tuple[float, float]] = field(default_factory=list)


def _read(path: Path) -> np.ndarray | None:
    try:
        if path.stat().st_size > MAX_IMAGE_BYTES:
            return None
        data = np.fromfile(path, np.uint8)
    except OSError:
        return None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    return image if image is not None and image.size else None


def _spread(items: list[int], limit: int | None) -> list[int]:
    """``limit`` items spread evenly over the list (all of them without a limit)."""
    if limit is None or limit >= len(items):
        return items
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


PERSON_PARTS = ("torso", "person", "head")  # parts cut from a person's box at run time
PERSON_NAMES = ("person", "people", "worker")
PERSON_ASPECT = 1.8  # a labelled box this much taller than wide is a whole person


def folder_crops(
    root: Path,
    cls: str,
    part: str,
    limit: int | None = None,
    progress: Progress | None = None,
    min_examples: int = MIN_EXAMPLES,
) -> FolderCrops:
    """Crops of class ``cls`` under ``root`` (see the module docstring), ``limit`` at most, spread
    over the folder, cut as the scene cuts ``part`` at run time; raises EnrolmentError with what to
    do."""
    if not root.is_dir():
        raise EnrolmentError(f"{root}: no such folder; give --data the folder of a split (images/, labels/)")
    if limit is not None and limit < min_examples:
        raise EnrolmentError(
            f"--limit {limit}: an enrolment needs at least {min_examples} examples per class"
        )
    if (root / cls).is_dir() and not (root / "images").is_dir():
        found = _class_folder(root / cls, limit, progress)
    else:
        found = _yolo_boxes(root, cls, part, limit, progress)
    if len(found.crops) < min_examples:
        extra = f"; {len(found.unreadable)} images did not read" if found.unreadable else ""
        raise EnrolmentError(
            f"{root}: only {len(found.crops)} usable examples of {cls!r}{extra}; an enrolment needs at "
            f"least {min_examples}, more for accuracy (the README's measured curve: examples per class "
            "against F1)"
        )
    return found


def _class_folder(folder: Path, limit: int | None, progress: Progress | None) -> FolderCrops:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise EnrolmentError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)})")
    chosen = [files[i] for i in _spread(list(range(len(files))), limit)]
    out = FolderCrops([], 0, layout="class folder")
    for i, path in enumerate(chosen):
        image = _read(path)
        if image is None:
            out.unreadable.append(path.name)
        elif min(image.shape[:2]) < MIN_SIDE:
            out.skipped_small += 1
        else:
            out.crops.append(image)
            out.images += 1
        if progress:
            progress(i + 1, len(chosen))
    return out


def _holder(box: Box, people: list[Box]) -> Box | None:
    """The smallest person box holding the centre of ``box`` (a vest, a no-vest torso)."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    held = [p for p in people if p[0] <= cx <= p[2] and p[1] <= cy <= p[3]]
    return min(held, key=lambda p: (p[2] - p[0]) * (p[3] - p[1]), default=None)


def _person_shaped(box: Box) -> bool:
    """A box at least 1.8 times as tall as wide: a standing person, not a vest or a torso."""
    w, h = box[2] - box[0], box[3] - box[1]
    return w > 0 and h / w >= PERSON_ASPECT


def _yolo_boxes(root: Path, cls: str, part: str, limit: int | None, progress: Progress | None) -> FolderCrops:
    """The class's boxes; for a scene that looks at a person's part, the part of the labelled person
    who holds each box, or (a split without a person class) of the box itself where it is drawn
    around a whole person, taller than wide by PERSON_ASPECT (so the example
    is cut exactly as the scene cuts people at run time), else the box itself; each grown by the
    part's expand."""
    try:
        data = load_yolo_dataset(root)
    except EvalError as exc:
        raise EnrolmentError(
            f"{exc}; --data takes a YOLO split (images/, labels/, data.yaml) or a folder with one "
            "sub-folder of images per class"
        ) from None
    if cls not in data.names:
        raise EnrolmentError(
            f"{root}: no class {cls!r} in its data.yaml (classes: {', '.join(data.names)}); "
            "pass one of them with --class"
        )
    wanted = data.names.index(cls)
    person_ids = {i for i, n in enumerate(data.names) if n.lower() in PERSON_NAMES and i != wanted}
    by_person = part in PERSON_PARTS and bool(person_ids)
    expand = crop_expand(part)
    boxes = [(i, b) for i, item in enumerate(data.images) for b in item.labels if b.class_id == wanted]
    if not boxes:
        raise EnrolmentError(f"{root}: class {cls!r} is named in data.yaml but no label file has a box of it")
    chosen = [boxes[k] for k in _spread(list(range(len(boxes))), limit)]
    by_image: dict[int, list[LabelBox]] = {}
    for i, b in chosen:
        by_image.setdefault(i, []).append(b)
    out = FolderCrops([], 0)
    for done, (i, labels) in enumerate(sorted(by_image.items())):
        item = data.images[i]
        image = _read(item.image)
        if image is None:
            out.unreadable.append(item.image.name)
        else:
            h, w = image.shape[:2]
            out.images += 1
            people = [b.to_pixels(w, h) for b in item.labels if b.class_id in person_ids]
            for b in labels:
                box = b.to_pixels(w, h)
                holder = _holder(box, people) if by_person else None
                if holder is None and part in PERSON_PARTS and not person_ids and _person_shaped(box):
                    holder = box  # no person class: the class is drawn around the whole person
                if holder is not None:
                    box = part_box(holder, part)
                    out.by_person += 1
                if min(box[2] - box[0], box[3] - box[1]) < MIN_SIDE:
                    out.skipped_small += 1
                    continue
                crop = crop_box(image, box, expand)
                if crop.size:
                    out.crops.append(crop)
                    out.shapes.append(((box[3] - box[1]) / h, (box[2] - box[0]) / max(box[3] - box[1], 1e-6)))
        if progress:
            progress(done + 1, len(by_image))
    return out


BACKGROUND = "background"  # the negative class enrolled beside a people-free positive


def background_crops(
    root: Path,
    cls: str,
    part: str,
    per_image: int = 3,
    limit: int | None = None,
    shapes: Sequence[tuple[float, float]] = (),
) -> list[np.ndarray]:
    """Negatives for a scene that scans the frame (extinguishers): scanning windows of the YOLO
    split's images that hold a box of ``cls`` but do not touch any, ``per_image`` each (spread over
    the image) and shaped like the examples' boxes (``shapes``, as the scene's windows are), so the
    threshold learns what the plant's walls and floors look like. Empty for a folder of class
    sub-folders."""
    from analyzers.crops import scan_boxes
    from analyzers.enrolment.windows import window_shape

    if not (root / "images").is_dir():
        return []
    try:
        data = load_yolo_dataset(root)
    except EvalError:
        return []
    if cls not in data.names:
        return []
    wanted = data.names.index(cls)
    items = [item for item in data.images if any(b.class_id == wanted for b in item.labels)]
    if limit is not None:
        items = [items[i] for i in _spread(list(range(len(items))), max(1, limit // per_image))]
    expand = crop_expand(part)
    out: list[np.ndarray] = []
    for item in items:
        image = _read(item.image)
        if image is None:
            continue
        h, w = image.shape[:2]
        objects = [b.to_pixels(w, h) for b in item.labels if b.class_id == wanted]
        free = [
            box
            for box in scan_boxes(w, h, *window_shape(shapes))
            if not any(
                min(box[2], o[2]) > max(box[0], o[0]) and min(box[3], o[3]) > max(box[1], o[1])
                for o in objects
            )
        ]
        for k in _spread(list(range(len(free))), per_image):
            crop = crop_box(image, free[k], expand)
            if min(crop.shape[:2], default=0) >= MIN_SIDE:
                out.append(crop)
    return out
