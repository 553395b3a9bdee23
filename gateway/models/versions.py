"""Model versions: register (for the trainer), list, show, activate with a promotion gate, roll back,
retire, and test a version on a test set.

How a version is chosen (compatible with ``modelpack.active_model_dir``):

- a scene that names a model (``model: NAME``, or the scene's default model) reads that model's
  *current* version: the version with status ``active`` and the newest ``activated_at``. Activating a
  version for the whole model sets its ``activated_at`` to now; rolling back does the same for an
  older version. A version registered by the trainer has status ``candidate`` until it is activated,
  so it is never picked up by accident; a retired version is never picked by name.
- a camera scene may pin a version: ``camera_scenes.model_version_id`` (activation per scene). A pin
  wins over the model's current version (the analytics side must read the pin; see the report).

Promotion gate: activating (or rolling back to) a version whose F1 on its task's test set
(``metrics["f1"]``) is lower than that of the version it replaces, or which has no F1 while the other
has one, is refused unless ``override=True`` with a reason. Every activation, rollback and retirement
is written to the audit log kept in ``metrics["audit"]`` of the version acted on (who, when, action,
scope, from, to, F1 of both, override, reason); ``audit_log()`` collects it for a model.

Test results are appended to ``metrics["tests"]``; a test on the version's own test set also updates
its top-level precision/recall/F1.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from analyzers.runtime import ModelCardError, load_card
from analyzers.runtime.families import family_names
from gateway.db import Database
from gateway.db.schema import CameraScene, Dataset, DetectionTask, Model, ModelVersion, utcnow
from gateway.i18n import current_lang
from gateway.i18n.models import model_description
from gateway.ids import new_ulid
from gateway.models.pack import install, model_row, sha256_file, version_row
from gateway.samples.library import SampleLibrary
from gateway.times import as_utc, iso

NEVER = dt.datetime.min.replace(tzinfo=dt.UTC)
STATUSES = ("candidate", "active", "retired")
MAX_TESTS = 20  # test results kept per version
DETECTOR_FAMILIES = family_names("detector")  # every registered detector family


class ModelVersionError(ValueError):
    """The request cannot be done; the message says what to fix. ``key`` and ``params``: the same
    message in gateway.i18n's tables, for the API to word it in the user's language."""

    def __init__(self, message: str, key: str | None = None, **params: object) -> None:
        super().__init__(message)
        self.key, self.params = key, params


class VersionNotFound(ModelVersionError):
    pass


class GateRefused(ModelVersionError):
    """The promotion gate refused an activation: the F1 is lower and no override was given."""


# --- reading ------------------------------------------------------------------------------------


def _version(s: Session, version_id: str) -> ModelVersion:
    row = s.get(ModelVersion, version_id)
    if row is None:
        raise VersionNotFound(
            f"no model version {version_id!r}; `vigil models list` shows the versions",
            "api.model.no_version",
            version=version_id,
        )
    return row


def current_version(s: Session, model_id: int) -> ModelVersion | None:
    """The version a scene naming the model reads (what ``active_model_dir`` picks)."""
    rows = list(
        s.scalars(
            select(ModelVersion).where(ModelVersion.model_id == model_id, ModelVersion.status == "active")
        )
    )
    if not rows:
        return None
    return max(rows, key=lambda v: (as_utc(v.activated_at) or NEVER, v.id))


def _f1(v: ModelVersion | None) -> float | None:
    if v is None:
        return None
    value = (v.metrics or {}).get("f1")
    return float(value) if isinstance(value, int | float) else None


def _scene_ref(cs: CameraScene) -> str:
    ref = (cs.settings or {}).get("model")
    if ref:
        return str(ref)
    try:
        from analyzers.scenes import scene_class

        return scene_class(cs.scene).default_model or ""
    except Exception:
        return ""


def _ref_targets(ref: str, model_name: str, version_id: str) -> bool | None:
    """True: the reference pins this version; False: pins another one or another model;
    None: it names the model (its current version)."""
    name, _, vid = ref.rpartition("@") if "@" in ref else (ref, "", "")
    if not vid and len(ref) == 26 and ref.isalnum() and ref.isupper():
        return ref == version_id
    if vid:
        return vid == version_id
    return None if name == model_name else False


def usage(s: Session, v: ModelVersion) -> list[dict[str, Any]]:
    """Camera scenes that run this version: pinned, named in the scene's model reference, or running
    the model's current version by name."""
    current = current_version(s, v.model_id)
    out = []
    for cs in s.scalars(select(CameraScene).order_by(CameraScene.camera_id, CameraScene.scene)):
        if cs.model_version_id is not None:
            if cs.model_version_id == v.id:
                out.append(
                    {"camera_id": cs.camera_id, "scene": cs.scene, "how": "pinned", "enabled": cs.enabled}
                )
            continue
        hit = _ref_targets(_scene_ref(cs), v.model.name, v.id)
        if hit or (hit is None and current is not None and current.id == v.id):
            how = "model reference" if hit else "current version of the model"
            out.append({"camera_id": cs.camera_id, "scene": cs.scene, "how": how, "enabled": cs.enabled})
    return out


