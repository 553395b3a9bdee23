"""Training the project's own YOLOX detectors from the pack's COCO weights (needs the ``train`` extra).

``train_detector`` fine-tunes YOLOX-Nano (``yolox_net``) on YOLO-layout splits: backbone frozen (its
folded batch norm too; measured: training every layer on a few thousand photos destroys COCO's person
detection), neck and head trained with the SimOTA loss (``yolox_loss``) on mosaic/affine/colour
augmented squares. A seeded share of the *training* source photos is held out: it chooses the epoch
(early stopping on its mean F1) and each class's detection threshold, stored in the card; the valid
split is only ever measured. Export: ONNX opset 17, dynamic batch, height and width (any multiple of
32), objectness and classes after a sigmoid, as the YOLOX runtime decodes. Same data + seed -> same
weights.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from analyzers.detectors.yolox import decode, make_grid
from analyzers.evaluation import Evaluator, Truth
from analyzers.records import Detection
from analyzers.training.detection_data import (
    DetectionAugment,
    DetectionSet,
    ImageCache,
    holdout,
    letterbox_sample,
    load_source,
    merge,
    training_sample,
)
from analyzers.training.detector_tasks import DETECTOR_TASKS, DetectorTask
from analyzers.training.tasks import Source, resolve, sources_attribution
from analyzers.training.train import file_sha256, seed_everything, write_card

INPUT_NAME, OUTPUT_NAME = "images", "output"
THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.15, 0.81, 0.05))
SCORE_FLOOR = 0.1  # predictions kept for the threshold sweep
NMS_IOU = 0.45
FILL_THRESHOLD = 0.5  # COCO people used as labels where a source lacks them


@dataclass
class DetectorResult:
    task: str
    model_dir: Path
    card_path: Path
    sha256: str
    epochs_run: int
    best_epoch: int
    seconds: float
    counts: dict[str, int]
    thresholds: dict[str, float]
    holdout: dict[str, Any] = field(default_factory=dict)
    valid: dict[str, Any] = field(default_factory=dict)


# --- data ---------------------------------------------------------------------------------------


def build_set(
    task: DetectorTask, sources: Sequence[Source], data_root: Path | None, people: Any = None
) -> DetectionSet:
    """Every source of ``sources`` as one set; classes a source lacks are filled from ``people``
    (a ``people.PeopleFinder`` over the COCO model) where the task says so."""
    sets = []
    for src in sources:
        root = resolve(src.path, data_root)
        fill = {}
        for name in task.fill.get(src.path, ()):
            if name != "person" or people is None:
                continue
            fill[name] = _people_filler(people)
        sets.append(load_source(root, src.class_map, task.classes, fill))
    return merge(sets)


def _people_filler(people: Any) -> Any:
    def boxes(path: Path, image: np.ndarray) -> np.ndarray:
        found = people.people(path, image, FILL_THRESHOLD)
        return np.asarray([d.box for d in found], np.float32).reshape(-1, 4)

    return boxes


# --- inference and scoring on a labelled set (torch, no ONNX) -----------------------------------


def predict(net: Any, data: DetectionSet, size: tuple[int, int], batch: int = 16) -> list[list[Detection]]:
    """Every image's detections (original pixels) above ``SCORE_FLOOR``, letterboxed as at run time."""
    import cv2
    import torch  # type: ignore[import-not-found,unused-ignore]

    grid, strides = make_grid(size, (8, 16, 32))
    net.eval()
    net.export = True
    out: list[list[Detection]] = []
    try:
        for start in range(0, len(data), batch):
            tensors, ratios = [], []
            for item in data.items[start : start + batch]:
                image = cv2.imread(str(item.path), cv2.IMREAD_COLOR)
                if image is None:
                    raise ValueError(f"{item.path}: cannot be read as an image")
                canvas, _, ratio = letterbox_sample(image, np.zeros((0, 4), np.float32), size)
                tensors.append(canvas.transpose(2, 0, 1).astype(np.float32))
                ratios.append(ratio)
            device = next(net.parameters()).device
            with torch.no_grad():
                raw = net(torch.from_numpy(np.stack(tensors)).to(device)).cpu().numpy()
            for r, ratio in zip(raw, ratios, strict=True):
                out.append(decode(r, grid, strides, ratio, list(data.classes), SCORE_FLOOR, NMS_IOU))
    finally:
        net.export = False
    return out


