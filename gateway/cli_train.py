"""`vigil train TASK`: train one of the project's classifiers, export ONNX + model card, report metrics.

Tasks: helmet, workwear, fire (flame + smoke), smoking, extinguisher (needs --data). Without --data a
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
from pathlib import Path
from typing import Any

DATA_ENV = "VIGIL_DATA_DIR"
CACHE_ENV = "VIGIL_TRAIN_CACHE"
TASK_NAMES = ("helmet", "workwear", "fire", "smoking", "extinguisher", "fire_patch")


def register(sub: Any) -> None:
    """Add `vigil train` to the top-level sub-command parsers."""
    p = sub.add_parser(
        "train",
        help="train a classifier (helmet, workwear, fire, smoking, extinguisher) and export ONNX + card",
        description=(
            "Train on CPU (or GPU when torch sees one) with augmentation and early stopping on a held-out "
            "part of the training photos, export ONNX (opset 17) with a model card, and report precision, "
            "recall and F1 per class on the valid split (object and image level)."
        ),
    )
    p.add_argument("task", choices=TASK_NAMES)
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
    p.add_argument("--version", default="0.1.0", help="version written into the card")
    p.add_argument("--threads", type=int, default=2, help="CPU threads for torch (default 2)")
    p.add_argument("--size", type=int, metavar="PX", help="square input size (default: the task's)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--patience", type=int, default=10, help="epochs without hold-out gain before stopping")
    p.add_argument(
        "--evaluate",
        metavar="MODEL_DIR",
        help="only evaluate this model folder (DIR/model.yaml or the card DIR/../NAME.yaml)",
    )
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)


def _parse_map(text: str | None) -> dict[str, str]:
    from analyzers.evaluation import parse_class_map

    return parse_class_map(text)


def _default_map(spec: Any, root: Path, explicit: dict[str, str]) -> dict[str, str]:
    """Dataset class -> task class: --map, else the task's known names, else same-named classes
    (case-insensitive; for the extinguisher any class whose name contains 'extinguisher')."""
    if explicit:
        return explicit
    if spec.mode == "folder":
        return {}
    from analyzers.evaluation import find_data_yaml, read_names

    names = read_names(find_data_yaml(root))
    known: dict[str, str] = {}
    for src in spec.train:
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


def _sources(spec: Any, paths: list[str], explicit: dict[str, str]) -> tuple[list[Any], list[Any]]:
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
            into.append(Source(str(split.resolve()), _default_map(spec, split, explicit)))
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
    for flag in ("map", "epochs", "seed", "subset", "size", "version", "batch", "lr", "patience"):
        value = getattr(args, flag)
        if value is not None:
            words += [f"--{flag}", str(value)]
    if args.data_root or os.environ.get(DATA_ENV):
        words += ["--data-root", "$" + DATA_ENV if not args.data_root else "DATA_ROOT"]
    return shlex.join(words)


def cmd_train(args: argparse.Namespace) -> int:
    from analyzers.runtime import ModelCardError
    from analyzers.training import TASKS, DataError

    spec = TASKS[args.task]
    if args.size:
        spec = dataclasses.replace(spec, size=(args.size, args.size))
    root_text = args.data_root or os.environ.get(DATA_ENV)
    data_root = Path(root_text).expanduser() if root_text else None
    cache_text = args.cache or os.environ.get(CACHE_ENV)
    cache = Path(cache_text).expanduser() if cache_text else Path.home() / ".cache" / "vigil" / "train"
    try:
        explicit = _parse_map(args.map)
        train, valid = _sources(spec, args.data, explicit)
        more_train, more_valid = _sources(spec, args.valid, explicit)
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
        )
    except (DataError, ModelCardError, ValueError, OSError) as exc:
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
                },
                indent=1,
            )
        )
    else:
        print(summary(result))
        if not result.valid:
            print("no valid split: pass --valid (or a --data folder with valid/) to measure the model")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vigil")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["train", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
