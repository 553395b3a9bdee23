"""Offline model-pack import (plants are often air-gapped) and loading of imported models.

A pack is a folder of model folders (``yolox_nano/yolox_nano.onnx`` ...). Each is paired with a
model card: its own ``model.yaml``, or the project's card of the same name in ``config/models/``.
Files are checked against the card's SHA-256, copied under ``<storage>/models/<name>/<version>/``
and registered as a model version with a unique id. Importing the same weights again is a no-op.
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from analyzers import ModelCard, ModelCardError, load_card
from analyzers.runtime import read_card
from gateway.db import Database
from gateway.db.schema import Model, ModelVersion, utcnow
from gateway.ids import new_ulid


class ModelPackError(Exception):
    """The pack cannot be imported; the message says what to do."""


@dataclass
class ImportResult:
    name: str
    version: str
    version_id: str
    status: str  # imported | unchanged | skipped
    detail: str = ""


def sha256_file(path: Path, progress: Callable[[int], None] | None = None) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            if progress:
                progress(len(chunk))
    return digest.hexdigest()


def _card_for(folder: Path, cards_dir: Path | None) -> ModelCard | None:
    own = folder / "model.yaml"
    source = own if own.is_file() else (cards_dir / f"{folder.name}.yaml" if cards_dir else None)
    if source is None or not source.is_file():
        return None
    try:
        return read_card(source, folder)
    except ModelCardError as exc:
        raise ModelPackError(str(exc)) from exc


def import_pack(
    db: Database,
    storage_root: Path,
    pack_dir: Path,
    cards_dir: Path | None,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[ImportResult]:
    """Import every model folder of a pack; ``progress(name, done_bytes, total_bytes)`` is called often.

    ``pack_dir`` may also be a ``.tar.gz`` / ``.tgz`` / ``.tar`` archive of the pack (or of one model
    folder): it is unpacked safely into a temporary folder first."""
    if pack_dir.is_file() and pack_dir.name.endswith(ARCHIVE_SUFFIXES):
        with tempfile.TemporaryDirectory(prefix="vigil-pack-") as tmp:
            return import_pack(db, storage_root, _unpack(pack_dir, Path(tmp)), cards_dir, progress)
    if not pack_dir.is_dir():
        raise ModelPackError(
            f"model pack folder {pack_dir} not found; pass the folder that holds yolox_nano/ "
            "(`make demo` reads VIGIL_MODELS_DIR)"
        )
    results = []
    for folder in sorted(p for p in pack_dir.iterdir() if p.is_dir()):
        card = _card_for(folder, cards_dir)
        if card is None:
            results.append(
                ImportResult(
                    folder.name,
                    "",
                    "",
                    "skipped",
                    f"no model card (add {folder.name}/model.yaml or config/models/{folder.name}.yaml)",
                )
            )
            continue
        onnx = folder / card.file
        total = onnx.stat().st_size
        done = 0

        def tick(n: int, name: str = card.name, total: int = total) -> None:
            nonlocal done
            done += n
            if progress:
                progress(name, done, total)

        digest = sha256_file(onnx, tick)
        if card.sha256 and card.sha256 != digest:
            raise ModelPackError(
                f"{onnx}: SHA-256 {digest} does not match the card's {card.sha256}; the file is damaged "
                "or not the weights the card describes"
            )
        card.sha256 = digest
        results.append(_register(db, storage_root, folder, card))
    return results


ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")


def project_models(cards_dir: Path) -> list[str]:
    """The models the project trained itself and ships beside its cards (``config/models/helmet/``
    with ``config/models/helmet.yaml``): ``import_pack(db, root, cards_dir, cards_dir)`` imports
    them, offline, as ``vigil demo`` does after the shared pack."""
    if not cards_dir.is_dir():
        return []
    found = []
    for folder in sorted(p for p in cards_dir.iterdir() if p.is_dir()):
        try:
            card = _card_for(folder, cards_dir)
        except ModelPackError:
            continue  # a card whose weights are not there: nothing to import
        if card is not None:
            found.append(card.name)
    return found


def _unpack(archive: Path, target: Path) -> Path:
    """Extract a pack archive (no links out, no absolute paths) and return the pack folder in it."""
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise ModelPackError(f"{archive}: cannot unpack the model pack archive: {exc}") from exc
    folder = target
    while True:  # descend through wrapping folders (pack/yolox_nano/...), not into a model folder
        entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
        if len(entries) == 1 and entries[0].is_dir() and not any(p.is_file() for p in entries[0].iterdir()):
            folder = entries[0]
            continue
        return folder


def model_row(s: Session, card: ModelCard) -> Model:
    """The card's model, created on its first version."""
    model = s.scalar(select(Model).where(Model.name == card.name))
    if model is None:
        model = Model(
            name=card.name,
            family=card.family,
            description=card.description,
            licence=card.licence,
            source=card.source,
        )
        s.add(model)
        s.flush()
    return model


