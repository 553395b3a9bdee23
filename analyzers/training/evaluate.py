"""Precision, recall and F1 per class for a classifier, at object level (one crop per labelled box)
and at image level (a frame shows a class when any of its crops does). No torch: the exported ONNX
model runs through the analyzers' classifier loader, exactly as the gateway runs it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from analyzers.detectors.classifier import ImageClassifier
from analyzers.runtime.card import ModelCard, load_card, read_card
from analyzers.training.data import CropSet

if TYPE_CHECKING:
    from analyzers.training.tasks import Mode, TaskSpec


def prf(tp: int, fp: int, fn: int) -> dict[str, Any]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {
        "precision": round(p, 4),
        "recall": round(r, 4),
        "f1": round(f, 4),
        "support": tp + fn,
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


def decide(probs: np.ndarray, multilabel: bool, threshold: float = 0.5) -> np.ndarray:
    """[N, C] probabilities -> [N, C] booleans: argmax (single-label) or >= threshold (multi-label)."""
    if multilabel:
        return probs >= threshold
    out = np.zeros_like(probs, dtype=bool)
    if len(probs):
        out[np.arange(len(probs)), probs.argmax(1)] = True
    return out


def per_class(truth: np.ndarray, pred: np.ndarray, classes: Sequence[str]) -> dict[str, dict[str, Any]]:
    result = {}
    for k, name in enumerate(classes):
        t, p = truth[:, k].astype(bool), pred[:, k].astype(bool)
        result[name] = prf(int((t & p).sum()), int((~t & p).sum()), int((t & ~p).sum()))
    return result


def metrics(
    probs: np.ndarray, data: CropSet, multilabel: bool, threshold: float = 0.5
) -> dict[str, dict[str, dict[str, Any]]]:
    """{"object": {class: {...}}, "image": {class: {...}}} for predictions over ``data``."""
    truth = data.targets >= 0.5
    pred = decide(probs, multilabel, threshold)
    out = {"object": per_class(truth, pred, data.classes)}
    if data.image_ids:
        ids = sorted(set(data.image_ids))
        row = {i: n for n, i in enumerate(ids)}
        t_img = np.zeros((len(ids), len(data.classes)), bool)
        p_img = np.zeros_like(t_img)
        for k, image_id in enumerate(data.image_ids):
            t_img[row[image_id]] |= truth[k]
            p_img[row[image_id]] |= pred[k]
        out["image"] = per_class(t_img, p_img, data.classes)
    return out


def load_classifier(model_dir: Path, card_path: Path | None = None, threads: int = 0) -> ImageClassifier:
    card = read_card(card_path, model_dir) if card_path is not None else load_card(model_dir)
    return ImageClassifier(card, model_dir, threads)


def predict(classifier: ImageClassifier, data: CropSet) -> np.ndarray:
    """Class probabilities for every sample, through the card's own pre-processing (the samples are
    already letterboxed to the input size, so the loader's letterbox leaves them as they are)."""
    return classifier.classify(list(data.images))


def evaluate_model(
    model_dir: Path, data: CropSet, multilabel: bool, card_path: Path | None = None
) -> dict[str, dict[str, dict[str, Any]]]:
    classifier = load_classifier(model_dir, card_path)
    if list(classifier.labels) != list(data.classes):
        raise ValueError(
            f"{model_dir}: model classes {classifier.labels} differ from the data's {data.classes}"
        )
    return metrics(predict(classifier, data), data, multilabel)


def format_metrics(result: dict[str, dict[str, dict[str, Any]]]) -> str:
    lines = [f"{'level':7} {'class':14} {'P':>6} {'R':>6} {'F1':>6} {'support':>8}"]
    for level, rows in result.items():
        for name, m in rows.items():
            p, r, f = m["precision"], m["recall"], m["f1"]
            lines.append(f"{level:7} {name:14} {p:6.3f} {r:6.3f} {f:6.3f} {m['support']:8d}")
    return "\n".join(lines)


# --- a classifier card on a labelled folder (`vigil eval`, `vigil models test`) -----------------------


