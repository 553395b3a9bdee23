"""Enrolment versions: add (with calibration and the promotion gate), list, show, activate, roll back,
remove, and the set a scene matches against on a camera.

Like model versions (gateway/models/versions.py): every ``vigil enrol`` of a class makes a new
version (id, examples, created, who); the class's *current* version is its ``active`` version with the
newest ``activated_at``. The set of a scene on a camera is the current version of each class enrolled
for the whole site, with the camera's own classes replacing those of the same name and adding to them.

Promotion gate: a new version is calibrated with the set it joins (leave-one-out, analyzers.enrolment
.matcher); when that set's leave-one-out macro F1 is lower than the current set's, the version stays a
candidate unless forced (``--force``, with the reason in the audit). Rolling back makes the class's
previous version current again and returns the newer one to candidate. Removing retires every version
of the class in that scope (files stay: they are content-addressed and shared).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from analyzers.enrolment import Calibration, Enrolled, EnrolmentError, Examples, calibrate, colour_descriptors
from analyzers.enrolment.embedding import Embedder
from gateway.db import Database
from gateway.db.schema import Enrolment, utcnow
from gateway.enrolment.files import EnrolmentFiles
from gateway.ids import new_ulid
from gateway.times import as_utc, iso

NEVER = dt.datetime.min.replace(tzinfo=dt.UTC)
MAX_NAME = 100
MAX_EXAMPLES = 5000  # per version: the matcher compares every crop with every example


class EnrolmentNotFound(EnrolmentError):
    pass


def enrollable_scenes() -> dict[str, str]:
    """Scene key -> the part its enrolments show (scenes that declare ``enrol_part``)."""
    from analyzers.scenes import IMPLEMENTED

    return {k: c.enrol_part for k, c in IMPLEMENTED.items() if c.enrol_part is not None}


def enrol_part(scene: str) -> str:
    parts = enrollable_scenes()
    if scene not in parts:
        known = ", ".join(sorted(parts))
        raise EnrolmentError(
            f"scene {scene!r} takes no enrolment; scenes that do: {known}",
            "no_scene",
            scene=scene,
            known=known,
        )
    return parts[scene]


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME or any(ord(c) < 32 for c in name) or "/" in name:
        raise EnrolmentError(
            f"class name {name[:40]!r}: give 1 to {MAX_NAME} characters, no '/' or control",
            "bad_name",
            most=MAX_NAME,
        )
    return name


# --- the set of a scene on a camera ------------------------------------------------------------


def _current(rows: Sequence[Enrolment]) -> dict[tuple[str | None, str], Enrolment]:
    """(camera or None, class name) -> the class's current version among ``rows``."""
    out: dict[tuple[str | None, str], Enrolment] = {}
    for r in rows:
        if r.status != "active":
            continue
        key = (r.camera_id, r.name)
        best = out.get(key)
        if best is None or (as_utc(r.activated_at) or NEVER, r.id) > (
            as_utc(best.activated_at) or NEVER,
            best.id,
        ):
            out[key] = r
    return out


def members(s: Session, scene: str, camera_id: str | None) -> list[Enrolment]:
    """The versions a scene matches against on ``camera_id`` (None: the site's set), by class name."""
    rows = list(s.scalars(select(Enrolment).where(Enrolment.scene == scene, Enrolment.status == "active")))
    current = _current(rows)
    chosen = {name: r for (cam, name), r in current.items() if cam is None}
    if camera_id is not None:
        chosen.update({name: r for (cam, name), r in current.items() if cam == camera_id})
    return [chosen[n] for n in sorted(chosen)]


def _examples(files: EnrolmentFiles, rows: Sequence[Enrolment]) -> Examples:
    return Examples.join([files.read_examples(r.features_path, r.name, r.negative) for r in rows])


def _set_key(rows: Sequence[Enrolment]) -> str:
    return ",".join(sorted(r.id for r in rows))


