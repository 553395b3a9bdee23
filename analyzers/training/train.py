"""Training loop, ONNX export and model card for the crop/image classifiers (needs the ``train`` extra).

``train_classifier`` works for any task of ``tasks.TASKS`` or any labelled YOLO folder (a plant's own
extinguisher photos): samples are cut once (cached), a seeded share of the *training* source photos is
held out for early stopping (the valid split is only ever measured, never tuned on), the network is
trained with the standard's augmentations, exported to ONNX (opset 17, dynamic batch) and described by
a model card the gateway's classifier loader reads. Same data + same seed -> same weights.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from analyzers.training.augment import AugmentConfig, augment_batch
from analyzers.training.data import CropSet
from analyzers.training.evaluate import decide, evaluate_model, format_metrics, per_class
from analyzers.training.tasks import TASKS, Source, TaskSpec, attribution, build_set

MEAN, STD = 0.5, 0.25  # after scaling pixels to 0..1; written into the card
INPUT_NAME, OUTPUT_NAME = "images", "logits"


@dataclass
class TrainResult:
    task: str
    model_dir: Path  # holds <name>.onnx and metrics.json
    card_path: Path  # <out>/<name>.yaml (the pack convention: config/models/<name>.yaml)
    sha256: str
    epochs_run: int
    best_epoch: int
    seconds: float
    parameters: int
    counts: dict[str, int]
    holdout: dict[str, Any] = field(default_factory=dict)
    valid: dict[str, Any] = field(default_factory=dict)
    # per valid source: the scene end to end (person detector -> part -> classifier), see people.py
    end_to_end: dict[str, Any] = field(default_factory=dict)


def seed_everything(seed: int, threads: int) -> None:
    import random

    import torch  # type: ignore[import-not-found,unused-ignore]

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(max(1, threads))
    torch.use_deterministic_algorithms(True, warn_only=True)


def holdout_split(data: CropSet, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, hold-out): whole source photos go to one side, chosen by the seed."""
    groups = data.groups or [str(i) for i in range(len(data))]
    names = sorted(set(groups))
    rng = np.random.default_rng(seed + 7919)
    held = (
        set(rng.permutation(names)[: max(1, int(round(len(names) * share)))].tolist()) if share > 0 else set()
    )
    idx_hold = np.asarray([i for i, g in enumerate(groups) if g in held], np.int64)
    idx_train = np.asarray([i for i, g in enumerate(groups) if g not in held], np.int64)
    if len(idx_train) == 0:
        return np.arange(len(data)), np.zeros(0, np.int64)
    return idx_train, idx_hold


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _loss_fn(spec: TaskSpec, train: CropSet) -> Any:
    import torch  # type: ignore[import-not-found,unused-ignore]
    from torch import nn  # type: ignore[import-not-found,unused-ignore]

    counts = train.targets.sum(0)
    if spec.multilabel:
        neg = len(train) - counts
        pos_weight = torch.tensor(np.clip(neg / np.maximum(counts, 1), 0.5, 5.0), dtype=torch.float32)
        return nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    weights = len(train) / (len(spec.classes) * np.maximum(counts, 1))
    return nn.CrossEntropyLoss(weight=torch.tensor(weights, dtype=torch.float32), label_smoothing=0.05)


def _logits(model: Any, images: np.ndarray, batch: int = 256) -> np.ndarray:
    import torch  # type: ignore[import-not-found,unused-ignore]

    from analyzers.training.model import to_input

    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(images), batch):
            out.append(model(to_input(images[start : start + batch], MEAN, STD)).numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def _activate(logits: np.ndarray, multilabel: bool) -> np.ndarray:
    if multilabel:
        return np.asarray(1 / (1 + np.exp(-logits)), np.float32)
    e = np.exp(logits - logits.max(1, keepdims=True))
    return np.asarray(e / e.sum(1, keepdims=True), np.float32)


def macro_f1(probs: np.ndarray, data: CropSet, multilabel: bool) -> float:
    rows = per_class(data.targets >= 0.5, decide(probs, multilabel), data.classes)
    return float(np.mean([m["f1"] for m in rows.values()]))


def export_onnx(model: Any, path: Path, size: tuple[int, int]) -> None:
    import torch  # type: ignore[import-not-found,unused-ignore]

    model.eval()
    width, height = size
    dummy = torch.zeros(1, 3, height, width)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (dummy,),
            str(path),
            opset_version=17,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            dynamo=False,
        )


def card_dict(spec: TaskSpec, version: str, sha256: str, description: str) -> dict[str, Any]:
    data_licence, source = attribution(spec)
    return {
        "name": spec.name,
        "version": version,
        "family": "classifier",
        "file": f"{spec.name}.onnx",
        "sha256": sha256,
        "description": description,
        "licence": f"Apache-2.0 (weights trained by the vigil project); training data {data_licence}",
        "source": source,
        "input": {
            "name": INPUT_NAME,
            "size": list(spec.size),
            "layout": "NCHW",
            "colour": "BGR",
            "dtype": "float32",
            "scale": 1 / 255,
            "letterbox": "centre",
            "pad_value": 114,
            "mean": [MEAN] * 3,
            "std": [STD] * 3,
        },
        "classes": list(spec.classes),
        "activation": "sigmoid" if spec.multilabel else "softmax",
        "crop": spec.crop,
    }