def default_class_map(
    spec: TaskSpec, names: Sequence[str], explicit: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Dataset class -> task class: ``explicit`` (--map), else the task's known dataset names, else
    same-named classes (case-insensitive; for the extinguisher any class whose name contains it)."""
    if explicit:
        return dict(explicit)
    known: dict[str, str] = {}
    for src in (*spec.train, *spec.valid):
        known.update(src.class_map)
    mapping = {}
    for name in names:
        if name in known:
            mapping[name] = known[name]
        elif name.lower() in spec.classes:
            mapping[name] = name.lower()
        elif spec.name == "extinguisher" and "extinguisher" in name.lower():
            mapping[name] = "extinguisher"
    return mapping


def card_spec(card: ModelCard) -> TaskSpec:
    """How to cut evaluation samples for a classifier card as its runtime cuts them: the trained
    task's recipe when the card is one of the project's tasks, else one derived from the card."""
    from analyzers.crops import crop_expand
    from analyzers.training.tasks import TASKS, TaskSpec

    task = TASKS.get(card.name)
    crop = card.crop or (task.crop if task is not None else "box")
    mode: Mode = {"frame": "image", "grid": "patch"}.get(crop, "crop")  # type: ignore[assignment]
    size = (int(card.input.size[0]), int(card.input.size[1]))
    if task is not None and list(task.classes) == list(card.classes):
        return replace(task, size=size, crop=crop, mode="folder" if task.mode == "folder" else mode)
    return TaskSpec(
        card.name,
        tuple(card.classes),
        mode,
        size,
        expand=crop_expand(crop),
        multilabel=card.activation == "sigmoid",
        crop=crop,
    )


def card_samples(
    card: ModelCard,
    root: Path,
    class_map: Mapping[str, str] | None = None,
    cache_dir: Path | None = None,
) -> tuple[CropSet, TaskSpec]:
    """The labelled samples of ``root`` cut for ``card``: a YOLO split (one crop per labelled box of a
    mapped class, or whole frames / grid patches), or a folder with one sub-folder per class."""
    from analyzers.evaluation import find_data_yaml, read_names
    from analyzers.training.data import DataError
    from analyzers.training.tasks import Source, build_set

    spec = card_spec(card)
    if all((root / c).is_dir() for c in spec.classes) and not (root / "images").is_dir():
        spec = replace(spec, mode="folder")
        cmap: dict[str, str] = {}
    else:
        if spec.mode == "folder":
            raise DataError(
                f"{root}: {card.name} is evaluated on a folder with one sub-folder per class "
                f"({', '.join(spec.classes)})"
            )
        cmap = default_class_map(spec, read_names(find_data_yaml(root)), class_map)
        if not cmap:
            raise DataError(
                f"{root}: no class of the data set is a class of {card.name} ({', '.join(spec.classes)}); "
                "map them with --map DATASET_CLASS=MODEL_CLASS"
            )
    return build_set(spec, (Source(str(root), cmap),), None, cache_dir), spec


def evaluate_card(
    model_dir: Path,
    root: Path,
    class_map: Mapping[str, str] | None = None,
    card_path: Path | None = None,
    cache_dir: Path | None = None,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Precision, recall and F1 per class of a classifier card on a labelled folder, at object level
    (one sample per labelled box, cut as at run time) and image level (any of a frame's crops)."""
    classifier = load_classifier(model_dir, card_path)
    data, spec = card_samples(classifier.card, root, class_map, cache_dir)
    if len(data) == 0:
        raise ValueError(
            f"{root}: no samples of {', '.join(spec.classes)} to evaluate {classifier.card.name} on"
        )
    return metrics(predict(classifier, data), data, spec.multilabel)


def summarise(result: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """Per-class rows with object- and image-level numbers side by side (the shape `vigil models test`
    prints and stores), and the macro means over classes as ``overall``."""
    rows: dict[str, dict[str, Any]] = {}
    image = result.get("image", {})
    for name, m in result.get("object", {}).items():
        i = image.get(name, m)
        rows[name] = {
            **m,
            "image_precision": i["precision"],
            "image_recall": i["recall"],
            "image_f1": i["f1"],
            "image_support": i["support"],
        }
    keys = ("precision", "recall", "f1", "image_precision", "image_recall", "image_f1")
    overall = {k: round(float(np.mean([r[k] for r in rows.values()])), 4) if rows else 0.0 for k in keys}
    return {"classes": rows, "overall": {**overall, "average": "macro over classes"}}
