"""`vigil train TASK`: train one of the project's models, export ONNX + model card, report metrics.

Classifier tasks: helmet, workwear, fire (flame + smoke), smoking, extinguisher (needs --data).
Detector tasks (YOLOX-Nano fine-tuned from the pack's COCO weights, analyzers.training.train_detector):
ppe (person, head, helmet, vest), cigarette, phone. Without --data a
task reads its default datasets under --data-root (or $VIGIL_DATA_DIR). --data takes YOLO splits
(DIR/images + DIR/labels + data.yaml), a folder with train/ and valid/ splits, or for smoking a folder
with one sub-folder per class. Training needs the ``train`` extra (PyTorch CPU); ``--evaluate`` only
needs the runtime. Exit status 0 on success, 2 on bad input.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.cli.common import open_config, open_database
from gateway.cli.evaluate import resolve_model
from gateway.config.schema import ConfigError
from gateway.db import SchemaOutdated
from gateway.models.versions import ModelVersionError, register_version
from gateway.samples.library import SampleError, SampleLibrary

DATA_ENV = "VIGIL_DATA_DIR"
CACHE_ENV = "VIGIL_TRAIN_CACHE"
TASK_NAMES = ("helmet", "workwear", "fire", "smoking", "extinguisher", "fire_patch")
DETECTOR_NAMES = ("ppe", "cigarette", "phone")  # YOLOX detectors fine-tuned from the pack's COCO weights


def register(sub: Any) -> None:
    """Add `vigil train` to the top-level sub-command parsers."""
    p = sub.add_parser(
        "train",
        help="train a classifier (helmet, workwear, fire, smoking, extinguisher) or a detector (ppe, "
        "cigarette, phone) and export ONNX + card",
        description=(
            "Train on CPU (or GPU when torch sees one) with augmentation and early stopping on a held-out "
            "part of the training photos, export ONNX (opset 17) with a model card, and report precision, "
            "recall and F1 per class on the valid split (object and image level)."
        ),
    )
    p.add_argument("task", choices=TASK_NAMES + DETECTOR_NAMES)
    p.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="PATH",
        help="training data (repeatable): a YOLO split, a folder with train/ and valid/, "
        "or a folder per class (smoking)",
    )
    p.add_argument(
        "--valid",
        action="append",
        default=[],
        metavar="PATH",
        help="validation data (repeatable); only measured, never tuned on",
    )
    p.add_argument(
        "--data-root", metavar="DIR", help=f"folder holding the default datasets (default ${DATA_ENV})"
    )
    p.add_argument(
        "--map",
        metavar="A=B,...",
        help="dataset class = task class pairs for --data, e.g. 'Fire Extinguisher=extinguisher'",
    )
    p.add_argument("--epochs", type=int, default=40, help="maximum epochs (default 40; early stopping)")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same weights)")
    p.add_argument(
        "--out",
        default="trained-models",
        metavar="DIR",
        help="writes DIR/TASK.yaml (card) and DIR/TASK/TASK.onnx (default ./trained-models)",
    )
    p.add_argument("--subset", type=int, metavar="N", help="use N samples only (CI smoke runs)")
    p.add_argument(
        "--cache", metavar="DIR", help=f"crop cache (default ${CACHE_ENV} or ~/.cache/vigil/train)"
    )
    p.add_argument(
        "--version", help="version written into the card (default 0.1.0; library runs: a UTC time stamp)"
    )
    p.add_argument("--threads", type=int, default=2, help="CPU threads for torch (default 2)")
    p.add_argument("--size", type=int, metavar="PX", help="square input size (default: the task's)")
    p.add_argument("--batch", type=int, help="batch size (default 64; detectors 8)")
    p.add_argument("--lr", type=float, help="peak learning rate (default 0.003; detectors 0.001)")
    p.add_argument(
        "--train-backbone",
        action="store_true",
        help="detectors: train the backbone too (default frozen: measured, training it on a few thousand "
        "photos destroys the COCO person detection)",
    )
    p.add_argument(
        "--patience", type=int, help="epochs without hold-out gain before stopping (default 10; detectors 6)"
    )
    p.add_argument(
        "--evaluate",
        metavar="MODEL_DIR",
        help="only evaluate this model folder (DIR/model.yaml or the card DIR/../NAME.yaml)",
    )
    p.add_argument(
        "--library",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="train on the task's samples in the sample library (its stored 8:2 split: train on the "
        "train set, evaluate on the test set) and register a model version naming both sets; "
        "default: when the library has samples of the task and no --data is given",
    )
    p.add_argument(
        "--register",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="register the result as a candidate model version (default: with --library)",
    )
    p.add_argument(
        "--crops",
        choices=("gt", "detector", "both"),
        default="gt",
        help="crop tasks of a person's part (helmet, workwear): samples cut around the labelled boxes "
        "(gt, default), from the person detector's boxes exactly as the scene cuts them (detector), or "
        "both plus a jittered copy of every labelled box (both)",
    )
    p.add_argument(
        "--people-model",
        default="yolox_nano",
        metavar="DIR_OR_NAME",
        help="the person detector for --crops detector/both and the end-to-end measurement "
        "(default yolox_nano: imported, or in $VIGIL_MODELS_DIR)",
    )
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)


def _parse_map(text: str | None) -> dict[str, str]:
    from analyzers.evaluation import parse_class_map

    return parse_class_map(text)


def _default_map(spec: Any, root: Path, explicit: dict[str, str]) -> dict[str, str]:
    """Dataset class -> task class of a data set under ``root``: --map, else as `vigil eval` maps
    (analyzers.training.evaluate.default_class_map); a folder task's classes are its folders."""
    if explicit:
        return explicit
    if spec.mode == "folder":
        return {}
    from analyzers.evaluation import find_data_yaml, read_names
    from analyzers.training.evaluate import default_class_map

    return default_class_map(spec, read_names(find_data_yaml(root)))