def _dataset_json(s: Session, dataset_id: str | None) -> dict[str, Any] | None:
    if dataset_id is None:
        return None
    ds = s.get(Dataset, dataset_id)
    if ds is None:
        return {"id": dataset_id, "missing": True}
    task = s.get(DetectionTask, ds.task_id) if ds.task_id is not None else None
    return {"id": ds.id, "name": ds.name, "purpose": ds.purpose, "task": task.name if task else None}


def version_json(s: Session, v: ModelVersion, full: bool = False) -> dict[str, Any]:
    current = current_version(s, v.model_id)
    metrics = {k: val for k, val in (v.metrics or {}).items() if k not in ("audit", "tests")}
    out: dict[str, Any] = {
        "id": v.id,
        "model": v.model.name,
        "family": v.model.family,
        "version": v.version,
        "status": v.status,
        "current": current is not None and current.id == v.id,
        "description": model_description(
            v.model.name, (v.card or {}).get("description") or v.model.description, current_lang()
        ),
        "created_at": iso(v.created_at),
        "activated_at": iso(v.activated_at),
        "train_set_id": v.train_set_id,
        "test_set_id": v.test_set_id,
        "metrics": metrics,
        "sha256": v.sha256,
    }
    if full:
        out["train_set"] = _dataset_json(s, v.train_set_id)
        out["test_set"] = _dataset_json(s, v.test_set_id)
        out["usage"] = usage(s, v)
        out["classes"] = (v.card or {}).get("classes", [])
        out["licence"] = (v.card or {}).get("licence") or v.model.licence
        out["path"] = v.path
        out["tests"] = list((v.metrics or {}).get("tests", []))
        out["audit"] = list((v.metrics or {}).get("audit", []))
    return out


def list_versions(db: Database, model: str | None = None) -> list[dict[str, Any]]:
    with db.session() as s:
        stmt = select(ModelVersion).join(Model)
        if model:
            stmt = stmt.where(Model.name == model)
        rows = s.scalars(stmt.order_by(Model.name, ModelVersion.created_at, ModelVersion.id))
        return [version_json(s, v) for v in rows]


def show_version(db: Database, version_id: str) -> dict[str, Any]:
    with db.session() as s:
        return version_json(s, _version(s, version_id), full=True)


def audit_log(db: Database, model: str) -> list[dict[str, Any]]:
    """Every activation, rollback and retirement of a model's versions, oldest first."""
    with db.session() as s:
        rows = s.scalars(select(ModelVersion).join(Model).where(Model.name == model))
        entries = [e for v in rows for e in (v.metrics or {}).get("audit", [])]
    return sorted(entries, key=lambda e: e.get("at") or "")


# --- register -----------------------------------------------------------------------------------