def write_card(path: Path, card: dict[str, Any], header: Sequence[str]) -> None:
    text = "".join(f"# {line}\n" for line in header) + yaml.safe_dump(
        card, sort_keys=False, allow_unicode=True
    )
    path.write_text(text, encoding="utf-8")


def _as_crop_set(
    spec: TaskSpec,
    source: CropSet | Sequence[Source] | None,
    default: tuple[Source, ...],
    data_root: Path | None,
    cache_dir: Path | None,
    seed: int,
    people: Any = None,
) -> CropSet | None:
    if isinstance(source, CropSet):
        return source
    sources = tuple(source) if source else default
    if not sources:
        return None
    return build_set(spec, sources, data_root, cache_dir, seed, people)


def train_classifier(
    task_name: str | TaskSpec,
    crops_source: CropSet | Sequence[Source] | None,
    out_dir: Path,
    epochs: int = 30,
    seed: int = 0,
    *,
    valid_source: CropSet | Sequence[Source] | None = None,
    data_root: Path | None = None,
    cache_dir: Path | None = None,
    batch_size: int = 64,
    lr: float = 3e-3,
    holdout: float = 0.15,
    patience: int = 6,
    subset: int | None = None,
    version: str = "0.1.0",
    threads: int = 2,
    width: float = 1.0,
    augment_cfg: AugmentConfig | None = None,
    progress: bool = True,
    command: str = "",
    people: Any = None,
) -> TrainResult:
    """Train, export and describe one classifier. ``crops_source``: a ready CropSet, YOLO/folder
    sources, or None for the task's default data under ``data_root``. ``people``: a
    ``people.PeopleFinder`` (the person detector), needed by ``spec.crops`` detector/both and used to
    measure a person-part task end to end on its valid sources. The valid split is always measured
    on crops of its labelled boxes (comparable between crop sources)."""
    import torch  # type: ignore[import-not-found,unused-ignore]
    from tqdm import tqdm

    from analyzers.training.model import SmallNet, count_parameters, to_input

    started = time.monotonic()
    spec = TASKS[task_name] if isinstance(task_name, str) else task_name
    if isinstance(crops_source, Sequence) and not isinstance(crops_source, CropSet) and crops_source:
        spec = spec.with_data(list(crops_source), [])
    if isinstance(valid_source, Sequence) and not isinstance(valid_source, CropSet) and valid_source:
        spec = spec.with_data([], list(valid_source))
    seed_everything(seed, threads)
    data = _as_crop_set(spec, crops_source, spec.train, data_root, cache_dir, seed, people)
    if data is None:
        raise ValueError(f"task {spec.name}: no training data; pass --data")
    valid = _as_crop_set(replace(spec, crops="gt"), valid_source, spec.valid, data_root, cache_dir, seed)
    if subset:
        data = data.subset(subset, seed)
        valid = valid.subset(subset, seed) if valid is not None else None
    idx_train, idx_hold = holdout_split(data, holdout, seed)
    train, hold = data.take(idx_train), data.take(idx_hold)
    aug = augment_cfg or AugmentConfig()
    rng = np.random.default_rng(seed)

    model = SmallNet(len(spec.classes), width)
    loss_fn = _loss_fn(spec, train)
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    steps_per_epoch = max(1, (len(train) + batch_size - 1) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=lr, total_steps=epochs * steps_per_epoch, pct_start=0.15
    )
    best_score, best_loss, best_epoch, best_state = -1.0, float("inf"), 0, None
    bar = tqdm(
        total=epochs * steps_per_epoch,
        disable=not progress,
        unit="batch",
        dynamic_ncols=True,
        mininterval=1.0,
    )
    epochs_run = 0
    for epoch in range(1, epochs + 1):
        epochs_run = epoch
        model.train()
        order = rng.permutation(len(train))
        total, seen = 0.0, 0
        bar.set_description(f"{spec.name} epoch {epoch}/{epochs}")
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            if len(idx) < 2:  # BatchNorm needs two samples
                bar.update(1)
                continue
            images = augment_batch(train.images[idx], rng, aug)
            x = to_input(images, MEAN, STD)
            target = torch.from_numpy(train.targets[idx])
            logits = model(x)
            loss = loss_fn(logits, target if spec.multilabel else target.argmax(1))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item() * len(idx)
            seen += len(idx)
            bar.update(1)
            bar.set_postfix(loss=f"{total / max(seen, 1):.4f}")
        if len(hold):
            logits_np = _logits(model, hold.images)
            score = macro_f1(_activate(logits_np, spec.multilabel), hold, spec.multilabel)
            with torch.no_grad():
                h_target = torch.from_numpy(hold.targets)
                h_loss = float(
                    loss_fn(torch.from_numpy(logits_np), h_target if spec.multilabel else h_target.argmax(1))
                )
        else:
            score, h_loss = 0.0, total / max(seen, 1)
        bar.set_postfix(loss=f"{total / max(seen, 1):.4f}", hold_f1=f"{score:.3f}", hold_loss=f"{h_loss:.3f}")
        if score > best_score or (score == best_score and h_loss < best_loss):
            best_score, best_loss, best_epoch = score, h_loss, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        elif epoch - best_epoch >= patience:
            bar.write(
                f"{spec.name}: early stop at epoch {epoch} (best hold-out macro F1 {best_score:.3f} "
                f"at epoch {best_epoch})"
            )
            break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)

    model_dir = out_dir / spec.name
    onnx_path = model_dir / f"{spec.name}.onnx"
    export_onnx(model, onnx_path, spec.size)
    digest = file_sha256(onnx_path)
    card_path = out_dir / f"{spec.name}.yaml"
    result = TrainResult(
        spec.name,
        model_dir,
        card_path,
        digest,
        epochs_run,
        best_epoch,
        0.0,
        count_parameters(model),
        data.counts(),
    )
    if len(hold):
        from analyzers.training.evaluate import metrics

        result.holdout = metrics(
            _activate(_logits(model, hold.images), spec.multilabel), hold, spec.multilabel
        )
    write_card(card_path, card_dict(spec, version, digest, spec.description), [f"vigil-trained {spec.name}"])
    if valid is not None and len(valid):
        result.valid = evaluate_model(model_dir, valid, spec.multilabel, card_path)
    if people is not None and spec.mode == "crop" and not isinstance(valid_source, CropSet) and not subset:
        result.end_to_end = _end_to_end(spec, model_dir, card_path, data_root, people)
    result.seconds = round(time.monotonic() - started, 1)
    header = [
        f"{spec.name} classifier trained by `vigil train {spec.name}` (seed {seed}, {epochs_run} epochs, "
        f"best {best_epoch}, {result.seconds:.0f} s wall on CPU, {result.parameters} parameters).",
        f"Training samples per class: {json.dumps(result.counts)}",
        "Early stopping on a held-out share of the training photos; `valid` below was only measured.",
    ]
    for level, rows in result.valid.items():
        for name, m in rows.items():
            header.append(
                f"valid {level:6} {name:12} P {m['precision']:.3f} R {m['recall']:.3f} "
                f"F1 {m['f1']:.3f} (n={m['support']})"
            )
    for split, levels in result.end_to_end.items():
        for level, rows in levels.items():
            for name, m in rows.items():
                header.append(
                    f"end to end {split} {level:6} {name:10} P {m['precision']:.3f} R {m['recall']:.3f} "
                    f"F1 {m['f1']:.3f} (n={m['support']})"
                )
    header.append(f"Attribution: {attribution(spec)[1]}")
    write_card(card_path, card_dict(spec, version, digest, spec.description), header)
    (model_dir / "metrics.json").write_text(
        json.dumps(
            {
                "task": spec.name,
                "version": version,
                "seed": seed,
                "epochs": epochs,
                "epochs_run": epochs_run,
                "best_epoch": best_epoch,
                "seconds": result.seconds,
                "parameters": result.parameters,
                "train_counts": result.counts,
                "holdout": result.holdout,
                "valid": result.valid,
                "end_to_end": result.end_to_end,
                "crops": spec.crops,
                "valid_sources": [s.path for s in spec.valid]
                if not isinstance(valid_source, CropSet)
                else [],
                "command": command,
            },
            indent=1,
        ),
        encoding="utf-8",
    )
    return result