def _roots(args: argparse.Namespace) -> tuple[Path | None, Path]:
    """The default datasets' folder (--data-root or $VIGIL_DATA_DIR) and the training cache."""
    root_text = args.data_root or os.environ.get(DATA_ENV)
    data_root = Path(root_text).expanduser() if root_text else None
    cache_text = args.cache or os.environ.get(CACHE_ENV)
    cache = Path(cache_text).expanduser() if cache_text else Path.home() / ".cache" / "vigil" / "train"
    return data_root, cache


def _sources(paths: list[str], class_map: Callable[[Path], dict[str, str]]) -> tuple[list[Any], list[Any]]:
    """(train, valid) sources of the command line's folders: a YOLO split itself, or a folder with
    train/ (and valid/) splits; ``class_map(split)`` gives each split's dataset class -> task class."""
    from analyzers.training import Source

    train: list[Any] = []
    valid: list[Any] = []
    for text in paths:
        path = Path(text).expanduser()
        splits = [(path, train)]
        if not (path / "images").is_dir() and (path / "train").is_dir():
            splits = [(path / "train", train)] + (
                [(path / "valid", valid)] if (path / "valid").is_dir() else []
            )
        for split, into in splits:
            into.append(Source(str(split.resolve()), class_map(split)))
    return train, valid


def _print_metrics(result: dict[str, Any], as_json: bool) -> None:
    from analyzers.training import format_metrics

    print(json.dumps(result, indent=1) if as_json else format_metrics(result))


def _evaluate_only(
    args: argparse.Namespace, spec: Any, valid: list[Any], data_root: Path | None, cache: Path | None
) -> int:
    from analyzers.training import build_set, evaluate_model

    model_dir = Path(args.evaluate)
    card = None if (model_dir / "model.yaml").is_file() else model_dir.parent / f"{model_dir.name}.yaml"
    data = build_set(spec, tuple(valid) or spec.valid, data_root, cache)
    if args.subset:
        data = data.subset(args.subset, args.seed)
    result = evaluate_model(model_dir, data, spec.multilabel, card)
    _print_metrics(result, args.json)
    return 0


def _command(args: argparse.Namespace) -> str:
    """The command line that reproduces this run (for metrics.json)."""
    words = ["vigil", "train", args.task]
    for flag in ("data", "valid"):
        for value in getattr(args, flag):
            words += [f"--{flag}", value]
    if getattr(args, "crops", "gt") != "gt":
        words += ["--crops", args.crops]
    for flag in ("map", "epochs", "seed", "subset", "size", "version", "batch", "lr", "patience"):
        value = getattr(args, flag)
        if value is not None:
            words += [f"--{flag}", str(value)]
    if args.data_root or os.environ.get(DATA_ENV):
        words += ["--data-root", "$" + DATA_ENV if not args.data_root else "DATA_ROOT"]
    return shlex.join(words)


