"""`vigil eval`: score a detector, or a scene's detector, on a YOLO-format labelled data set.

Exit status 0 on success and 2 on bad input (data, options, model), with the reason on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from analyzers.evaluation import (
    ClassMetrics,
    ClassPlan,
    EvalError,
    evaluate_dataset,
    load_yolo_dataset,
    parse_class_map,
    plan_classes,
)
from analyzers.runtime import ModelCard, ModelCardError, load_card, read_card
from analyzers.runtime.families import family_names
from analyzers.scenes import SceneConfig
from gateway.cameras.analytics import detector_input
from gateway.cli.common import open_config, open_database
from gateway.config.schema import ConfigError, default_config_path
from gateway.db import SchemaOutdated
from gateway.db.schema import ModelVersion
from gateway.models.pack import ModelPackError, active_model_dir

MODELS_ENV = "VIGIL_MODELS_DIR"
DETECTOR_FAMILIES = family_names("detector")  # every registered detector family


@dataclass
class ResolvedModel:
    path: Path
    card: ModelCard
    source: str  # how it was found, for the report


def _cards_dir(args: argparse.Namespace) -> Path:
    config_path = Path(args.config) if args.config else default_config_path()
    return config_path.parent / "models"


def _folder_model(folder: Path, args: argparse.Namespace) -> ResolvedModel:
    """A model folder: its own model.yaml, or the project's card config/models/<folder>.yaml."""
    if (folder / "model.yaml").is_file():
        return ResolvedModel(folder, load_card(folder), str(folder))
    card_path = _cards_dir(args) / f"{folder.resolve().name}.yaml"
    if not card_path.is_file():
        raise EvalError(
            f"{folder}: no model card; add {folder / 'model.yaml'} or {card_path} (beside the config file)"
        )
    return ResolvedModel(folder, read_card(card_path, folder), f"{folder} (card {card_path})")


def _imported_model(spec: str, args: argparse.Namespace, problems: list[str]) -> ResolvedModel | None:
    """A model version id or an imported model name in the gateway's database, else in its model pack."""

    try:
        config, _ = open_config(args)
    except ConfigError as exc:
        problems.append(f"the gateway config {exc.path} cannot be used: {'; '.join(exc.problems)}")
        return None
    found = _database_model(config, spec, problems)
    if found is None and config.models.pack_dir is not None:
        found = _pack_model(config.models.pack_dir, spec, args, problems)
    return found


def _database_model(config: Any, spec: str, problems: list[str]) -> ResolvedModel | None:
    from sqlalchemy.exc import SQLAlchemyError

    url: str = config.database.url
    if url.startswith("sqlite:///") and ":memory:" not in url:
        # Connecting would create an empty database file as a side effect of a read-only command.
        db_file = Path(url.removeprefix("sqlite:///"))
        if not db_file.is_file():
            problems.append(
                f"no database at {db_file} (run `vigil db upgrade` and `vigil models import DIR`)"
            )
            return None
    db = open_database(config)
    try:
        db.ensure_current()
        with db.session() as s:
            row = s.get(ModelVersion, spec)
            rel = row.path if row is not None else None
        if rel is not None:
            path = config.storage.root / rel
            return ResolvedModel(path, load_card(path), f"version {spec} ({path})")
        path, card, version_id = active_model_dir(db, config.storage.root, spec)
        return ResolvedModel(path, card, f"{spec} version {version_id} ({path})")
    except (ModelPackError, SchemaOutdated) as exc:
        problems.append(str(exc))
    except SQLAlchemyError as exc:
        detail = exc.args[0] if exc.args else ""
        problems.append(f"the database cannot be read ({type(exc).__name__}: {detail})")
    except ModelCardError as exc:
        problems.append(f"imported model {spec!r} is damaged: {exc}")
    finally:
        db.dispose()
    return None


def _pack_model(pack: Path, name: str, args: argparse.Namespace, problems: list[str]) -> ResolvedModel | None:
    folder = pack / name
    if not folder.is_dir():
        problems.append(f"no folder {name}/ in the model pack {pack}")
        return None
    return _folder_model(folder, args)