def load_set(db: Database, storage_root: Path, scene: str, camera_id: str | None) -> Enrolled | None:
    """The enrolment ``scene`` matches against on ``camera_id``; None when no positive class is
    enrolled. The calibration stored with the set is reused; a set never calibrated is calibrated now."""
    files = EnrolmentFiles(storage_root)
    with db.session() as s:
        rows = members(s, scene, camera_id)
        if not any(not r.negative for r in rows):
            return None
        key = _set_key(rows)
        examples = _examples(files, rows)
        stored = next((r.calibration for r in rows if (r.calibration or {}).get("set") == key), None)
        shapes = [
            (float(a), float(b))
            for r in rows
            if not r.negative
            for a, b in (r.origin or {}).get("shapes", [])
        ]
    calibration = Calibration.from_dict(stored["calibration"]) if stored else calibrate(examples)
    return Enrolled(examples, calibration, key, shapes)


# --- adding a version ---------------------------------------------------------------------------


@dataclass
class Added:
    id: str
    version: int
    status: str  # active | candidate
    calibration: Calibration
    previous_f1: float | None
    gate: str  # what the gate decided, in words
    examples: int = 0


def enrol(
    db: Database,
    storage_root: Path,
    embedder: Embedder,
    scene: str,
    name: str,
    crops: Sequence[np.ndarray],
    *,
    negative: bool = False,
    camera_id: str | None = None,
    actor: str = "cli",
    origin: dict[str, Any] | None = None,
    force: bool = False,
    reason: str | None = None,
    progress: Any = None,
    shapes: Sequence[tuple[float, float]] = (),
) -> Added:
    """Embed ``crops``, store them as a new version of class ``name``, calibrate the set it joins and
    apply the promotion gate. Nothing is stored when the crops or the set cannot be used."""
    enrol_part(scene)
    name = _check_name(name)
    if len(crops) > MAX_EXAMPLES:
        raise EnrolmentError(f"{len(crops)} examples: at most {MAX_EXAMPLES} per version (use --limit)")
    embeddings = np.zeros((0, 1280), np.float32)
    parts = []
    for start in range(0, len(crops), embedder.batch):
        chunk = list(crops[start : start + embedder.batch])
        parts.append(embedder.embed(chunk))
        if progress is not None:
            progress(len(chunk))
    embeddings = np.concatenate(parts) if parts else embeddings
    colours = colour_descriptors(list(crops))
    new = Examples(embeddings, colours, (name,) * len(crops), np.full(len(crops), negative, bool))
    files = EnrolmentFiles(storage_root)
    with db.session() as s:
        current = members(s, scene, camera_id)  # the set it joins (the camera's, or the site's)
        others = [r for r in current if r.name != name]  # a class's new version replaces its current one
        clash = [r for r in current if r.name == name and r.negative != negative and r.camera_id == camera_id]
        if clash:
            kind = "a negative" if clash[0].negative else "a positive"
            raise EnrolmentError(
                f"{name!r} is enrolled as {kind} class of {scene}; remove it first "
                f"(`vigil enrol remove {scene} {name}`) or use another name"
            )
        joined = Examples.join([_examples(files, others), new])
        if not any(not flag for flag in joined.negative):
            raise EnrolmentError(
                f"{scene}: nothing enrolled as a positive class yet; enrol the accepted look first "
                f"(without --negative), then the negatives",
                "positive_first",
            )
        calibration = calibrate(joined)  # raises (too few examples) before anything is stored
        previous = _set_f1(files, current)
        better = previous is None or calibration.loo_f1 is None or calibration.loo_f1 >= previous - 1e-9
        status = "active" if better or force else "candidate"
        if better:
            gate = "passed" if previous is not None else "nothing to compare with"
        elif force:
            gate = (
                f"forced past a lower leave-one-out F1 ({calibration.loo_f1:.3f} < {previous:.3f}): "
                f"{reason or 'no reason given'}"
            )
        else:
            gate = (
                f"held as candidate: leave-one-out F1 {calibration.loo_f1:.3f} is lower than the current "
                f"set's {previous:.3f}; `vigil enrol activate ID --force --reason ...` to use it anyway"
            )
        digest, rel = files.put_features(embeddings, colours, embedder.sha256)
        crop_paths = files.put_crops(crops)
        last = s.scalars(
            select(Enrolment.version).where(
                Enrolment.scene == scene, Enrolment.name == name, _camera_is(camera_id)
            )
        ).all()
        now = utcnow()
        row = Enrolment(
            id=new_ulid(),
            scene=scene,
            name=name,
            negative=negative,
            camera_id=camera_id,
            version=max(last, default=0) + 1,
            status=status,
            examples=len(crops),
            features_path=rel,
            sha256=digest,
            crops=crop_paths,
            embedder=embedder.sha256,
            origin={
                **(origin or {}),
                **({"shapes": [[round(a, 4), round(b, 4)] for a, b in shapes]} if shapes else {}),
            },
            created_by=actor,
            created_at=now,
            activated_at=now if status == "active" else None,
            audit=[_audit(actor, "enrol", status, gate, reason)],
        )
        row.calibration = {"set": _set_key([*others, row]), "calibration": calibration.as_dict()}
        s.add(row)
        s.commit()
        return Added(row.id, row.version, status, calibration, previous, gate, len(crops))