def version_row(s: Session, model: Model, version: str) -> ModelVersion | None:
    return s.scalar(
        select(ModelVersion).where(ModelVersion.model_id == model.id, ModelVersion.version == version)
    )


def install(source: Path, target: Path, card: ModelCard) -> None:
    """Copy the weights and the card into the store, staged, so a crash never leaves half a version."""
    staging = target.with_name(f".{target.name}.importing")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    shutil.copy2(source / card.file, staging / card.file)
    (staging / "model.yaml").write_text(
        yaml.safe_dump(card.model_dump(mode="json"), sort_keys=False, allow_unicode=True), encoding="utf-8"
    )
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)


def _register(db: Database, storage_root: Path, folder: Path, card: ModelCard) -> ImportResult:
    rel = Path("models") / card.name / card.version
    with db.session() as s:
        model = model_row(s, card)
        existing = version_row(s, model, card.version)
        if existing is not None:
            if existing.sha256 != card.sha256:
                raise ModelPackError(
                    f"{card.name} version {card.version} is imported already with other weights; "
                    "give the new weights a new version in the card"
                )
            return ImportResult(card.name, card.version, existing.id, "unchanged")
        install(folder, storage_root / rel, card)
        # The first version of a model runs at once; a later one waits as a candidate, so that it passes
        # the promotion gate of `vigil models activate` (gateway/models/versions.py) before it runs.
        has_active = s.scalar(
            select(ModelVersion.id)
            .where(ModelVersion.model_id == model.id, ModelVersion.status == "active")
            .limit(1)
        )
        version = ModelVersion(
            id=new_ulid(),
            model_id=model.id,
            version=card.version,
            sha256=card.sha256 or "",
            path=rel.as_posix(),
            card=card.model_dump(mode="json"),
            status="candidate" if has_active else "active",
            activated_at=None if has_active else utcnow(),
        )
        s.add(version)
        detail = f"candidate: `vigil models activate {version.id}` makes it run" if has_active else ""
        return ImportResult(card.name, card.version, version.id, "imported", detail)


def active_model_dir(db: Database, storage_root: Path, ref: str) -> tuple[Path, ModelCard, str]:
    """The model a scene reads: (directory, card, version id).

    ``ref`` is a model name (its newest active version), a version id, or ``name@version_id``. A pinned
    version may be retired: that is how history replay and rollback run an older version.
    """
    name, _, version_id = ref.rpartition("@") if "@" in ref else (ref, "", "")
    if not version_id and len(ref) == 26 and ref.isalnum() and ref.isupper():
        name, version_id = "", ref  # a bare version id (ULID)
    with db.session() as s:
        query = select(ModelVersion).join(Model)
        if version_id:
            query = query.where(ModelVersion.id == version_id)
            if name:
                query = query.where(Model.name == name)
        else:
            query = query.where(Model.name == name, ModelVersion.status == "active").order_by(
                ModelVersion.activated_at.desc(), ModelVersion.id.desc()
            )
        row = s.execute(query.limit(1)).scalar_one_or_none()
        if row is None:
            if version_id:
                raise ModelPackError(f"no model version {ref!r}; `vigil models list` shows the versions")
            raise ModelPackError(
                f"model {name!r} is not imported; run `vigil models import DIR` with the model pack folder"
            )
        path, version_id = storage_root / row.path, row.id
    try:
        return path, load_card(path), version_id
    except ModelCardError as exc:
        raise ModelPackError(f"imported model {ref!r} is damaged ({exc}); import the pack again") from exc