def resolve_model(spec: str, args: argparse.Namespace, what: str = "--model") -> ResolvedModel:
    """A model folder; else a version id or model name imported into the gateway's database; else the
    folder of that name in the config's ``models.pack_dir`` or in $VIGIL_MODELS_DIR (said on stderr)."""
    path = Path(spec)
    if path.is_dir():
        return _folder_model(path, args)
    if path.exists():
        raise EvalError(f"{what} {spec}: a file; pass the model's folder (with the ONNX file)")
    problems: list[str] = []
    found = _imported_model(spec, args, problems)
    if found is None and os.environ.get(MODELS_ENV) and "/" not in spec:
        found = _pack_model(Path(os.environ[MODELS_ENV]), spec, args, problems)
    if found is None and "/" not in spec:  # the project's own trained detectors and cards
        found = _pack_model(_cards_dir(args), spec, args, problems)
    if found is None:
        raise EvalError(
            f"{what} {spec}: not a model folder, nor a model version id or name this gateway knows:\n  "
            + "\n  ".join(problems)
        )
    if problems:
        print(f"note: {problems[0]}; using {found.source}", file=sys.stderr)
    return found


def _format_table(metrics: dict[str, ClassMetrics], plan: ClassPlan, header: str, out: TextIO) -> None:
    print(header, file=out)
    width = max([5, *(len(n) for n in metrics)])
    model_width = max([11, *(len(m) for m in plan.pairs.values())])
    print(
        f"{'class':<{width}}  {'model class':<{model_width}}  {'support':>7}  "
        f"{'TP':>5}  {'FP':>5}  {'FN':>5}  {'precision':>9}  {'recall':>6}  {'F1':>6}  "
        f"{'img P':>6}  {'img R':>6}  {'img F1':>6}",
        file=out,
    )
    for name, m in metrics.items():
        c = m.counts
        print(
            f"{name:<{width}}  {plan.pairs[name]:<{model_width}}  {m.support:>7}  {c.tp:>5}  {c.fp:>5}  "
            f"{c.fn:>5}  {m.precision:>9.4f}  {m.recall:>6.4f}  {m.f1:>6.4f}  {m.image_precision:>6.4f}  "
            f"{m.image_recall:>6.4f}  {m.image_f1:>6.4f}",
            file=out,
        )