def truths(data: DetectionSet) -> list[list[Truth]]:
    out = []
    for item in data.items:
        boxes = [(float(b[0]), float(b[1]), float(b[2]), float(b[3])) for b in item.boxes]
        out.append([Truth(data.classes[int(c)], box) for box, c in zip(boxes, item.classes, strict=True)])
    return out


def score(
    found: Sequence[Sequence[Detection]],
    gts: Sequence[Sequence[Truth]],
    classes: Sequence[str],
    thresholds: Mapping[str, float],
) -> dict[str, dict[str, Any]]:
    """Object and image-level precision/recall/F1 per class at IoU 0.5, at each class's threshold."""
    evaluator = Evaluator(list(classes))
    for dets, truth in zip(found, gts, strict=True):
        evaluator.add(truth, [d for d in dets if d.score >= thresholds.get(d.label, 0.5)])
    return {name: m.as_dict() for name, m in evaluator.metrics().items()}


def choose_thresholds(
    found: Sequence[Sequence[Detection]], gts: Sequence[Sequence[Truth]], classes: Sequence[str]
) -> tuple[dict[str, float], float]:
    """Per class the threshold of best object F1 (ties: the higher threshold); and the mean F1."""
    chosen, f1s = {}, []
    for name in classes:
        best_t, best_f1 = 0.5, -1.0
        for t in THRESHOLDS:
            m = score(found, gts, [name], {name: t})[name]
            if m["f1"] >= best_f1:
                best_t, best_f1 = t, m["f1"]
        chosen[name] = float(best_t)
        f1s.append(best_f1)
    return chosen, float(np.mean(f1s)) if f1s else 0.0


# --- export and card ----------------------------------------------------------------------------


def export_onnx(net: Any, path: Path, size: int) -> None:
    import warnings

    import torch  # type: ignore[import-not-found,unused-ignore]

    net.eval()
    net.export = True
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                net,
                (torch.zeros(1, 3, size, size),),
                str(path),
                opset_version=17,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={
                    INPUT_NAME: {0: "batch", 2: "height", 3: "width"},
                    OUTPUT_NAME: {0: "batch", 1: "cells"},
                },
                dynamo=False,
            )
    finally:
        net.export = False


def card_dict(
    task: DetectorTask, version: str, sha256: str, thresholds: Mapping[str, float]
) -> dict[str, Any]:
    licence, source = sources_attribution(task.train)
    return {
        "name": task.name,
        "version": version,
        "family": "yolox",
        "file": f"{task.name}.onnx",
        "sha256": sha256,
        "description": task.description,
        "licence": f"Apache-2.0 (weights trained by the vigil project from Megvii's Apache-2.0 YOLOX-Nano "
        f"COCO weights); training data {licence}",
        "source": source,
        "input": {
            "name": INPUT_NAME,
            "size": [task.size, task.size],
            "layout": "NCHW",
            "colour": "BGR",
            "dtype": "float32",
            "scale": 1.0,
            "letterbox": "top_left",
            "pad_value": 114,
        },
        "dynamic_size": True,
        "classes": list(task.classes),
        "thresholds": dict(thresholds),
        "strides": [8, 16, 32],
    }


# --- the loop -----------------------------------------------------------------------------------