def _end_to_end(
    spec: TaskSpec, model_dir: Path, card_path: Path, data_root: Path | None, people: Any
) -> dict[str, Any]:
    """The scene end to end on every valid source of a person-part task (see people.py)."""
    from analyzers.crops import PEOPLE_FREE
    from analyzers.training.evaluate import load_classifier
    from analyzers.training.people import evaluate_people_scene
    from analyzers.training.tasks import resolve

    if spec.crop in PEOPLE_FREE or spec.crop == "box":
        return {}
    classifier = load_classifier(model_dir, card_path)
    out = {}
    for src in spec.valid:
        root = resolve(src.path, data_root)
        cmap = dict(src.class_map) or {c: c for c in spec.classes}
        out[src.path] = evaluate_people_scene(classifier, people, root, cmap, spec.crop)
    return out


def summary(result: TrainResult) -> str:
    lines = [
        f"{result.task}: {result.epochs_run} epochs (best {result.best_epoch}), {result.seconds:.0f} s, "
        f"{result.parameters} parameters, ONNX {result.model_dir / (result.task + '.onnx')} "
        f"sha256 {result.sha256[:16]}...",
        f"card {result.card_path}",
    ]
    if result.holdout:
        lines += ["hold-out (part of train, early stopping):", format_metrics(result.holdout)]
    if result.valid:
        lines += ["valid:", format_metrics(result.valid)]
    for split, levels in result.end_to_end.items():
        lines += [f"end to end (person detector -> {result.task} crop) on {split}:", format_metrics(levels)]
    return "\n".join(lines)
