"""`vigil models ...` (pack import, versions: show, activate, rollback, retire, test, audit) and
`vigil scenes` (the scene catalogue).

Exit status: 0 done, 2 bad input or refused (the reason on stderr), 3 refused by the promotion gate
(activate again with --override --reason).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select
from tqdm import tqdm

import gateway.models.versions as mv
from analyzers.scenes import CATALOGUE, IMPLEMENTED
from gateway.cli.common import actor, guard, open_checked, open_config, open_database, parse_map, print_json
from gateway.config.schema import GatewayConfig
from gateway.db.schema import Model
from gateway.models.pack import ModelPackError, import_pack
from gateway.models.versions import activate, audit_log, retire, rollback, show_version


def import_models(config: GatewayConfig, config_path: Path, pack: Path, cards: Path | None) -> int:
    db = open_database(config)
    db.ensure_current()
    cards = cards or config_path.parent / "models"
    bars: dict[str, tqdm] = {}

    def progress(name: str, done: int, total: int) -> None:
        bar = bars.get(name)
        if bar is None:
            bar = bars[name] = tqdm(
                total=total, desc=f"checking {name}", unit="B", unit_scale=True, leave=False
            )
        bar.update(done - bar.n)

    try:
        results = import_pack(db, config.storage.root, pack, cards, progress)
    except ModelPackError as exc:
        print(f"model import failed: {exc}", file=sys.stderr)
        return 1
    finally:
        for bar in bars.values():
            bar.close()
    for r in results:
        if r.status == "skipped":
            print(f"  {r.name}: skipped ({r.detail})")
        else:
            detail = f"; {r.detail}" if r.detail else ""
            print(f"  {r.name} {r.version}: {r.status} (version id {r.version_id}){detail}")
    return 0


def cmd_models_import(args: argparse.Namespace) -> int:
    config, path = open_config(args)
    return import_models(config, path, Path(args.dir), Path(args.cards) if args.cards else None)


def cmd_models_list(args: argparse.Namespace) -> int:
    config, _ = open_config(args)
    db = open_database(config)
    db.ensure_current()
    with db.session() as s:
        for m in s.scalars(select(Model).order_by(Model.name)):
            for v in m.versions:
                print(f"{m.name:20} {v.version:16} {v.id}  {v.status:8} {m.family:10} {m.licence}")
    return 0


def cmd_scenes(_args: argparse.Namespace) -> int:
    print(f"{'scene':20} {'fps':>6}  {'model':12} {'pose':4}  name")
    for info in CATALOGUE.values():
        cls = IMPLEMENTED[info.key]
        model = cls.default_model or "(configured)"
        pose = "yes" if cls.uses_pose else ""
        print(f"{info.key:20} {info.sample_fps:6.3f}  {model:12} {pose:4}  {info.name_en} / {info.name_zh}")
    return 0


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
    db, _ = open_checked(args)
    v = show_version(db, args.version)
    if args.json:
        print_json(v)
    else:
        print("\n".join(_version_lines(v)))
    return 0


def cmd_models_activate(args: argparse.Namespace) -> int:
    return _switch(args, activate, "activated")


def cmd_models_rollback(args: argparse.Namespace) -> int:
    return _switch(args, rollback, "rolled back to")


def _switch(args: argparse.Namespace, change: Callable[..., dict[str, Any]], done: str) -> int:
    """Activation and rollback take the same options and report alike (both pass the promotion gate)."""
    db, _ = open_checked(args)
    v = change(
        db,
        args.version,
        actor(),
        scene=args.scene,
        camera_id=args.camera,
        override=args.override,
        reason=args.reason,
    )
    print(f"{done} {v['model']} {v['version']} ({v['id']}) for {', '.join(a['scope'] for a in v['audit'])}")
    return 0


def cmd_models_retire(args: argparse.Namespace) -> int:
    db, _ = open_checked(args)
    v = retire(db, args.version, actor(), args.reason)
    print(f"retired {v['model']} {v['version']} ({v['id']})")
    return 0


def cmd_models_test(args: argparse.Namespace) -> int:
    db, root = open_checked(args)
    with tqdm(desc="testing", unit="image", leave=False, file=sys.stderr, disable=args.json) as bar:
        result = mv.test_version(
            db,
            root,
            args.version,
            args.dataset,
            conf=args.conf,
            iou=args.iou,
            class_map=parse_map(args.map),
            actor=actor(),
            progress=bar.update,
        )
    if args.json:
        print_json(result)
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
    db, _ = open_checked(args)
    entries = audit_log(db, args.model)
    if args.json:
        print_json(entries)
        return 0
    for a in entries:
        flag = " OVERRIDE" if a.get("override") else ""
        print(
            f"{a['at']} {a['action']}{flag} by {a['actor']} ({a['scope']}): {a['from']} -> {a['to']} "
            f"F1 {a.get('f1_from')} -> {a.get('f1_to')}"
            + (f"; reason: {a['reason']}" if a.get("reason") else "")
        )
    return 0


def _scope_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--scene", help="only on this scene's cameras (pins the version); default: the whole model"
    )
    p.add_argument("--camera", help="only on this camera (needs --scene)")
    p.add_argument("--override", action="store_true", help="pass the promotion gate although F1 is lower")
    p.add_argument("--reason", help="why (required with --override; recorded in the audit log)")


def register(sub: Any) -> None:
    models = sub.add_parser("models", help="model pack").add_subparsers(dest="models_command", required=True)
    p = models.add_parser("import", help="import a model pack folder (offline)")
    p.add_argument("dir")
    p.add_argument("--cards", help="folder of model cards (default: models/ beside the config file)")
    p.set_defaults(func=cmd_models_import)
    models.add_parser("list", help="imported models and versions").set_defaults(func=cmd_models_list)
    register_versions(models)  # show / activate / rollback / retire / test / audit
    sub.add_parser("scenes", help="the scene catalogue").set_defaults(func=cmd_scenes)


def register_versions(models: Any) -> None:
    """Add the version commands to the existing `models` sub-command parsers."""
    p = models.add_parser("show", help="one version: description, sets, metrics, usage, audit")
    p.add_argument("version", help="version id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=guard("models show", cmd_models_show))

    p = models.add_parser("activate", help="activate a version (promotion gate: lower F1 needs --override)")
    p.add_argument("version", help="version id")
    _scope_args(p)
    p.set_defaults(func=guard("models activate", cmd_models_activate))

    p = models.add_parser(
        "rollback", help="run an earlier version again (a version id, or a model name: its previous)"
    )
    p.add_argument("version", help="version id, or model name")
    _scope_args(p)
    p.set_defaults(func=guard("models rollback", cmd_models_rollback))

    p = models.add_parser("retire", help="retire a version (no longer picked by model name)")
    p.add_argument("version", help="version id")
    p.add_argument("--reason")
    p.set_defaults(func=guard("models retire", cmd_models_retire))

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
    p.set_defaults(func=guard("models test", cmd_models_test))

    p = models.add_parser("audit", help="activations, rollbacks and retirements of a model")
    p.add_argument("model", help="model name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=guard("models audit", cmd_models_audit))