def register_version(
    db: Database,
    storage_root: Path,
    model_dir: Path,
    *,
    name: str | None = None,
    family: str | None = None,
    train_set_id: str | None = None,
    test_set_id: str | None = None,
    metrics: dict[str, Any] | None = None,
    description: str | None = None,
    actor: str = "trainer",
) -> str:
    """Register a trained model (a folder with ``model.yaml`` and its ONNX file) as a new version with
    status ``candidate``; returns its id. The same weights again return the existing id.

    ``metrics`` are the numbers on the test set (``precision``, ``recall``, ``f1``; more keys are kept).
    """
    try:
        card = load_card(model_dir)
    except ModelCardError as exc:
        raise ModelVersionError(str(exc)) from exc
    if name is not None and name != card.name:
        raise ModelVersionError(f"{model_dir}: the card names model {card.name!r}, not {name!r}")
    if family is not None and family != card.family:
        raise ModelVersionError(f"{model_dir}: the card's family is {card.family!r}, not {family!r}")
    digest = sha256_file(model_dir / card.file)
    if card.sha256 and card.sha256 != digest:
        raise ModelVersionError(f"{model_dir / card.file}: SHA-256 does not match the card's")
    card.sha256 = digest
    if description is not None:
        card.description = description
    with db.session() as s:
        for ds_id, purpose in ((train_set_id, "train"), (test_set_id, "test")):
            if ds_id is None:
                continue
            ds = s.get(Dataset, ds_id)
            if ds is None:
                raise ModelVersionError(
                    f"no dataset {ds_id} (the {purpose} set); `vigil samples split TASK` makes them"
                )
            if ds.purpose != purpose:
                raise ModelVersionError(f"dataset {ds_id} is a {ds.purpose} set, not a {purpose} set")
        model = model_row(s, card)
        existing = version_row(s, model, card.version)
        if existing is not None:
            if existing.sha256 != digest:
                raise ModelVersionError(
                    f"{card.name} version {card.version} exists already with other weights; "
                    "give the new weights a new version in the card"
                )
            return existing.id
        rel = Path("models") / card.name / card.version
        install(model_dir, storage_root / rel, card)
        version = ModelVersion(
            id=new_ulid(),
            model_id=model.id,
            version=card.version,
            sha256=digest,
            path=rel.as_posix(),
            card=card.model_dump(mode="json"),
            train_set_id=train_set_id,
            test_set_id=test_set_id,
            metrics={**(metrics or {}), "registered_by": actor},
            status="candidate",
            activated_at=None,
        )
        s.add(version)
        return version.id


# --- activate, roll back, retire ----------------------------------------------------------------


def _audit(v: ModelVersion, entry: dict[str, Any]) -> None:
    metrics = dict(v.metrics or {})
    metrics["audit"] = [*metrics.get("audit", []), entry]
    v.metrics = metrics


def _gate(candidate: ModelVersion, replaced: ModelVersion | None, override: bool, reason: str | None) -> bool:
    """True when the gate needed the override (it is recorded); raises GateRefused without one."""
    if replaced is None or replaced.id == candidate.id:
        return False
    new, old = _f1(candidate), _f1(replaced)
    if old is None or (new is not None and new >= old):
        return False
    why = (
        f"version {candidate.id} has no F1 on a test set while {replaced.id} has {old:.4f}"
        if new is None
        else f"version {candidate.id} has F1 {new:.4f}, lower than {old:.4f} of {replaced.id}"
    )
    figures = {"candidate": candidate.id, "replaced": replaced.id, "old": f"{old:.4f}"}
    figures["new"] = "-" if new is None else f"{new:.4f}"
    case = "no_f1" if new is None else "lower"
    if not override:
        raise GateRefused(
            f"promotion gate: {why}; activate with override and a reason to do it anyway",
            f"api.model.gate_{case}_override",
            **figures,
        )
    if not reason or not reason.strip():
        raise GateRefused(
            f"promotion gate: {why}; an override needs a reason", f"api.model.gate_{case}_reason", **figures
        )
    return True