def _people(args: argparse.Namespace, spec: Any, cache: Path) -> Any:
    """The person detector (cached boxes) for --crops detector/both; for --crops gt it is only used
    to measure a person-part task end to end, and its absence is no error then."""
    from analyzers.crops import PEOPLE_FREE
    from analyzers.detectors import load_detector
    from analyzers.evaluation import EvalError
    from analyzers.training.people import PeopleFinder

    if spec.mode != "crop" or spec.crop in PEOPLE_FREE or spec.crop == "box":
        if args.crops != "gt":
            raise ValueError(f"--crops {args.crops} needs a task of a person's part (helmet, workwear)")
        return None
    try:
        found = resolve_model(args.people_model, argparse.Namespace(config=getattr(args, "config", None)))
    except EvalError as exc:
        if args.crops == "gt":
            return None
        raise ValueError(f"--crops {args.crops} needs the person detector: {exc}") from None
    return PeopleFinder(load_detector(found.card, found.path), cache / "people")


def _library(args: argparse.Namespace) -> tuple[Any, Path] | None:
    """The gateway's database and storage root when ``--library``/``--register`` ask for them, or
    (auto) when the library holds samples of the task and no --data names other data."""

    want = args.library if args.library is not None else (False if args.data else None)
    if want is False and not args.register:
        return None

    try:
        config, _ = open_config(argparse.Namespace(config=getattr(args, "config", None)))
    except ConfigError as exc:
        if want is None and not args.register:
            return None
        raise ValueError(f"the gateway config {exc.path} cannot be used: {'; '.join(exc.problems)}") from exc
    url: str = config.database.url
    if want is None and not args.register and url.startswith("sqlite:///") and ":memory:" not in url:
        if not Path(url.removeprefix("sqlite:///")).is_file():
            return None  # no gateway here: connecting would create an empty database file
    db = open_database(config)
    try:
        db.ensure_current()
    except SchemaOutdated as exc:
        if want is None and not args.register:
            return None
        raise ValueError(str(exc)) from exc
    if want is None:
        tasks = {t["name"]: t for t in SampleLibrary(db, config.storage.root).list_tasks()}
        if not tasks.get(args.task, {}).get("samples"):
            return None
        args.library = True
    return db, config.storage.root


def _export_split(db: Any, root: Path, task: str, out: Path) -> tuple[dict[str, Any], Path, Path]:
    """Freeze (or reuse) the task's 8:2 split and write both sets as YOLO folders under ``out``."""

    lib = SampleLibrary(db, root)
    split = lib.split(task)
    if split.train == 0 or split.test == 0:
        raise ValueError(
            f"task {task}: the split has {split.train} train and {split.test} test samples; "
            "import more labelled photos (`vigil samples import DIR --task TASK`)"
        )
    train_dir, test_dir = out / "train", out / "test"
    lib.export("yolo", train_dir, dataset_id=split.train_id)
    lib.export("yolo", test_dir, dataset_id=split.test_id)
    return split.as_json(), train_dir, test_dir


def _wants_register(args: argparse.Namespace, split: dict[str, Any] | None) -> bool:
    """--register, or by default a library run (it has a frozen split)."""
    return bool(args.register or (args.register is None and split is not None))


def _classifier_scores(result: Any) -> dict[str, Any]:
    """A classifier's test-set numbers for its version: macro means over classes, object level."""
    from analyzers.training.evaluate import summarise

    if not result.valid:
        return {}
    found = summarise(result.valid)
    return {
        **{k: found["overall"][k] for k in ("precision", "recall", "f1", "image_f1")},
        "classes": found["classes"],
        "f1_source": "test set at training (macro over classes, object level)",
    }


def _detector_scores(result: Any) -> dict[str, Any]:
    """A detector's numbers for its version: the test set's, else the hold-out's (macro means)."""
    rows = result.valid or result.holdout
    if not rows:
        return {}
    keys = ("precision", "recall", "f1", "image_f1")
    return {
        **{k: round(sum(m[k] for m in rows.values()) / len(rows), 4) for k in keys},
        "classes": rows,
        "f1_source": "test set at training" if result.valid else "hold-out of the training set",
    }


def _register(
    db: Any, root: Path, result: Any, split: dict[str, Any] | None, seed: int, scores: dict[str, Any]
) -> str:
    """The trained model as a candidate version: the exact train and test sets, its measured numbers."""
    import shutil

    shutil.copyfile(result.card_path, result.model_dir / "model.yaml")
    numbers: dict[str, Any] = {"seed": seed, "epochs_run": result.epochs_run, "seconds": result.seconds}
    numbers.update(scores)
    return register_version(
        db,
        root,
        result.model_dir,
        name=result.task,
        train_set_id=split["train_set_id"] if split else None,
        test_set_id=split["test_set_id"] if split else None,
        metrics=numbers,
        actor="vigil train",
    )