def train_detector(
    task_name: str | DetectorTask,
    out_dir: Path,
    coco_onnx: Path,
    coco_classes: Sequence[str],
    epochs: int = 30,
    seed: int = 0,
    *,
    train_sources: Sequence[Source] = (),
    valid_sources: Sequence[Source] = (),
    data_root: Path | None = None,
    people: Any = None,
    batch_size: int = 8,
    lr: float = 5e-4,
    holdout_share: float = 0.15,
    patience: int = 6,
    subset: int | None = None,
    version: str = "0.1.0",
    threads: int = 2,
    freeze_backbone: bool = True,
    augment: DetectionAugment | None = None,
    progress: bool = True,
    command: str = "",
) -> DetectorResult:
    """Train, export and describe one detector, starting from the pack's YOLOX-Nano COCO weights
    (``coco_onnx``, fixed or dynamic size, with its 80 ``coco_classes``); ``people`` fills person
    boxes where a task's source lacks them."""
    import torch  # type: ignore[import-not-found,unused-ignore]
    from tqdm import tqdm

    from analyzers.training.yolox_loss import grid_for, yolox_loss
    from analyzers.training.yolox_net import build

    started = time.monotonic()
    task = DETECTOR_TASKS[task_name] if isinstance(task_name, str) else task_name
    task = task.with_data(list(train_sources), list(valid_sources))
    seed_everything(seed, threads)
    data = build_set(task, task.train, data_root, people)
    valid = build_set(task, task.valid, data_root, people) if task.valid else None
    if people is not None:
        people.save()
    if subset:
        pick = np.random.default_rng(seed).permutation(len(data))[:subset]
        data = data.take(sorted(pick.tolist()))
        if valid is not None:
            valid = valid.take(list(range(min(subset, len(valid)))))
    idx_train, idx_hold = holdout(data, holdout_share, seed)
    train, hold = data.take(idx_train), data.take(idx_hold)
    aug = augment or DetectionAugment()
    rng = np.random.default_rng(seed)
    net = build(list(task.classes), coco_onnx, list(coco_classes))
    if freeze_backbone:
        net.freeze_backbone()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # CPU by default, CUDA when present
    net.to(device)
    params = [p for p in net.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=5e-4)
    steps = max(1, (len(train) + batch_size - 1) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=lr, total_steps=epochs * steps, pct_start=min(0.3, 1.0 / max(epochs, 1))
    )
    grid, strides = grid_for((task.size, task.size), (8, 16, 32))
    grid, strides = grid.to(device), strides.to(device)
    cache = ImageCache(train, task.size)
    pool = list(range(len(train)))
    no_mosaic_from = max(1, int(epochs * 0.8))  # the last epochs see whole photos, as at run time
    hold_truths = truths(hold)
    best = (-1.0, 0)
    best_state: dict[str, Any] | None = None
    best_thresholds: dict[str, float] = dict.fromkeys(task.classes, 0.5)
    bar = tqdm(total=epochs * steps, disable=not progress, unit="batch", dynamic_ncols=True, mininterval=1.0)
    epochs_run = 0
    for epoch in range(1, epochs + 1):
        epochs_run = epoch
        net.train()
        cfg = aug if epoch < no_mosaic_from else DetectionAugment(**{**aug.__dict__, "mosaic": 0.0})
        order = rng.permutation(len(train))
        total, seen = 0.0, 0
        bar.set_description(f"{task.name} epoch {epoch}/{epochs}")
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            samples = [training_sample(cache, int(i), pool, task.size, rng, cfg) for i in idx]
            x = torch.from_numpy(np.stack([s[0].transpose(2, 0, 1) for s in samples]).astype(np.float32))
            x = x.to(device)
            targets = [
                (torch.from_numpy(b).float().to(device), torch.from_numpy(c).long().to(device))
                for _, b, c in samples
            ]
            loss, _parts = yolox_loss(net(x), targets, grid, strides)
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 10.0)
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * len(idx)
            seen += len(idx)
            bar.update(1)
            bar.set_postfix(loss=f"{total / max(seen, 1):.3f}")
        if len(hold):
            thresholds, mean_f1 = choose_thresholds(
                predict(net, hold, (task.size, task.size)), hold_truths, task.classes
            )
        else:
            thresholds, mean_f1 = best_thresholds, -total / max(seen, 1)
        bar.set_postfix(loss=f"{total / max(seen, 1):.3f}", hold_f1=f"{mean_f1:.3f}")
        if mean_f1 > best[0]:
            best = (mean_f1, epoch)
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            best_thresholds = thresholds
        elif epoch - best[1] >= patience:
            bar.write(
                f"{task.name}: early stop at epoch {epoch} (best hold-out F1 {best[0]:.3f} at {best[1]})"
            )
            break
    bar.close()
    if best_state is not None:
        net.load_state_dict(best_state)

    net.to("cpu")
    model_dir = out_dir / task.name
    onnx_path = model_dir / f"{task.name}.onnx"
    export_onnx(net, onnx_path, task.size)
    digest = file_sha256(onnx_path)
    result = DetectorResult(
        task.name,
        model_dir,
        out_dir / f"{task.name}.yaml",
        digest,
        epochs_run,
        best[1],
        0.0,
        data.counts(),
        best_thresholds,
    )
    size = (task.size, task.size)
    if len(hold):
        result.holdout = score(predict(net, hold, size), hold_truths, task.classes, best_thresholds)
    if valid is not None and len(valid):
        result.valid = score(predict(net, valid, size), truths(valid), task.classes, best_thresholds)
    result.seconds = round(time.monotonic() - started, 1)
    header = [
        f"{task.name} detector trained by `vigil train {task.name}` (seed {seed}, {epochs_run} epochs, best "
        f"{result.best_epoch}, {result.seconds:.0f} s wall on CPU, backbone "
        f"{'frozen' if freeze_backbone else 'trained'}).",
        f"Command: {command}" if command else "",
        f"Training boxes per class: {json.dumps(result.counts)}",
        "Thresholds and the epoch were chosen on a hold-out carved from train; `valid` was only measured.",
    ]
    for name, m in result.valid.items():
        header.append(
            f"valid {name:10} P {m['precision']:.3f} R {m['recall']:.3f} F1 {m['f1']:.3f} "
            f"image F1 {m['image_f1']:.3f} (n={m['support']}) at {best_thresholds[name]:.2f} "
            f"(letterboxed {task.size}x{task.size}, IoU 0.5)"
        )
    header.append(f"Attribution: {sources_attribution(task.train)[1]}")
    write_card(result.card_path, card_dict(task, version, digest, best_thresholds), [h for h in header if h])
    (model_dir / "metrics.json").write_text(
        json.dumps(
            {
                "task": task.name,
                "version": version,
                "seed": seed,
                "epochs": epochs,
                "epochs_run": epochs_run,
                "best_epoch": result.best_epoch,
                "seconds": result.seconds,
                "train_counts": result.counts,
                "train_images": len(train),
                "holdout_images": len(hold),
                "thresholds": best_thresholds,
                "holdout": result.holdout,
                "valid": result.valid,
                "valid_sources": [s.path for s in task.valid],
                "command": command,
            },
            indent=1,
        ),
        encoding="utf-8",
    )
    return result


def summary(result: DetectorResult) -> str:
    lines = [
        f"{result.task}: {result.epochs_run} epochs (best {result.best_epoch}), {result.seconds:.0f} s, "
        f"ONNX {result.model_dir / (result.task + '.onnx')} sha256 {result.sha256[:16]}...",
        f"card {result.card_path}",
        f"thresholds (hold-out): {yaml.safe_dump(result.thresholds, default_flow_style=True).strip()}",
    ]
    for what, rows in (("hold-out", result.holdout), ("valid", result.valid)):
        for name, m in rows.items():
            lines.append(
                f"  {what:8} {name:10} P {m['precision']:.3f} R {m['recall']:.3f} F1 {m['f1']:.3f} "
                f"image F1 {m['image_f1']:.3f} n={m['support']}"
            )
    return "\n".join(lines)