def activate(
    db: Database,
    version_id: str,
    actor: str,
    *,
    scene: str | None = None,
    camera_id: str | None = None,
    override: bool = False,
    reason: str | None = None,
    action: str = "activate",
) -> dict[str, Any]:
    """Make a version the one that runs: for the whole model (no scene), or pinned on the camera
    scenes of ``scene`` (optionally of one camera). Passes the promotion gate first."""
    if camera_id is not None and scene is None:
        raise ModelVersionError(
            "a camera needs a scene: activation is per scene", "api.model.camera_needs_scene"
        )
    with db.session() as s:
        v = _version(s, version_id)
        now = utcnow()
        entries: list[dict[str, Any]] = []
        if scene is None:
            replaced = current_version(s, v.model_id)
            overridden = _gate(v, replaced, override, reason)
            v.status, v.activated_at = "active", now
            entries.append(_entry(action, actor, now, "model", replaced, v, overridden, reason))
        else:
            stmt = select(CameraScene).where(CameraScene.scene == scene)
            if camera_id is not None:
                stmt = stmt.where(CameraScene.camera_id == camera_id)
            targets = list(s.scalars(stmt.order_by(CameraScene.camera_id)))
            if not targets:
                where = f" on camera {camera_id}" if camera_id else ""
                raise ModelVersionError(
                    f"no camera runs scene {scene!r}{where}",
                    "api.model.no_camera_on_camera" if camera_id else "api.model.no_camera_runs",
                    scene=scene,
                    camera=camera_id,
                )
            for cs in targets:
                replaced = (
                    s.get(ModelVersion, cs.model_version_id)
                    if cs.model_version_id
                    else current_version(s, v.model_id)
                )
                overridden = _gate(v, replaced, override, reason)
                entries.append(
                    _entry(
                        action, actor, now, f"camera:{cs.camera_id}/{scene}", replaced, v, overridden, reason
                    )
                )
            for cs in targets:
                cs.model_version_id = v.id
            if v.status == "retired":
                v.status = "active"  # a pinned version runs; keep it visible as active
        for entry in entries:
            _audit(v, entry)
        return {**version_json(s, v), "audit": entries}


def _entry(
    action: str,
    actor: str,
    now: Any,
    scope: str,
    replaced: ModelVersion | None,
    to: ModelVersion,
    override: bool,
    reason: str | None,
) -> dict[str, Any]:
    return {
        "action": action,
        "actor": actor,
        "at": iso(now),
        "scope": scope,
        "from": replaced.id if replaced is not None else None,
        "to": to.id,
        "f1_from": _f1(replaced),
        "f1_to": _f1(to),
        "override": override,
        "reason": reason,
    }


def rollback(
    db: Database,
    target: str,
    actor: str,
    *,
    scene: str | None = None,
    camera_id: str | None = None,
    override: bool = False,
    reason: str | None = None,
) -> dict[str, Any]:
    """Run an earlier version again. ``target`` is that version's id, or a model name: then the
    version that was current before the present one. The promotion gate applies as to activation."""
    with db.session() as s:
        v = s.get(ModelVersion, target)
        if v is None:
            model = s.scalar(select(Model).where(Model.name == target))
            if model is None:
                raise VersionNotFound(
                    f"{target!r} is neither a model version id nor a model name",
                    "api.model.no_target",
                    target=target,
                )
            history = sorted(
                (x for x in model.versions if x.activated_at is not None and x.status != "candidate"),
                key=lambda x: (as_utc(x.activated_at) or NEVER, x.id),
                reverse=True,
            )
            if len(history) < 2:
                raise ModelVersionError(
                    f"model {target!r} has no earlier version to roll back to",
                    "api.model.no_earlier",
                    model=target,
                )
            version_id = history[1].id
        else:
            current = current_version(s, v.model_id)
            if current is not None and current.id == v.id and scene is None:
                raise ModelVersionError(
                    f"version {v.id} is the current version already",
                    "api.model.current_already",
                    version=v.id,
                )
            version_id = v.id
    return activate(
        db,
        version_id,
        actor,
        scene=scene,
        camera_id=camera_id,
        override=override,
        reason=reason,
        action="rollback",
    )


