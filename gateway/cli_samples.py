"""`vigil samples ...`, `vigil tasks ...` and the model-version commands of `vigil models ...`.

``register(sub)`` adds ``samples`` and ``tasks`` to the top-level sub-commands; ``register_models(models)``
adds ``show``, ``activate``, ``rollback``, ``retire``, ``test`` and ``audit`` to the existing ``models``
sub-commands. Exit status: 0 done, 2 bad input or refused (the reason on stderr), 3 refused by the
promotion gate (activate again with --override --reason).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

EXIT_BAD = 2
EXIT_GATE = 3


def _open(args: argparse.Namespace) -> tuple[Any, Path]:
    """The gateway's database (checked current) and storage root."""
    from gateway.cli import _config, _database

    config, _ = _config(args)
    db = _database(config)
    db.ensure_current()
    return db, config.storage.root


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _parse_map(text: str | None) -> dict[str, str] | None:
    if not text:
        return None
    from analyzers.evaluation import EvalError, parse_class_map

    try:
        return parse_class_map(text)
    except EvalError as exc:
        raise ValueError(str(exc)) from exc


def _guard(name: str, run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Library errors become one line on stderr and a non-zero exit status."""

    def wrapped(args: argparse.Namespace) -> int:
        from gateway.model_versions import GateRefused, ModelVersionError
        from gateway.samples import SampleError

        try:
            return run(args)
        except GateRefused as exc:
            print(f"vigil {name}: {exc}", file=sys.stderr)
            return EXIT_GATE
        except (SampleError, ModelVersionError, ValueError) as exc:
            print(f"vigil {name}: {exc}", file=sys.stderr)
            return EXIT_BAD

    return wrapped


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


# --- samples ------------------------------------------------------------------------------------


def cmd_samples_import(args: argparse.Namespace) -> int:
    from gateway.samples import SampleLibrary

    db, root = _open(args)
    lib = SampleLibrary(db, root)
    path = Path(args.path)
    label_map = _parse_map(args.map)
    progress = not args.no_progress
    if args.format == "yolo":
        report = lib.import_yolo(path, args.task, scene=args.scene, label_map=label_map, progress=progress)
    else:
        report = lib.import_coco(path, args.task, scene=args.scene, label_map=label_map, progress=progress)
    for file, reason in report.skipped:
        print(f"skipped {file}: {reason}", file=sys.stderr)
    print(report.summary())
    return 0


def cmd_samples_export(args: argparse.Namespace) -> int:
    from gateway.samples import SampleLibrary

    db, root = _open(args)
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} is not empty; export into a new or empty folder")
    result = SampleLibrary(db, root).export(
        args.format, out, task=args.task, dataset_id=args.dataset, progress=not args.no_progress
    )
    print(f"wrote {result['images']} image(s) of {result['dataset']} as {args.format} to {out}")
    return 0


def cmd_samples_split(args: argparse.Namespace) -> int:
    from gateway.samples import SampleLibrary

    db, root = _open(args)
    r = SampleLibrary(db, root).split(args.task)
    state = "new" if r.created else "unchanged, reused"
    print(
        f"task {r.task}: train set {r.train_id} ({r.train} samples), test set {r.test_id} ({r.test} "
        f"samples) [{state}]"
    )
    return 0


def cmd_samples_list(args: argparse.Namespace) -> int:
    from gateway.samples import SampleLibrary

    db, root = _open(args)
    page = SampleLibrary(db, root).list_samples(
        task=args.task, origin=args.origin, label=args.label, dataset_id=args.dataset, limit=args.limit
    )
    if args.json:
        _print_json(page)
        return 0
    for s in page["items"]:
        labels = ", ".join(sorted({lab["label"] for lab in s["labels"]})) or "-"
        print(
            f"{s['id']}  {s['origin']:15} {s['width']:>5}x{s['height']:<5} {len(s['labels']):>3} "
            f"box(es)  {labels}"
        )
    return 0


def cmd_samples_from_alarm(args: argparse.Namespace) -> int:
    from gateway.samples import SampleLibrary

    db, root = _open(args)
    sample, created = SampleLibrary(db, root).from_alarm(args.alarm_id, args.kind, _actor(), args.task)
    what = "added" if created else "is already"
    print(
        f"alarm {args.alarm_id} {what} sample {sample['id']} ({sample['origin']}, tasks: "
        f"{', '.join(sample['tasks']) or '-'})"
    )
    return 0


# --- tasks --------------------------------------------------------------------------------------


def cmd_tasks_add(args: argparse.Namespace) -> int:
    from gateway.samples import SampleLibrary

    db, root = _open(args)
    labels = [n.strip() for n in (args.labels or "").split(",") if n.strip()]
    task = SampleLibrary(db, root).add_task(args.name, args.scene, labels)
    print(
        f"task {task['name']} added (scene {task['scene'] or '-'}, labels {', '.join(task['labels']) or '-'})"
    )
    return 0


def cmd_tasks_list(args: argparse.Namespace) -> int:
    from gateway.samples import SampleLibrary

    db, root = _open(args)
    tasks = SampleLibrary(db, root).list_tasks()
    if args.json:
        _print_json(tasks)
        return 0
    for t in tasks:
        print(
            f"{t['name']:24} {t['scene'] or '-':14} {t['samples']:>7} samples {t['adversarial']:>6} "
            f"adversarial  "
            f"{', '.join(t['labels'])}"
        )
    return 0


def cmd_tasks_remove(args: argparse.Namespace) -> int:
    from gateway.samples import SampleLibrary

    db, root = _open(args)
    result = SampleLibrary(db, root).remove_task(args.name)
    kept = (
        f"; {result['kept_datasets']} dataset(s) named by model versions kept"
        if result["kept_datasets"]
        else ""
    )
    print(f"task {args.name} removed (its samples stay in the library){kept}")
    return 0


# --- models -------------------------------------------------------------------------------------


def _version_lines(v: dict[str, Any]) -> list[str]:
    m = v["metrics"]
    numbers = (
        "  ".join(f"{k} {m[k]}" for k in ("precision", "recall", "f1") if k in m) or "no test-set metrics"
    )
    lines = [
        f"{v['model']} {v['version']}  id {v['id']}  {v['status']}{'  (current)' if v['current'] else ''}",
        f"  description: {v['description'] or '-'}",
        f"  created: {v['created_at']}   activated: {v['activated_at'] or '-'}",
        f"  train set: {_set_name(v.get('train_set'), v['train_set_id'])}",
        f"  test set:  {_set_name(v.get('test_set'), v['test_set_id'])}",
        f"  metrics: {numbers}",
    ]
    usage = v.get("usage") or []
    lines.append(
        "  usage: " + (", ".join(f"{u['camera_id']}/{u['scene']} ({u['how']})" for u in usage) or "none")
    )
    for t in v.get("tests", [])[-5:]:
        o = t["overall"]
        lines.append(
            f"  test {t['at']} on {t['dataset']}: P {o['precision']} R {o['recall']} F1 {o['f1']} "
            f"({t['images']} images)"
        )
    for a in v.get("audit", [])[-5:]:
        flag = " OVERRIDE" if a.get("override") else ""
        lines.append(
            f"  {a['at']} {a['action']}{flag} by {a['actor']} ({a['scope']}): {a['from']} -> {a['to']}"
            + (f"; reason: {a['reason']}" if a.get("reason") else "")
        )
    return lines


def _set_name(info: dict[str, Any] | None, dataset_id: str | None) -> str:
    if dataset_id is None:
        return "-"
    if info is None or info.get("missing"):
        return f"{dataset_id} (missing)"
    return f"{dataset_id} ({info['name']})"


def cmd_models_show(args: argparse.Namespace) -> int:
    from gateway.model_versions import show_version

    db, _ = _open(args)
    v = show_version(db, args.version)
    if args.json:
        _print_json(v)
    else:
        print("\n".join(_version_lines(v)))
    return 0


def cmd_models_activate(args: argparse.Namespace) -> int:
    from gateway.model_versions import activate

    return _switch(args, activate, "activated")


def cmd_models_rollback(args: argparse.Namespace) -> int:
    from gateway.model_versions import rollback

    return _switch(args, rollback, "rolled back to")


def _switch(args: argparse.Namespace, change: Callable[..., dict[str, Any]], done: str) -> int:
    """Activation and rollback take the same options and report alike (both pass the promotion gate)."""
    db, _ = _open(args)
    v = change(
        db,
        args.version,
        _actor(),
        scene=args.scene,
        camera_id=args.camera,
        override=args.override,
        reason=args.reason,
    )
    print(f"{done} {v['model']} {v['version']} ({v['id']}) for {', '.join(a['scope'] for a in v['audit'])}")
    return 0


def cmd_models_retire(args: argparse.Namespace) -> int:
    from gateway.model_versions import retire

    db, _ = _open(args)
    v = retire(db, args.version, _actor(), args.reason)
    print(f"retired {v['model']} {v['version']} ({v['id']})")
    return 0


def cmd_models_test(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    import gateway.model_versions as mv

    db, root = _open(args)
    with tqdm(desc="testing", unit="image", leave=False, file=sys.stderr, disable=args.json) as bar:
        result = mv.test_version(
            db,
            root,
            args.version,
            args.dataset,
            conf=args.conf,
            iou=args.iou,
            class_map=_parse_map(args.map),
            actor=_actor(),
            progress=bar.update,
        )
    if args.json:
        _print_json(result)
        return 0
    if result.get("kind") == "classifier":
        print(
            f"version {args.version} (classifier) on {args.dataset} ({result['images']} images; object "
            "level: one crop per labelled box; image level: any crop of the frame; (all): macro mean)"
        )
    else:
        print(
            f"version {args.version} on {args.dataset} ({result['images']} images, conf {args.conf:g}, "
            f"IoU {args.iou:g})"
        )
    print(
        f"{'class':20} {'support':>7} {'precision':>9} {'recall':>7} {'F1':>7} {'img P':>7} "
        f"{'img R':>7} {'img F1':>7}"
    )
    rows = {**result["classes"], "(all)": {**result["overall"], "support": ""}}
    for name, m in rows.items():
        print(
            f"{name:20} {m['support']!s:>7} {m['precision']:>9.4f} {m['recall']:>7.4f} {m['f1']:>7.4f} "
            f"{m['image_precision']:>7.4f} {m['image_recall']:>7.4f} {m['image_f1']:>7.4f}"
        )
    if result["skipped_classes"]:
        print(f"not evaluated (no model class; --map DATASET=MODEL): {', '.join(result['skipped_classes'])}")
    return 0


def cmd_models_audit(args: argparse.Namespace) -> int:
    from gateway.model_versions import audit_log

    db, _ = _open(args)
    entries = audit_log(db, args.model)
    if args.json:
        _print_json(entries)
        return 0
    for a in entries:
        flag = " OVERRIDE" if a.get("override") else ""
        print(
            f"{a['at']} {a['action']}{flag} by {a['actor']} ({a['scope']}): {a['from']} -> {a['to']} "
            f"F1 {a.get('f1_from')} -> {a.get('f1_to')}"
            + (f"; reason: {a['reason']}" if a.get("reason") else "")
        )
    return 0


# --- registration -------------------------------------------------------------------------------


def register(sub: Any) -> None:
    """Add `samples` and `tasks` to the top-level sub-command parsers."""
    samples = sub.add_parser("samples", help="the sample library: import, export, split").add_subparsers(
        dest="samples_command", required=True
    )
    p = samples.add_parser(
        "import",
        help="import a YOLO txt or COCO JSON data set into a task (corrupt files are reported and skipped)",
    )
    p.add_argument("path", help="YOLO split or folder of splits; COCO .json file or folder holding one")
    p.add_argument("--task", required=True, help="task to import into (created when missing)")
    p.add_argument("--format", choices=["yolo", "coco"], default="yolo")
    p.add_argument("--scene", help="the task's scene, when the import creates the task")
    p.add_argument("--map", metavar="A=B,...", help="rename data set classes, e.g. NO-Hardhat=head")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_guard("samples import", cmd_samples_import))

    p = samples.add_parser("export", help="write a task's samples (or one dataset) as YOLO txt or COCO JSON")
    p.add_argument("out", help="output folder (new or empty)")
    p.add_argument("--task", help="task to export (its label set names the classes)")
    p.add_argument("--dataset", help="export only this dataset id (a frozen train or test set)")
    p.add_argument("--format", choices=["yolo", "coco"], default="yolo")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_guard("samples export", cmd_samples_export))

    p = samples.add_parser("split", help="freeze the task's deterministic 8:2 train/test split")
    p.add_argument("task")
    p.set_defaults(func=_guard("samples split", cmd_samples_split))

    p = samples.add_parser("list", help="list samples, newest first")
    p.add_argument("--task")
    p.add_argument("--origin", choices=["imported", "confirmed_alarm", "false_positive", "capture"])
    p.add_argument("--label")
    p.add_argument("--dataset")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_guard("samples list", cmd_samples_list))

    p = samples.add_parser("from-alarm", help="add an alarm's snapshot and boxes as a sample")
    p.add_argument("alarm_id")
    p.add_argument("--kind", choices=["positive", "false_positive"], required=True)
    p.add_argument("--task", help="default: every task of the alarm's scene")
    p.set_defaults(func=_guard("samples from-alarm", cmd_samples_from_alarm))

    tasks = sub.add_parser("tasks", help="detection tasks (targets with a label set)").add_subparsers(
        dest="tasks_command", required=True
    )
    p = tasks.add_parser("add", help="add a detection task")
    p.add_argument("name")
    p.add_argument("--scene", help="scene key the task serves, e.g. helmet")
    p.add_argument("--labels", help="comma-separated label set, e.g. head,helmet")
    p.set_defaults(func=_guard("tasks add", cmd_tasks_add))
    p = tasks.add_parser("list", help="tasks with their sample counts")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_guard("tasks list", cmd_tasks_list))
    p = tasks.add_parser("remove", help="remove a task (samples stay; sets named by model versions stay)")
    p.add_argument("name")
    p.set_defaults(func=_guard("tasks remove", cmd_tasks_remove))


def _scope_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--scene", help="only on this scene's cameras (pins the version); default: the whole model"
    )
    p.add_argument("--camera", help="only on this camera (needs --scene)")
    p.add_argument("--override", action="store_true", help="pass the promotion gate although F1 is lower")
    p.add_argument("--reason", help="why (required with --override; recorded in the audit log)")


def register_models(models: Any) -> None:
    """Add the version commands to the existing `models` sub-command parsers."""
    p = models.add_parser("show", help="one version: description, sets, metrics, usage, audit")
    p.add_argument("version", help="version id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_guard("models show", cmd_models_show))

    p = models.add_parser("activate", help="activate a version (promotion gate: lower F1 needs --override)")
    p.add_argument("version", help="version id")
    _scope_args(p)
    p.set_defaults(func=_guard("models activate", cmd_models_activate))

    p = models.add_parser(
        "rollback", help="run an earlier version again (a version id, or a model name: its previous)"
    )
    p.add_argument("version", help="version id, or model name")
    _scope_args(p)
    p.set_defaults(func=_guard("models rollback", cmd_models_rollback))

    p = models.add_parser("retire", help="retire a version (no longer picked by model name)")
    p.add_argument("version", help="version id")
    p.add_argument("--reason")
    p.set_defaults(func=_guard("models retire", cmd_models_retire))

    p = models.add_parser(
        "test", help="evaluate a version on a test set (precision, recall, F1); stored with it"
    )
    p.add_argument("version", help="version id (current or historical)")
    p.add_argument(
        "--dataset", required=True, help="dataset id from `vigil samples split`, or a YOLO split folder"
    )
    p.add_argument("--map", metavar="A=B,...", help="dataset class = model class pairs")
    p.add_argument("--conf", type=float, default=0.3)
    p.add_argument("--iou", type=float, default=0.5)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_guard("models test", cmd_models_test))

    p = models.add_parser("audit", help="activations, rollbacks and retirements of a model")
    p.add_argument("model", help="model name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_guard("models audit", cmd_models_audit))
