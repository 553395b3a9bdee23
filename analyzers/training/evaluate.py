"""Precision, recall and F1 per class for a classifier, at object level (one crop per labelled box)
and at image level (a frame shows a class when any of its crops does). No torch: the exported ONNX
model runs through the analyzers' classifier loader, exactly as the gateway runs it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from analyzers.detectors.classifier import ImageClassifier
from analyzers.runtime.card import load_card, read_card
from analyzers.training.data import CropSet


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