def retire(db: Database, version_id: str, actor: str, reason: str | None = None) -> dict[str, Any]:
    """Retire a version: it is no longer picked by model name (the previous active one runs again).
    Refused while camera scenes pin it."""
    with db.session() as s:
        v = _version(s, version_id)
        if v.status == "retired":
            return version_json(s, v)
        pinned = [
            f"{cs.camera_id}/{cs.scene}"
            for cs in s.scalars(select(CameraScene).where(CameraScene.model_version_id == v.id))
        ]
        if pinned:
            raise ModelVersionError(
                f"version {v.id} is pinned on {', '.join(pinned)}; activate another version there first"
            )
        was_current = (c := current_version(s, v.model_id)) is not None and c.id == v.id
        v.status = "retired"
        s.flush()
        successor = current_version(s, v.model_id) if was_current else None
        _audit(
            v,
            {
                "action": "retire",
                "actor": actor,
                "at": iso(utcnow()),
                "scope": "model",
                "from": v.id,
                "to": successor.id if successor is not None else None,
                "f1_from": _f1(v),
                "f1_to": _f1(successor),
                "override": False,
                "reason": reason,
            },
        )
        return version_json(s, v)


# --- testing ------------------------------------------------------------------------------------


def test_version(
    db: Database,
    storage_root: Path,
    version_id: str,
    dataset: str,
    *,
    conf: float = 0.3,
    iou: float = 0.5,
    class_map: dict[str, str] | None = None,
    actor: str = "cli",
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Evaluate a version (current or historical) on a test set: a dataset id of the sample library
    (its samples are written as a YOLO folder first) or a YOLO split folder. The result is stored in
    the version's ``metrics["tests"]`` and returned."""
    from analyzers.detectors import load_detector
    from analyzers.evaluation import EvalError, evaluate_dataset, load_yolo_dataset, plan_classes

    with db.session() as s:
        v = _version(s, version_id)
        model_dir = storage_root / v.path
        own_test_set = v.test_set_id
        is_dataset = s.get(Dataset, dataset) is not None
    try:
        card = load_card(model_dir)
    except ModelCardError as exc:
        raise ModelVersionError(f"version {version_id} cannot be loaded: {exc}") from exc
    if card.family == "classifier":
        return _test_classifier(
            db, storage_root, version_id, dataset, is_dataset, own_test_set, class_map, actor
        )
    if card.family not in DETECTOR_FAMILIES:
        raise ModelVersionError(
            f"{card.name} is a {card.family} model; `models test` scores detectors "
            f"({', '.join(DETECTOR_FAMILIES)}) and classifiers"
        )
    with tempfile.TemporaryDirectory(prefix="vigil-test-") as tmp:
        if is_dataset:
            SampleLibrary(db, storage_root).export("yolo", Path(tmp) / "data", dataset_id=dataset)
            root = Path(tmp) / "data"
        else:
            root = Path(dataset)
            if not root.is_dir():
                raise ModelVersionError(
                    f"{dataset}: neither a dataset id of the sample library nor a YOLO folder"
                )
        try:
            data = load_yolo_dataset(root)
            plan = plan_classes(data.names, card.classes, class_map or {})
        except EvalError as exc:
            raise ModelVersionError(str(exc)) from exc
        if not plan.pairs:
            raise ModelVersionError(
                f"no class of the test set ({', '.join(data.names)}) is a class of {card.name}; map them"
            )
        class_ids = {card.classes.index(m) for m in plan.pairs.values()}
        try:
            detector = load_detector(card, model_dir, threads=1)
        except ModelCardError as exc:
            raise ModelVersionError(str(exc)) from exc

        def detect(images: Any) -> Any:
            return detector.detect(images, conf=conf, classes=class_ids)

        try:
            per_class = evaluate_dataset(data, detect, plan, iou, detector.max_batch, progress)
        except EvalError as exc:
            raise ModelVersionError(str(exc)) from exc
    tp = sum(m.counts.tp for m in per_class.values())
    fp = sum(m.counts.fp for m in per_class.values())
    fn = sum(m.counts.fn for m in per_class.values())
    itp = sum(m.counts.image_tp for m in per_class.values())
    ifp = sum(m.counts.image_fp for m in per_class.values())
    ifn = sum(m.counts.image_fn for m in per_class.values())
    overall = {**_prf(tp, fp, fn), **{f"image_{k}": val for k, val in _prf(itp, ifp, ifn).items()}}
    result = {
        "dataset": dataset,
        "dataset_kind": "library" if is_dataset else "folder",
        "at": iso(utcnow()),
        "by": actor,
        "images": len(data.images),
        "conf": conf,
        "iou": iou,
        "classes": {name: m.as_dict() for name, m in per_class.items()},
        "skipped_classes": plan.skipped,
        "overall": overall,
    }
    _store_test(db, version_id, result, is_dataset and dataset == own_test_set)
    return result


def _store_test(db: Database, version_id: str, result: dict[str, Any], own_test_set: bool) -> None:
    """Keep a test result with the version; one on its own test set sets its precision/recall/F1."""
    with db.session() as s:
        v = _version(s, version_id)
        metrics = dict(v.metrics or {})
        metrics["tests"] = [*metrics.get("tests", []), result][-MAX_TESTS:]
        if own_test_set:
            metrics.update({k: result["overall"][k] for k in ("precision", "recall", "f1")})
            metrics["f1_source"] = f"vigil models test {result['at']}"
        v.metrics = metrics


def evaluate_classifier(
    model_dir: Path, root: Path, class_map: dict[str, str] | None = None
) -> dict[str, Any]:
    """A classifier card on a labelled folder (YOLO split, or one sub-folder per class): per class
    object- and image-level precision/recall/F1, macro means as ``overall``, the image count."""
    from analyzers.training.data import DataError
    from analyzers.training.evaluate import evaluate_card, summarise

    try:
        raw = evaluate_card(model_dir, root, class_map)
    except (DataError, ModelCardError, ValueError, OSError) as exc:
        raise ModelVersionError(str(exc)) from exc
    out = summarise(raw)
    out["images"] = _image_count(root)
    out["levels"] = raw
    return out


def _image_count(root: Path) -> int:
    from analyzers.evaluation import IMAGE_SUFFIXES

    return sum(1 for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def _test_classifier(
    db: Database,
    storage_root: Path,
    version_id: str,
    dataset: str,
    is_dataset: bool,
    own_test_set: str | None,
    class_map: dict[str, str] | None,
    actor: str,
) -> dict[str, Any]:

    with db.session() as s:
        model_dir = storage_root / _version(s, version_id).path
    with tempfile.TemporaryDirectory(prefix="vigil-test-") as tmp:
        if is_dataset:
            root = Path(tmp) / "data"
            SampleLibrary(db, storage_root).export("yolo", root, dataset_id=dataset)
        else:
            root = Path(dataset)
            if not root.is_dir():
                raise ModelVersionError(
                    f"{dataset}: neither a dataset id of the sample library nor a labelled folder"
                )
        found = evaluate_classifier(model_dir, root, class_map)
    result = {
        "dataset": dataset,
        "dataset_kind": "library" if is_dataset else "folder",
        "at": iso(utcnow()),
        "by": actor,
        "images": found["images"],
        "kind": "classifier",
        "classes": found["classes"],
        "skipped_classes": [],
        "overall": found["overall"],
    }
    _store_test(db, version_id, result, is_dataset and dataset == own_test_set)
    return result


def _prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f1, 4)}


test_version.__test__ = False  # type: ignore[attr-defined]  # a library function, not a pytest test
