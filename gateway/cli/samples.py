"""`vigil samples ...` and `vigil tasks ...`: the sample library and its detection tasks.

Exit status: 0 done, 2 bad input or refused (the reason on stderr).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from gateway.cli.common import actor, guard, open_checked, parse_map, print_json
from gateway.samples.library import SampleLibrary

# --- samples ------------------------------------------------------------------------------------


def cmd_samples_import(args: argparse.Namespace) -> int:
    db, root = open_checked(args)
    lib = SampleLibrary(db, root)
    path = Path(args.path)
    label_map = parse_map(args.map)
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
    db, root = open_checked(args)
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} is not empty; export into a new or empty folder")
    result = SampleLibrary(db, root).export(
        args.format, out, task=args.task, dataset_id=args.dataset, progress=not args.no_progress
    )
    print(f"wrote {result['images']} image(s) of {result['dataset']} as {args.format} to {out}")
    return 0


def cmd_samples_split(args: argparse.Namespace) -> int:
    db, root = open_checked(args)
    r = SampleLibrary(db, root).split(args.task)
    state = "new" if r.created else "unchanged, reused"
    print(
        f"task {r.task}: train set {r.train_id} ({r.train} samples), test set {r.test_id} ({r.test} "
        f"samples) [{state}]"
    )
    return 0


def cmd_samples_list(args: argparse.Namespace) -> int:
    db, root = open_checked(args)
    page = SampleLibrary(db, root).list_samples(
        task=args.task, origin=args.origin, label=args.label, dataset_id=args.dataset, limit=args.limit
    )
    if args.json:
        print_json(page)
        return 0
    for s in page["items"]:
        labels = ", ".join(sorted({lab["label"] for lab in s["labels"]})) or "-"
        print(
            f"{s['id']}  {s['origin']:15} {s['width']:>5}x{s['height']:<5} {len(s['labels']):>3} "
            f"box(es)  {labels}"
        )
    return 0


def cmd_samples_from_alarm(args: argparse.Namespace) -> int:
    db, root = open_checked(args)
    sample, created = SampleLibrary(db, root).from_alarm(args.alarm_id, args.kind, actor(), args.task)
    what = "added" if created else "is already"
    print(
        f"alarm {args.alarm_id} {what} sample {sample['id']} ({sample['origin']}, tasks: "
        f"{', '.join(sample['tasks']) or '-'})"
    )
    return 0


# --- tasks --------------------------------------------------------------------------------------


def cmd_tasks_add(args: argparse.Namespace) -> int:
    db, root = open_checked(args)
    labels = [n.strip() for n in (args.labels or "").split(",") if n.strip()]
    task = SampleLibrary(db, root).add_task(args.name, args.scene, labels)
    print(
        f"task {task['name']} added (scene {task['scene'] or '-'}, labels {', '.join(task['labels']) or '-'})"
    )
    return 0


def cmd_tasks_list(args: argparse.Namespace) -> int:
    db, root = open_checked(args)
    tasks = SampleLibrary(db, root).list_tasks()
    if args.json:
        print_json(tasks)
        return 0
    for t in tasks:
        print(
            f"{t['name']:24} {t['scene'] or '-':14} {t['samples']:>7} samples {t['adversarial']:>6} "
            f"adversarial  "
            f"{', '.join(t['labels'])}"
        )
    return 0


def cmd_tasks_remove(args: argparse.Namespace) -> int:
    db, root = open_checked(args)
    result = SampleLibrary(db, root).remove_task(args.name)
    kept = (
        f"; {result['kept_datasets']} dataset(s) named by model versions kept"
        if result["kept_datasets"]
        else ""
    )
    print(f"task {args.name} removed (its samples stay in the library){kept}")
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
    p.set_defaults(func=guard("samples import", cmd_samples_import))

    p = samples.add_parser("export", help="write a task's samples (or one dataset) as YOLO txt or COCO JSON")
    p.add_argument("out", help="output folder (new or empty)")
    p.add_argument("--task", help="task to export (its label set names the classes)")
    p.add_argument("--dataset", help="export only this dataset id (a frozen train or test set)")
    p.add_argument("--format", choices=["yolo", "coco"], default="yolo")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=guard("samples export", cmd_samples_export))

    p = samples.add_parser("split", help="freeze the task's deterministic 8:2 train/test split")
    p.add_argument("task")
    p.set_defaults(func=guard("samples split", cmd_samples_split))

    p = samples.add_parser("list", help="list samples, newest first")
    p.add_argument("--task")
    p.add_argument("--origin", choices=["imported", "confirmed_alarm", "false_positive", "capture"])
    p.add_argument("--label")
    p.add_argument("--dataset")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=guard("samples list", cmd_samples_list))

    p = samples.add_parser("from-alarm", help="add an alarm's snapshot and boxes as a sample")
    p.add_argument("alarm_id")
    p.add_argument("--kind", choices=["positive", "false_positive"], required=True)
    p.add_argument("--task", help="default: every task of the alarm's scene")
    p.set_defaults(func=guard("samples from-alarm", cmd_samples_from_alarm))

    tasks = sub.add_parser("tasks", help="detection tasks (targets with a label set)").add_subparsers(
        dest="tasks_command", required=True
    )
    p = tasks.add_parser("add", help="add a detection task")
    p.add_argument("name")
    p.add_argument("--scene", help="scene key the task serves, e.g. helmet")
    p.add_argument("--labels", help="comma-separated label set, e.g. head,helmet")
    p.set_defaults(func=guard("tasks add", cmd_tasks_add))
    p = tasks.add_parser("list", help="tasks with their sample counts")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=guard("tasks list", cmd_tasks_list))
    p = tasks.add_parser("remove", help="remove a task (samples stay; sets named by model versions stay)")
    p.add_argument("name")
    p.set_defaults(func=guard("tasks remove", cmd_tasks_remove))