def _set_f1(files: EnrolmentFiles, rows: Sequence[Enrolment]) -> float | None:
    """The leave-one-out F1 of a set (as stored with it, else measured now); None without negatives."""
    if not rows or all(r.negative for r in rows) or not any(r.negative for r in rows):
        return None
    key = _set_key(rows)
    for r in rows:
        if (r.calibration or {}).get("set") == key:
            value = r.calibration["calibration"].get("loo_f1")
            return float(value) if value is not None else None
    try:
        return calibrate(_examples(files, rows)).loo_f1
    except EnrolmentError:
        return None


def _camera_is(camera_id: str | None) -> Any:
    return Enrolment.camera_id.is_(None) if camera_id is None else Enrolment.camera_id == camera_id


def _audit(actor: str, action: str, status: str, gate: str, reason: str | None) -> dict[str, Any]:
    return {
        "at": iso(utcnow()),
        "who": actor,
        "action": action,
        "status": status,
        "gate": gate,
        "reason": reason,
    }


# --- reading, activating, rolling back, removing -------------------------------------------------


def row_json(r: Enrolment, current: bool) -> dict[str, Any]:
    cal = (r.calibration or {}).get("calibration") or {}
    return {
        "id": r.id,
        "scene": r.scene,
        "name": r.name,
        "kind": "negative" if r.negative else "positive",
        "camera_id": r.camera_id,
        "version": r.version,
        "status": r.status,
        "current": current,
        "examples": r.examples,
        "created_at": iso(r.created_at),
        "created_by": r.created_by,
        "activated_at": iso(r.activated_at),
        "threshold": cal.get("threshold"),
        "calibration": {k: v for k, v in cal.items() if k != "tried"},
        "origin": r.origin,
        "sha256": r.sha256,
    }


def list_enrolments(db: Database, scene: str | None = None, history: bool = False) -> list[dict[str, Any]]:
    """Every class's versions (``history``) or only the current ones, by scene, scope and name."""
    with db.session() as s:
        stmt = select(Enrolment)
        if scene:
            stmt = stmt.where(Enrolment.scene == scene)
        rows = list(s.scalars(stmt))
        current: set[str] = set()
        for key in {r.scene for r in rows}:
            current |= {r.id for r in _current([x for x in rows if x.scene == key]).values()}
        out = [row_json(r, r.id in current) for r in rows if history or r.id in current]
    return sorted(out, key=lambda e: (e["scene"], e["camera_id"] or "", e["name"], e["version"]))