def _train_detector(
    args: argparse.Namespace, library: tuple[Any, Path] | None, split: dict[str, Any] | None
) -> int:
    """`vigil train ppe|cigarette|phone`: fine-tune YOLOX-Nano from the pack's COCO weights."""
    from analyzers.detectors import load_detector
    from analyzers.evaluation import EvalError
    from analyzers.runtime import ModelCardError
    from analyzers.training import DataError
    from analyzers.training.detector_tasks import DETECTOR_TASKS
    from analyzers.training.people import PeopleFinder

    task = DETECTOR_TASKS[args.task]
    if args.size:
        task = dataclasses.replace(task, size=args.size)
    data_root, cache = _roots(args)
    _defaults(args, batch=8, lr=1e-3, patience=6)
    try:
        explicit = _parse_map(args.map)
        train, valid = _sources(args.data, lambda split: _detector_map(task, split, explicit))
        more_train, more_valid = _sources(args.valid, lambda split: _detector_map(task, split, explicit))
        valid += more_train + more_valid
        if not train and data_root is None:
            print(
                f"vigil train {task.name}: no training data; pass --data or --data-root/${DATA_ENV}",
                file=sys.stderr,
            )
            return 2
        try:
            coco = resolve_model(args.people_model, argparse.Namespace(config=getattr(args, "config", None)))
        except EvalError as exc:
            raise ValueError(f"the COCO detector the training starts from: {exc}") from None
        if coco.card.family != "yolox" or len(coco.card.classes) != 80:
            raise ValueError(f"{coco.card.name} is not the pack's YOLOX-Nano COCO model")
        people = PeopleFinder(load_detector(coco.card, coco.path, threads=args.threads), cache / "people")
        try:
            from analyzers.training.train_detector import summary, train_detector
        except ImportError as exc:
            print(f"vigil train needs the train extra (pip install 'vigil[train]'): {exc}", file=sys.stderr)
            return 2
        result = train_detector(
            task,
            Path(args.out),
            coco.path / coco.card.file,
            coco.card.classes,
            epochs=args.epochs,
            seed=args.seed,
            train_sources=train,
            valid_sources=valid,
            data_root=data_root,
            people=people,
            batch_size=args.batch,
            lr=args.lr,
            patience=args.patience,
            subset=args.subset,
            version=args.version,
            threads=args.threads,
            freeze_backbone=not args.train_backbone,
            progress=not args.no_progress,
            command=_command(args),
        )
        version_id = None
        if library is not None and _wants_register(args, split):
            scores = _detector_scores(result)
            version_id = _register(library[0], library[1], result, split, args.seed, scores)
    except (DataError, ModelCardError, ModelVersionError, ValueError, OSError) as exc:
        print(f"vigil train {task.name}: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(
            json.dumps(
                {
                    "holdout": result.holdout,
                    "valid": result.valid,
                    "thresholds": result.thresholds,
                    "seconds": result.seconds,
                    "sha256": result.sha256,
                    "card": str(result.card_path),
                    "version_id": version_id,
                },
                indent=1,
            )
        )
    else:
        print(summary(result))
        if version_id is not None:
            print(
                f"registered {task.name} {args.version} as version {version_id}: a candidate; "
                f"`vigil models activate {version_id}` makes it run"
            )
    return 0


def _defaults(args: argparse.Namespace, **values: float) -> None:
    """Fill the options left out with the task family's defaults (an explicit 0, e.g. --lr 0, stays)."""
    for name, value in values.items():
        if getattr(args, name) is None:
            setattr(args, name, value)


def _detector_map(task: Any, split: Path, explicit: dict[str, str]) -> dict[str, str]:
    """A detector's class map of a YOLO split: --map, else dataset classes named like the task's."""
    from analyzers.evaluation import find_data_yaml, read_names

    names = read_names(find_data_yaml(split))
    cmap = explicit or {n: n.lower() for n in names if n.lower() in task.classes}
    if not cmap:
        raise ValueError(
            f"{split}: none of its classes ({', '.join(names)}) is a class of {task.name} "
            f"({', '.join(task.classes)}); map them with --map DATASET_CLASS=CLASS"
        )
    return cmap