def cmd_eval(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except (EvalError, ModelCardError) as exc:
        print(f"vigil eval: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    import analyzers.detectors as detectors
    from analyzers.scenes import SceneError, scene_class

    if not 0.0 <= args.conf <= 1.0:
        raise EvalError(f"--conf must be in 0..1, not {args.conf}")
    iou_given = args.iou is not None
    if args.iou is None:
        # a part cut from a person box is looser than a drawn one: classifier scenes match at 0.3
        args.iou = 0.3 if getattr(args, "end_to_end", False) else 0.5
    if not 0.0 < args.iou <= 1.0:
        raise EvalError(f"--iou must be in (0, 1], not {args.iou}")
    mapping = parse_class_map(args.map)
    # Labels first: a bad label file should fail before a model is loaded. A folder with one
    # sub-folder per class is no YOLO split: only a classifier can be scored on it.
    dataset, not_yolo = None, None
    try:
        dataset = load_yolo_dataset(Path(args.data))
    except EvalError as exc:
        if not Path(args.data).is_dir() or (Path(args.data) / "images").is_dir():
            raise
        not_yolo = exc
    labels: frozenset[str] | None = None
    threshold: float | None = None
    person_model = "yolox_nano"
    if args.scene:
        try:
            scene_type = scene_class(args.scene)
            # Built with default parameters: some scenes take their classes from parameters.
            scene = scene_type("eval", SceneConfig(scene=args.scene))
        except (SceneError, ValidationError) as exc:
            raise EvalError(f"scene {args.scene!r}: {exc}") from None
        labels = scene.wanted_labels()
        threshold, person_model = scene.base_threshold, scene.person_model
        default = scene.model_name
        if not default:
            raise EvalError(
                f"scene {args.scene!r} has no default model (it is configured per camera); use --model"
            )
        model = resolve_model(str(default), args, f"the {args.scene} scene's model")
    else:
        model = resolve_model(args.model, args)
    card = model.card
    if args.scene and getattr(scene, "enrolment_judges", False) and getattr(args, "end_to_end", False):
        if dataset is None:
            raise EvalError(str(not_yolo))
        return _eval_enrolled(args, scene, model, dataset, mapping)
    if args.scene and card.family in DETECTOR_FAMILIES and getattr(args, "end_to_end", False):
        if dataset is None:
            raise EvalError(str(not_yolo))
        if not iou_given:
            args.iou = 0.5
        return _eval_scene(args, scene, model, dataset, mapping)
    if card.family == "classifier" and getattr(args, "end_to_end", False):
        return _eval_end_to_end(args, model, mapping, labels, threshold, args.people_model or person_model)
    if getattr(args, "end_to_end", False):
        raise EvalError(f"--end-to-end scores a classifier of people's parts; {card.name} is a {card.family}")
    if card.family == "classifier":
        return _eval_classifier(args, model, mapping, labels)
    if dataset is None:
        raise EvalError(str(not_yolo))
    # load_detector (every detector family) may not exist in older trees; YOLOX always does.
    load_detector = getattr(detectors, "load_detector", None)
    families = DETECTOR_FAMILIES if load_detector else ("yolox",)
    if card.family not in families:
        raise EvalError(
            f"{card.name} is a {card.family} model; eval scores detectors ({', '.join(families)})"
        )
    judged = [c for c in card.classes if labels is None or c in labels]
    plan = plan_classes(dataset.names, judged, mapping)
    if not plan.pairs:
        raise EvalError(
            f"no dataset class ({', '.join(dataset.names)}) is a class of {card.name}; "
            "map them with --map DATASET_CLASS=MODEL_CLASS"
        )
    class_ids = {card.classes.index(m) for m in plan.pairs.values()}
    detector = load_detector(card, model.path) if load_detector else detectors.YoloxDetector(card, model.path)

    def detect(images: Any) -> Any:
        return detector.detect(images, conf=args.conf, classes=class_ids)

    started = time.perf_counter()
    with tqdm(
        total=len(dataset.images), desc="evaluating", unit="image", leave=False, file=sys.stderr
    ) as bar:
        metrics = evaluate_dataset(dataset, detect, plan, args.iou, detector.max_batch, bar.update)
    elapsed = time.perf_counter() - started
    count = len(dataset.images)
    notes = []
    if plan.skipped:
        notes.append(
            f"not evaluated (no class of {card.name} to compare with; --map DATASET_CLASS=MODEL_CLASS "
            f"names one): {', '.join(plan.skipped)}"
        )
    notes.append(f"{count} images in {elapsed:.1f} s: {1000 * elapsed / count:.0f} ms per image")
    if args.json:
        print(json.dumps({"classes": {name: m.as_dict() for name, m in metrics.items()}}))
        for note in notes:
            print(note, file=sys.stderr)
        return 0
    scope = f", scene {args.scene}" if args.scene else ""
    header = (
        f"{card.name} {card.version}{scope} on {dataset.root} ({count} images, conf {args.conf:g}, "
        f"match IoU {args.iou:g}); model: {model.source}"
    )
    _format_table(metrics, plan, header, sys.stdout)
    for note in notes:
        print(note)
    return 0


def _eval_classifier(
    args: argparse.Namespace, model: ResolvedModel, mapping: dict[str, str], labels: frozenset[str] | None
) -> int:
    """A classifier card: object level (one sample per labelled box, cut as the runtime cuts the
    card's part) and image level (a frame shows a class when any of its samples does)."""
    from analyzers.detectors import ImageClassifier
    from analyzers.training.data import DataError
    from analyzers.training.evaluate import card_samples, metrics, predict, summarise

    root = Path(args.data)
    started = time.perf_counter()
    try:
        classifier = ImageClassifier(model.card, model.path)
        data, spec = card_samples(model.card, root, mapping)
    except DataError as exc:
        raise EvalError(str(exc)) from None
    if len(data) == 0:
        raise EvalError(f"{root}: no labelled sample of {', '.join(spec.classes)}")
    raw = metrics(predict(classifier, data), data, spec.multilabel)
    elapsed = time.perf_counter() - started
    result = summarise(raw)
    if labels is not None:  # a scene reads only some of the classes
        result["classes"] = {k: v for k, v in result["classes"].items() if k in labels} or result["classes"]
    if args.json:
        print(json.dumps({"classes": result["classes"], "overall": result["overall"], "levels": raw}))
        return 0
    frames = len(set(data.image_ids)) if data.image_ids else len(data)
    print(
        f"{model.card.name} {model.card.version} (classifier on {spec.crop} crops, {len(data)} samples from "
        f"{frames} images of {root}); model: {model.source}"
    )
    width = max([5, *(len(n) for n in result["classes"])])
    print(
        f"{'class':<{width}}  {'support':>7}  {'TP':>5}  {'FP':>5}  {'FN':>5}  {'precision':>9}  "
        f"{'recall':>6}  {'F1':>6}  {'img n':>5}  {'img P':>6}  {'img R':>6}  {'img F1':>6}"
    )
    for name, m in result["classes"].items():
        print(
            f"{name:<{width}}  {m['support']:>7}  {m['tp']:>5}  {m['fp']:>5}  {m['fn']:>5}  "
            f"{m['precision']:>9.4f}  {m['recall']:>6.4f}  {m['f1']:>6.4f}  {m['image_support']:>5}  "
            f"{m['image_precision']:>6.4f}  {m['image_recall']:>6.4f}  {m['image_f1']:>6.4f}"
        )
    print(f"{frames} images in {elapsed:.1f} s")
    return 0


def _eval_end_to_end(
    args: argparse.Namespace,
    model: ResolvedModel,
    mapping: dict[str, str],
    labels: frozenset[str] | None,
    threshold: float | None,
    person_model: str,
) -> int:
    """A classifier card of people's parts scored as its scene runs it: the person detector's boxes
    (scene threshold), the part cut from each as ``crops.part_box`` cuts it, the classifier; object
    level by matching parts to labelled boxes (IoU >= --iou or containment), image level per frame."""
    from tqdm import tqdm

    from analyzers.crops import PEOPLE_FREE
    from analyzers.detectors import ImageClassifier, load_detector
    from analyzers.evaluation import find_data_yaml, read_names
    from analyzers.training.data import DataError
    from analyzers.training.evaluate import card_spec, default_class_map, summarise
    from analyzers.training.people import PERSON_THRESHOLD, PeopleFinder, evaluate_people_scene

    spec = card_spec(model.card)
    if spec.crop in PEOPLE_FREE or spec.crop == "box":
        raise EvalError(
            f"--end-to-end needs a classifier of a person's part; {model.card.name} crops {spec.crop}"
        )
    root = Path(args.data)
    people_model = resolve_model(person_model, args, "--people-model")
    cmap = default_class_map(spec, read_names(find_data_yaml(root)), mapping)
    if not cmap:
        raise EvalError(f"{root}: no class of the data set is a class of {model.card.name}; use --map")
    cache = Path(os.environ.get("VIGIL_TRAIN_CACHE") or Path.home() / ".cache" / "vigil" / "train") / "people"
    floor = PERSON_THRESHOLD if threshold is None else threshold
    started = time.perf_counter()
    try:
        classifier = ImageClassifier(model.card, model.path)
        finder = PeopleFinder(load_detector(people_model.card, people_model.path), cache)
        count = len(load_yolo_dataset(root).images)
        with tqdm(total=count, desc="evaluating", unit="image", leave=False, file=sys.stderr) as bar:
            raw = evaluate_people_scene(
                classifier, finder, root, cmap, spec.crop, floor, args.iou, progress=bar.update
            )
    except DataError as exc:
        raise EvalError(str(exc)) from None
    elapsed = time.perf_counter() - started
    result = summarise(raw)
    if labels is not None:
        result["classes"] = {k: v for k, v in result["classes"].items() if k in labels} or result["classes"]
    if args.json:
        print(json.dumps({"classes": result["classes"], "overall": result["overall"], "levels": raw}))
        return 0
    print(
        f"{model.card.name} {model.card.version} end to end on {root} ({count} images): "
        f"{people_model.card.name} people >= {floor:g} -> {spec.crop} crop -> classifier; "
        f"a part matches a labelled box at IoU >= {args.iou:g} or when it holds it; model: {model.source}"
    )
    _print_rows(result["classes"])
    print(f"{count} images in {elapsed:.1f} s")
    return 0


def scene_report_classes(
    scene: Any, dataset_names: list[str], mapping: dict[str, str]
) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Dataset class -> (reported name, detector labels that count as it) for a scene: ``--map``
    names a scene class or one of its labels (reported under that name); without it a dataset class
    whose name is a scene class or label (any case) is reported under the scene class."""
    classes: dict[str, tuple[str, ...]] = scene.eval_classes
    aliases = {label.lower(): name for name, labels in classes.items() for label in (name, *labels)}
    out: dict[str, tuple[str, tuple[str, ...]]] = {}
    unknown = sorted(set(mapping) - set(dataset_names))
    if unknown:
        raise EvalError(f"--map names {', '.join(unknown)}, not a class of the data set ({dataset_names})")
    for d in dataset_names:
        if d in mapping:
            target = mapping[d]
            canonical = aliases.get(target.lower())
            if canonical is None:
                known = ", ".join(sorted({n for n in aliases}))
                raise EvalError(f"--map {d}={target}: the {scene.key} scene reports none called so ({known})")
            out[d] = (target, classes[canonical])
        elif d.lower() in aliases and d.lower() not in {t.lower() for t in mapping.values()}:
            canonical = aliases[d.lower()]
            out[d] = (canonical, classes[canonical])
    return out


def _eval_scene(
    args: argparse.Namespace, scene: Any, model: ResolvedModel, dataset: Any, mapping: dict[str, str]
) -> int:
    """A detector scene scored as production runs it: the scene's model(s) at the scene's input
    size, every detection above the runtime's floor, then the scene's own filter (its labels, the
    card's or the camera-scene's thresholds, exclusions): ``Scene.relevant``, the same function
    the camera runner's ``Scene.update`` applies to every analysed frame."""
    from tqdm import tqdm

    from analyzers.detectors import load_detector
    from analyzers.evaluation import Evaluator, iter_images
    from analyzers.records import Detection
    from analyzers.scenes.base import DETECTION_FLOOR

    models = [model] + [
        resolve_model(name, args, f"the {scene.key} scene's model") for name in scene.extra_models
    ]
    taken: list[tuple[str, ...] | None] = [None, *scene.extra_models.values()]
    size = getattr(args, "size", None) or scene.config.input_size
    detectors = []
    for found in models:
        # the same mapping of the scene's setting to a detector input the camera runner uses
        detectors.append(load_detector(found.card, found.path, input_size=detector_input(found.card, size)))
        scene.use_card_thresholds(found.card.thresholds)
    report = scene_report_classes(scene, dataset.names, mapping)
    if not report:
        raise EvalError(
            f"no class of {dataset.root} ({', '.join(dataset.names)}) is a class the {scene.key} scene "
            f"reports ({', '.join(scene.eval_classes)}); map one with --map DATASET_CLASS=SCENE_CLASS"
        )
    labels_of = {name: labels for name, labels in report.values()}  # reported class -> detector labels
    names = sorted(labels_of)
    evaluator = Evaluator(names, args.iou)
    started = time.perf_counter()
    with tqdm(
        total=len(dataset.images), desc="evaluating", unit="image", leave=False, file=sys.stderr
    ) as bar:
        for item, image in iter_images(dataset):
            height, width = image.shape[:2]
            found_all: list[Detection] = []
            for detector, labels in zip(detectors, taken, strict=True):
                answer = detector.detect([image], conf=DETECTION_FLOOR)[0]
                found_all += [d for d in answer if labels is None or d.label in labels]
            kept = scene.relevant(found_all, width, height)
            truths = [
                type(t)(report[t.label][0], t.box)
                for t in item.truths(dataset.names, width, height)
                if t.label in report
            ]
            predictions = [
                Detection(d.box, d.score, d.class_id, name)
                for name, labels in labels_of.items()
                for d in kept
                if d.label in labels
            ]
            evaluator.add(truths, predictions)
            bar.update(1)
    elapsed = time.perf_counter() - started
    rows = {}
    for name, m in evaluator.metrics().items():
        c = m.counts
        rows[name] = {
            **m.as_dict(),
            "tp": c.tp,
            "fp": c.fp,
            "fn": c.fn,
            "image_support": c.image_tp + c.image_fn,
        }
    keys = ("precision", "recall", "f1", "image_precision", "image_recall", "image_f1")
    overall = {k: round(sum(r[k] for r in rows.values()) / max(len(rows), 1), 4) for k in keys}
    count = len(dataset.images)
    sizes = "/".join(sorted({d.size_label for d in detectors if hasattr(d, "size_label")})) or str(size)
    if args.json:
        print(json.dumps({"classes": rows, "overall": {**overall, "average": "macro over classes"}}))
        print(f"{count} images in {elapsed:.1f} s", file=sys.stderr)
        return 0
    print(
        f"scene {scene.key} end to end on {dataset.root} ({count} images): "
        f"{' + '.join(f'{m.card.name} {m.card.version}' for m in models)} at input {sizes}, "
        f"detections >= {DETECTION_FLOOR:g} -> the scene's filter (thresholds "
        f"{scene.card_thresholds or scene.base_threshold}); match IoU >= {args.iou:g}"
    )
    _print_rows(rows)
    print(f"{count} images in {elapsed:.1f} s: {1000 * elapsed / max(count, 1):.0f} ms per image")
    return 0


def _eval_enrolled(
    args: argparse.Namespace, scene: Any, model: ResolvedModel, dataset: Any, mapping: dict[str, str]
) -> int:
    """A scene that judges by the plant's enrolment, scored as production runs it: its people model
    at the scene's input size, ``Scene.relevant``, then the scene's own per-frame call against the
    enrolments in the gateway's database (gateway/enrolment/scoring.py)."""
    from tqdm import tqdm

    from analyzers.detectors import load_detector
    from analyzers.enrolment import EmbedderMissing, EnrolmentError, use_source
    from analyzers.scenes.base import DETECTION_FLOOR
    from analyzers.training.evaluate import summarise
    from gateway.enrolment.runtime import DatabaseEnrolments
    from gateway.enrolment.scoring import score_scene
    from gateway.enrolment.versions import list_enrolments

    config, _ = open_config(args)
    db = open_database(config)
    try:
        db.ensure_current()
    except SchemaOutdated as exc:
        raise EvalError(str(exc)) from None
    source = DatabaseEnrolments(db, config.storage.root, config.models.pack_dir)
    try:
        enrolled = source.enrolled(scene.key, getattr(args, "camera", None))
        embedder = source.embedder()
    except EmbedderMissing as exc:
        raise EvalError(str(exc)) from None
    if enrolled is None:
        raise EvalError(
            f"nothing enrolled for {scene.key} in {config.database.url.split('///')[-1]}: "
            f"`vigil enrol {scene.key} NAME --data DIR --class CLASS` first"
        )
    report = {d: name for d, (name, _) in scene_report_classes(scene, dataset.names, mapping).items()}
    if not report:
        raise EvalError(
            f"no class of {dataset.root} ({', '.join(dataset.names)}) is a class the {scene.key} scene "
            f"reports ({', '.join(scene.eval_classes)}); map one with --map DATASET_CLASS=SCENE_CLASS"
        )
    if getattr(args, "people_model", None):
        model = resolve_model(args.people_model, args, "--people-model")
    size = getattr(args, "size", None) or scene.config.input_size
    detector = load_detector(model.card, model.path, input_size=detector_input(model.card, size))
    scene.use_card_thresholds(model.card.thresholds)
    old = use_source(source)
    started = time.perf_counter()
    try:
        with tqdm(
            total=len(dataset.images), desc="evaluating", unit="image", leave=False, file=sys.stderr
        ) as bar:
            raw = score_scene(
                scene,
                lambda image: detector.detect([image], conf=DETECTION_FLOOR)[0],
                dataset,
                report,
                args.iou,
                bar.update,
            )
    except (EnrolmentError, ValueError) as exc:
        raise EvalError(str(exc)) from None
    finally:
        use_source(old)
    elapsed = time.perf_counter() - started
    result = summarise(raw)
    cal = enrolled.calibration
    members = [
        f"{e['name']} ({e['kind']}, {e['examples']})"
        for e in list_enrolments(db, scene.key)
        if e["camera_id"] is None
    ]
    db.dispose()
    count = len(dataset.images)
    if args.json:
        info = {"enrolment": members, "calibration": {k: v for k, v in cal.as_dict().items() if k != "tried"}}
        print(json.dumps({"classes": result["classes"], "overall": result["overall"], "levels": raw, **info}))
        print(f"{count} images in {elapsed:.1f} s (embedder on {embedder.provider})", file=sys.stderr)
        return 0
    print(
        f"scene {scene.key} end to end on {dataset.root} ({count} images): {model.card.name} people -> "
        f"{scene.enrol_part} crops -> the enrolment [{', '.join(members)}] (matcher {cal.method}, threshold "
        f"{cal.threshold:.4f}); a call matches a labelled box at IoU >= {args.iou:g} or when it holds it"
    )
    _print_rows(result["classes"])
    print(f"{count} images in {elapsed:.1f} s: {1000 * elapsed / max(count, 1):.0f} ms per image")
    return 0


def _print_rows(rows: dict[str, dict[str, Any]]) -> None:
    width = max([5, *(len(n) for n in rows)])
    print(
        f"{'class':<{width}}  {'support':>7}  {'TP':>5}  {'FP':>5}  {'FN':>5}  {'precision':>9}  "
        f"{'recall':>6}  {'F1':>6}  {'img n':>5}  {'img P':>6}  {'img R':>6}  {'img F1':>6}"
    )
    for name, m in rows.items():
        print(
            f"{name:<{width}}  {m['support']:>7}  {m['tp']:>5}  {m['fp']:>5}  {m['fn']:>5}  "
            f"{m['precision']:>9.4f}  {m['recall']:>6.4f}  {m['f1']:>6.4f}  {m['image_support']:>5}  "
            f"{m['image_precision']:>6.4f}  {m['image_recall']:>6.4f}  {m['image_f1']:>6.4f}"
        )


def _input_size(text: str) -> str | tuple[int, int]:
    if text in ("auto", "card"):
        return text
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give WIDTHxHEIGHT (e.g. 640x352), auto or card"
        ) from None
    return (w, h)


def register(subparsers: Any) -> None:
    """Register `vigil eval` on the top-level sub-command parsers."""
    p = subparsers.add_parser(
        "eval",
        help="score a detector or classifier on a labelled data set (precision, recall, F1 per class)",
        description=(
            "Object-level precision/recall/F1 (greedy matching by score, one prediction per object, "
            "IoU >= --iou) and image-level ones, per dataset class. Exit status 2 on bad input."
        ),
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--model",
        metavar="DIR_OR_VERSION",
        help="model folder (model.yaml, or a card config/models/<folder>.yaml beside the config file), "
        "or an imported model's version id or name",
    )
    which.add_argument("--scene", metavar="NAME", help="the scene's default model, judged on its labels only")
    p.add_argument(
        "--data",
        required=True,
        metavar="DIR",
        help="YOLO split: DIR/images, DIR/labels, data.yaml (classifiers: or one sub-folder per class)",
    )
    p.add_argument(
        "--map",
        metavar="A=B,...",
        help="dataset class = model class pairs, e.g. person=person,head=no_helmet "
        "(unmapped classes are evaluated when the model has a class of the same name)",
    )
    p.add_argument("--json", action="store_true", help='print {"classes": {NAME: {...}}} on stdout only')
    p.add_argument("--conf", type=float, default=0.3, help="detector confidence threshold (default 0.3)")
    p.add_argument(
        "--iou",
        type=float,
        default=None,
        help="IoU for a prediction to match an object (default 0.5; --end-to-end: 0.3, or containment)",
    )
    p.add_argument(
        "--end-to-end",
        action="store_true",
        help="classifier of people's parts (helmet, workwear): run the person detector first and cut "
        "each part as the scene does, instead of cropping the labelled boxes",
    )
    p.add_argument(
        "--people-model",
        metavar="DIR_OR_NAME",
        help="person detector for --end-to-end (default: the scene's, yolox_nano)",
    )
    p.add_argument(
        "--size",
        type=_input_size,
        metavar="WxH|auto|card",
        help="detector input size for --scene --end-to-end (default: the scene's input_size, auto: "
        "aspect-matched to each frame for detectors that take any size)",
    )
    p.set_defaults(func=cmd_eval)