def show(db: Database, enrolment_id: str) -> dict[str, Any]:
    with db.session() as s:
        r = _row(s, enrolment_id)
        rows = list(s.scalars(select(Enrolment).where(Enrolment.scene == r.scene)))
        current = {x.id for x in _current(rows).values()}
        out = row_json(r, r.id in current)
        out["crops"] = list(r.crops)
        out["audit"] = list(r.audit)
        out["tried"] = ((r.calibration or {}).get("calibration") or {}).get("tried", [])
        return out


def _row(s: Session, enrolment_id: str) -> Enrolment:
    r = s.get(Enrolment, enrolment_id)
    if r is None:
        raise EnrolmentNotFound(f"no enrolment {enrolment_id!r}; `vigil enrol list --history` shows the ids")
    return r


def activate(
    db: Database,
    storage_root: Path,
    enrolment_id: str,
    actor: str,
    force: bool = False,
    reason: str | None = None,
) -> dict[str, Any]:
    """Make a version its class's current one, through the promotion gate."""
    files = EnrolmentFiles(storage_root)
    with db.session() as s:
        r = _row(s, enrolment_id)
        if r.status == "retired":
            raise EnrolmentError(f"enrolment {r.id} was removed; enrol the class again")
        current = members(s, r.scene, r.camera_id)
        joined = [x for x in current if x.name != r.name or x.camera_id != r.camera_id] + [r]
        new = calibrate(_examples(files, joined))
        old = _set_f1(files, current)
        if old is not None and new.loo_f1 is not None and new.loo_f1 < old - 1e-9 and not force:
            raise EnrolmentError(
                f"promotion gate: leave-one-out F1 {new.loo_f1:.3f} is lower than the current set's "
                f"{old:.3f}; add --force and --reason to use it anyway"
            )
        r.status, r.activated_at = "active", utcnow()
        r.calibration = {"set": _set_key(joined), "calibration": new.as_dict()}
        r.audit = [*r.audit, _audit(actor, "activate", "active", "forced" if force else "passed", reason)]
        s.commit()
        return row_json(r, True)


def rollback(db: Database, scene: str, name: str, camera_id: str | None, actor: str) -> dict[str, Any]:
    """The class's previous active version becomes current; the current one returns to candidate."""
    with db.session() as s:
        rows = list(
            s.scalars(
                select(Enrolment).where(
                    Enrolment.scene == scene,
                    Enrolment.name == name,
                    _camera_is(camera_id),
                    Enrolment.status == "active",
                )
            )
        )
        rows.sort(key=lambda r: (as_utc(r.activated_at) or NEVER, r.id))
        if len(rows) < 2:
            raise EnrolmentError(f"{scene} {name!r} has no earlier version to roll back to")
        newest, previous = rows[-1], rows[-2]
        newest.status = "candidate"
        newest.audit = [*newest.audit, _audit(actor, "rollback", "candidate", f"back to {previous.id}", None)]
        previous.activated_at = utcnow()
        previous.audit = [*previous.audit, _audit(actor, "rollback", "active", f"from {newest.id}", None)]
        s.commit()
        return row_json(previous, True)


def remove(db: Database, scene: str, name: str, camera_id: str | None, actor: str) -> int:
    """Retire every version of the class in that scope; how many were retired."""
    with db.session() as s:
        rows = list(
            s.scalars(
                select(Enrolment).where(
                    Enrolment.scene == scene,
                    Enrolment.name == name,
                    _camera_is(camera_id),
                    Enrolment.status != "retired",
                )
            )
        )
        if not rows:
            where = f" on camera {camera_id}" if camera_id else ""
            raise EnrolmentNotFound(
                f"nothing enrolled as {name!r} for {scene}{where}; `vigil enrol list {scene}`",
                "not_enrolled",
                name=name,
            )
        for r in rows:
            r.status = "retired"
            r.audit = [*r.audit, _audit(actor, "remove", "retired", "", None)]
        s.commit()
        return len(rows)
