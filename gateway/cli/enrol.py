"""`vigil enrol ...`: a plant's own appearance classes for the scenes that match against them
(work clothes, extinguishers, role markers).

    vigil enrol SCENE NAME --data DIR --class CLASS [--limit N] [--negative] [--camera ID]
    vigil enrol list [SCENE] [--history] [--json]
    vigil enrol show ID
    vigil enrol activate ID [--force --reason TEXT]
    vigil enrol rollback SCENE NAME [--camera ID]
    vigil enrol remove SCENE NAME [--camera ID]

Exit status: 0 done, 2 bad input (the reason on stderr), 3 held back by the promotion gate.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from gateway.cli.common import EXIT_BAD, EXIT_GATE, actor, guard, open_checked, open_config, print_json

ACTIONS = ("list", "show", "activate", "rollback", "remove")


def _words(args: argparse.Namespace, count: int, usage: str) -> list[str]:
    words = list(args.words[1:])
    if len(words) != count:
        raise ValueError(f"usage: vigil enrol {usage}")
    return words


def cmd_enrol(args: argparse.Namespace) -> int:
    action = args.words[0]
    if action == "list":
        return _list(args)
    if action == "show":
        return _show(args)
    if action == "activate":
        return _activate(args)
    if action == "rollback":
        return _rollback(args)
    if action == "remove":
        return _remove(args)
    return _enrol(args)


def _enrol(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from analyzers.enrolment import embedder_path, shared_embedder
    from analyzers.scenes import SceneError, scene_class
    from gateway.enrolment.folder import folder_crops
    from gateway.enrolment.versions import enrol, enrol_part

    if len(args.words) != 2:
        raise ValueError(
            "usage: vigil enrol SCENE NAME --data DIR --class CLASS [--limit N] [--negative]; "
            f"or vigil enrol {{{','.join(ACTIONS)}}} ..."
        )
    scene, name = args.words
    part = enrol_part(scene)
    if not args.data or not args.cls:
        raise ValueError("--data DIR and --class CLASS are needed: the folder and the class to enrol")
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit {args.limit}: give a positive number of examples")
    try:
        scene_class(scene)
    except SceneError as exc:
        raise ValueError(str(exc)) from None
    config, _ = open_config(args)
    db, root = open_checked(args)
    quiet = args.no_progress
    with tqdm(desc=f"reading {args.cls}", unit="image", file=sys.stderr, disable=quiet, leave=False) as bar:

        def read(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        found = folder_crops(Path(args.data), args.cls, part, args.limit, read)
    if found.unreadable:
        print(
            f"{len(found.unreadable)} image(s) did not read and were skipped (first: {found.unreadable[0]})",
            file=sys.stderr,
        )
    embedder = shared_embedder(embedder_path(config.models.pack_dir))  # after the folder's checks
    with tqdm(total=len(found.crops), desc="embedding", unit="crop", file=sys.stderr, disable=quiet) as bar:
        added = enrol(
            db,
            root,
            embedder,
            scene,
            name,
            found.crops,
            negative=args.negative,
            camera_id=args.camera,
            actor=actor(),
            origin={
                "data": Path(args.data).name,
                "class": args.cls,
                "limit": args.limit,
                "layout": found.layout,
                "images": found.images,
                "cut_from_person": found.by_person,
            },
            force=args.force,
            reason=args.reason,
            progress=bar.update,
            shapes=found.shapes,
        )
    background = _background(args, db, root, embedder, scene, name, part, found)
    cal = (background or added).calibration
    scope = f"camera {args.camera}" if args.camera else "the site"
    kind = "negative" if args.negative else "positive"
    print(
        f"enrolled {scene} {name!r} ({kind}, {len(found.crops)} examples from {found.images} images) for "
        f"{scope}: version {added.version}, id {added.id}, {added.status}"
    )
    loo = f"leave-one-out F1 {cal.loo_f1:.3f}" if cal.loo_f1 is not None else "no negatives enrolled"
    print(
        f"calibration of the set ({cal.positives} positive, {cal.negatives} negative examples): matcher "
        f"{cal.method}{f' k={cal.k}' if cal.method == 'knn' else ''}, colour weight {cal.colour_weight:g}, "
        f"threshold {cal.threshold:.4f}; {loo}; positives accepted {cal.loo_positive_recall:.1%}"
        + (
            f", negatives rejected {cal.loo_negative_rejected:.1%}"
            if cal.loo_negative_rejected is not None
            else ""
        )
    )
    print(f"promotion gate: {added.gate}")
    if background is not None:
        print(
            f"with {background.examples} background windows of the same images as the negative "
            f"'background' (version {background.version}, {background.status})"
        )
    return 0 if added.status == "active" else EXIT_GATE


def _background(
    args: argparse.Namespace,
    db: Any,
    root: Path,
    embedder: Any,
    scene: str,
    name: str,
    part: str,
    found: Any,
) -> Any:
    """A scene that scans the frame (extinguishers) also enrols windows of the same photos away from
    the objects as its negative class, so the threshold knows the plant's walls and floors."""
    from analyzers.crops import PEOPLE_FREE
    from gateway.enrolment.folder import BACKGROUND, background_crops
    from gateway.enrolment.versions import enrol

    if part not in (*PEOPLE_FREE, "scan") or args.negative or found.layout != "yolo":
        return None
    crops = background_crops(
        Path(args.data), args.cls, part, limit=args.limit and 3 * args.limit, shapes=found.shapes
    )
    if not crops:
        return None
    added = enrol(
        db,
        root,
        embedder,
        scene,
        BACKGROUND,
        crops,
        negative=True,
        camera_id=args.camera,
        actor=actor(),
        origin={"data": Path(args.data).name, "class": args.cls, "background_of": name},
        force=True,
        reason=f"background of {name}",
    )
    return added