def cmd_train(args: argparse.Namespace) -> int:
    import datetime as dt
    import tempfile

    from analyzers.runtime import ModelCardError
    from analyzers.training import TASKS, DataError

    try:
        library = _library(args)
    except (ValueError, SampleError) as exc:
        print(f"vigil train {args.task}: {exc}", file=sys.stderr)
        return 2
    if library is None or not args.library:
        return _train(args, library, None)
    if args.task in TASKS and TASKS[args.task].mode == "folder":
        print(
            f"vigil train {args.task}: trains on a folder with one sub-folder per class (--data), "
            "not on library boxes",
            file=sys.stderr,
        )
        return 2
    if args.version is None:
        args.version = dt.datetime.now(dt.UTC).strftime("%Y.%m.%d-%H%M%S")
    with tempfile.TemporaryDirectory(prefix="vigil-train-") as tmp:
        try:
            split, train_dir, test_dir = _export_split(library[0], library[1], args.task, Path(tmp))
        except (ValueError, SampleError, DataError, ModelCardError, ModelVersionError) as exc:
            print(f"vigil train {args.task}: {exc}", file=sys.stderr)
            return 2
        print(
            f"library: task {args.task} train set {split['train_set_id']} ({split['train']} samples), "
            f"test set {split['test_set_id']} ({split['test']} samples)"
        )
        args.data, args.valid = [str(train_dir)], [str(test_dir)]
        return _train(args, library, split)


def _train(args: argparse.Namespace, library: tuple[Any, Path] | None, split: dict[str, Any] | None) -> int:
    from analyzers.runtime import ModelCardError
    from analyzers.training import TASKS, DataError

    args.version = args.version or "0.1.0"
    if args.task in DETECTOR_NAMES:
        return _train_detector(args, library, split)
    _defaults(args, batch=64, lr=3e-3, patience=10)
    spec = TASKS[args.task]
    if args.size:
        spec = dataclasses.replace(spec, size=(args.size, args.size))
    data_root, cache = _roots(args)
    try:
        explicit = _parse_map(args.map)
        train, valid = _sources(args.data, lambda split: _default_map(spec, split, explicit))
        more_train, more_valid = _sources(args.valid, lambda split: _default_map(spec, split, explicit))
        valid += more_train + more_valid
        if args.evaluate:
            return _evaluate_only(args, spec, valid, data_root, cache)
        if not train and (not spec.train or data_root is None):
            need = (
                "--data (the plant's labelled photos)"
                if not spec.train
                else f"--data or --data-root/${DATA_ENV}"
            )
            print(f"vigil train {spec.name}: no training data; pass {need}", file=sys.stderr)
            return 2
        spec = dataclasses.replace(spec, crops=args.crops)
        people = _people(args, spec, cache)
        try:
            from analyzers.training.train import summary, train_classifier
        except ImportError as exc:
            print(f"vigil train needs the train extra (pip install 'vigil[train]'): {exc}", file=sys.stderr)
            return 2
        result = train_classifier(
            spec,
            train or None,
            Path(args.out),
            epochs=args.epochs,
            seed=args.seed,
            valid_source=valid or None,
            data_root=data_root,
            cache_dir=cache,
            batch_size=args.batch,
            lr=args.lr,
            patience=args.patience,
            subset=args.subset,
            version=args.version,
            threads=args.threads,
            progress=not args.no_progress,
            command=_command(args),
            people=people,
        )
        version_id = None
        if library is not None and _wants_register(args, split):
            scores = _classifier_scores(result)
            version_id = _register(library[0], library[1], result, split, args.seed, scores)
    except (DataError, ModelCardError, ModelVersionError, ValueError, OSError) as exc:
        print(f"vigil train {spec.name}: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(
            json.dumps(
                {
                    "holdout": result.holdout,
                    "valid": result.valid,
                    "seconds": result.seconds,
                    "sha256": result.sha256,
                    "card": str(result.card_path),
                    "version_id": version_id,
                    "train_set_id": split["train_set_id"] if split else None,
                    "test_set_id": split["test_set_id"] if split else None,
                },
                indent=1,
            )
        )
    else:
        print(summary(result))
        if not result.valid:
            print("no valid split: pass --valid (or a --data folder with valid/) to measure the model")
        if version_id is not None:
            sets = f" (train set {split['train_set_id']}, test set {split['test_set_id']})" if split else ""
            print(
                f"registered {spec.name} {args.version} as version {version_id}{sets}: a candidate; "
                f"`vigil models activate {version_id}` makes it run"
            )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vigil")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["train", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