def _list(args: argparse.Namespace) -> int:
    from gateway.enrolment.versions import list_enrolments

    if len(args.words) > 2:
        raise ValueError("usage: vigil enrol list [SCENE] [--history] [--json]")
    scene = args.words[1] if len(args.words) == 2 else None
    db, _ = open_checked(args)
    rows = list_enrolments(db, scene, history=args.history)
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("nothing enrolled" + (f" for {scene}" if scene else ""))
        return 0
    print(
        f"{'scene':<18}  {'scope':<12}  {'name':<20}  {'kind':<8}  {'ver':>3}  {'status':<9}  "
        f"{'examples':>8}  {'threshold':>9}  {'LOO F1':>6}  {'id':<26}  created"
    )
    for r in rows:
        f1 = r["calibration"].get("loo_f1")
        mark = "*" if r["current"] else " "
        print(
            f"{r['scene']:<18}  {r['camera_id'] or 'site':<12}  {r['name'][:20]:<20}  {r['kind']:<8}  "
            f"{r['version']:>3}  {r['status']:<8}{mark}  {r['examples']:>8}  "
            f"{(r['threshold'] if r['threshold'] is not None else float('nan')):>9.4f}  "
            f"{(f1 if f1 is not None else float('nan')):>6.3f}  {r['id']:<26}  "
            f"{r['created_at']} {r['created_by']}"
        )
    return 0


def _show(args: argparse.Namespace) -> int:
    from gateway.enrolment.versions import show

    (enrolment_id,) = _words(args, 1, "show ID")
    db, _ = open_checked(args)
    print_json(show(db, enrolment_id))
    return 0


def _activate(args: argparse.Namespace) -> int:
    from gateway.enrolment.versions import activate

    (enrolment_id,) = _words(args, 1, "activate ID [--force --reason TEXT]")
    db, root = open_checked(args)
    row = activate(db, root, enrolment_id, actor(), args.force, args.reason)
    print(f"{row['scene']} {row['name']!r} version {row['version']} ({row['id']}) is current")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    from gateway.enrolment.versions import rollback

    scene, name = _words(args, 2, "rollback SCENE NAME [--camera ID]")
    db, _ = open_checked(args)
    row = rollback(db, scene, name, args.camera, actor())
    print(f"{scene} {name!r}: version {row['version']} ({row['id']}) is current again")
    return 0


def _remove(args: argparse.Namespace) -> int:
    from gateway.enrolment.versions import remove

    scene, name = _words(args, 2, "remove SCENE NAME [--camera ID]")
    db, _ = open_checked(args)
    count = remove(db, scene, name, args.camera, actor())
    print(f"removed {scene} {name!r}: {count} version(s) retired")
    return 0


def _guarded(args: argparse.Namespace) -> int:
    from analyzers.enrolment import EmbedderMissing

    try:
        return guard("enrol", cmd_enrol)(args)
    except EmbedderMissing as exc:
        print(f"vigil enrol: {exc}", file=sys.stderr)
        return EXIT_BAD


def register(sub: Any) -> None:
    p = sub.add_parser(
        "enrol",
        help="enrol a plant's own uniforms, extinguishers or role markers from example crops",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("words", nargs="+", metavar="SCENE NAME | ACTION ...", help="see above")
    p.add_argument(
        "--data", metavar="DIR", help="YOLO split (images/, labels/, data.yaml) or DIR/CLASS/ images"
    )
    p.add_argument("--class", dest="cls", metavar="CLASS", help="the class of the folder to enrol")
    p.add_argument("--limit", type=int, metavar="N", help="at most N examples, spread over the folder")
    p.add_argument("--negative", action="store_true", help="examples of what is NOT the look (not uniform)")
    p.add_argument("--camera", metavar="ID", help="for this camera only (overrides the site's class)")
    p.add_argument("--force", action="store_true", help="activate past the promotion gate")
    p.add_argument("--reason", help="why the gate is overridden (kept in the audit)")
    p.add_argument("--history", action="store_true", help="list: every version, not only the current")
    p.add_argument("--json", action="store_true", help="list: JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_guarded)
