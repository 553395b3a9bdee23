"""Model versions: register, the promotion gate (lower F1 refused without override, override audited),
rollback, retire, per-scene pins, usage, test on a library test set; the API's roles; the CLI."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

import gateway.api.models  # noqa: F401  (registers the routes before the app is built)
import gateway.api.samples  # noqa: F401
import gateway.models.versions as mv
from gateway.app import Gateway
from gateway.db import Database, upgrade
from gateway.db.schema import Camera, CameraScene, ModelVersion
from gateway.models.pack import ModelPackError, active_model_dir
from gateway.samples.library import SampleLibrary
from tests.api.test_api import Client, gateway  # noqa: F401  (the gateway fixture; `client` is in conftest)
from tests.conftest import ROOT, fresh_database, login
from tests.samples.test_samples import add_alarm, yolo_folder

CARD = ROOT / "config" / "models" / "yolox_nano.yaml"


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    database = fresh_database(request, tmp_path)
    upgrade(database.engine)
    yield database
    database.dispose()


def trained(tmp: Path, models_dir: Path, version: str, name: str = "hat_det") -> Path:
    """A model folder as the trainer writes it (here: the YOLOX-Nano weights under another name)."""
    folder = tmp / f"{name}-{version}"
    folder.mkdir()
    card = yaml.safe_load(CARD.read_text(encoding="utf-8"))
    for f in (card["file"], "coco_classes.txt"):
        shutil.copyfile(models_dir / "yolox_nano" / f, folder / f)
    card.update(name=name, version=version, description=f"helmet detector {version}")
    card.pop("sha256")
    (folder / "model.yaml").write_text(yaml.safe_dump(card), encoding="utf-8")
    return folder


def register(db: Database, root: Path, tmp: Path, models_dir: Path, version: str, f1: float | None) -> str:
    metrics = {} if f1 is None else {"precision": f1, "recall": f1, "f1": f1}
    return mv.register_version(db, root, trained(tmp, models_dir, version), metrics=metrics)


def current(db: Database, root: Path, name: str = "hat_det") -> str:
    return active_model_dir(db, root, name)[2]


def test_register_gate_rollback_retire(db: Database, tmp_path: Path, models_dir: Path) -> None:
    root = tmp_path / "storage"
    v1 = register(db, root, tmp_path, models_dir, "1", 0.90)
    assert mv.show_version(db, v1)["status"] == "candidate"
    with pytest.raises(ModelPackError):  # a candidate is never picked by name
        current(db, root)
    (tmp_path / "again").mkdir()
    assert register(db, root, tmp_path / "again", models_dir, "1", 0.90) == v1  # the same weights again
    mv.activate(db, v1, "admin")
    assert current(db, root) == v1

    # Lower F1: refused without override, and an override needs a reason.
    v2 = register(db, root, tmp_path, models_dir, "2", 0.80)
    with pytest.raises(mv.GateRefused, match="lower than 0.9000"):
        mv.activate(db, v2, "admin")
    with pytest.raises(mv.GateRefused, match="needs a reason"):
        mv.activate(db, v2, "admin", override=True)
    assert current(db, root) == v1
    out = mv.activate(db, v2, "admin", override=True, reason="field trial on night cameras")
    assert current(db, root) == v2
    entry = out["audit"][0]
    assert entry["override"] is True and entry["from"] == v1 and entry["to"] == v2
    assert entry["actor"] == "admin" and entry["reason"] == "field trial on night cameras"
    assert (entry["f1_from"], entry["f1_to"]) == (0.9, 0.8) and entry["at"]

    # Higher F1 passes; a version without an F1 needs an override.
    v3 = register(db, root, tmp_path, models_dir, "3", 0.95)
    assert mv.activate(db, v3, "admin")["audit"][0]["override"] is False
    v4 = register(db, root, tmp_path, models_dir, "4", None)
    with pytest.raises(mv.GateRefused, match="no F1"):
        mv.activate(db, v4, "admin")

    # Rollback to any earlier version: through the gate, recorded as a rollback.
    with pytest.raises(mv.GateRefused):
        mv.rollback(db, v1, "admin")
    mv.rollback(db, v1, "admin", override=True, reason="v3 misses helmets at dusk")
    assert current(db, root) == v1
    mv.rollback(db, "hat_det", "admin")  # by model name: the previous one (v3, higher F1)
    assert current(db, root) == v3
    log = mv.audit_log(db, "hat_det")
    assert [e["action"] for e in log] == ["activate", "activate", "activate", "rollback", "rollback"]
    assert [e["to"] for e in log] == [v1, v2, v3, v1, v3]

    # Retire the current version: the previous active one runs again; retired is listed as such.
    mv.retire(db, v3, "admin", "superseded")
    assert current(db, root) == v1
    assert mv.show_version(db, v3)["status"] == "retired"
    assert mv.audit_log(db, "hat_det")[-1]["action"] == "retire"
    assert [v["version"] for v in mv.list_versions(db, "hat_det")] == ["1", "2", "3", "4"]


def test_per_scene_pin_and_usage(db: Database, tmp_path: Path, models_dir: Path) -> None:
    root = tmp_path / "storage"
    v1 = register(db, root, tmp_path, models_dir, "1", 0.9)
    v2 = register(db, root, tmp_path, models_dir, "2", 0.7)
    mv.activate(db, v1, "admin")
    with db.session() as s:
        for cam in ("gate", "tank"):
            s.add(Camera(id=cam, name=cam, stream_url="rtsp://127.0.0.1:9/x"))
            s.flush()
            s.add(
                CameraScene(camera_id=cam, scene="helmet", settings={"scene": "helmet", "model": "hat_det"})
            )
        s.add(CameraScene(camera_id="gate", scene="intrusion", settings={"scene": "intrusion"}))
    usage = mv.show_version(db, v1)["usage"]
    assert [(u["camera_id"], u["scene"], u["how"]) for u in usage] == [
        ("gate", "helmet", "current version of the model"),
        ("tank", "helmet", "current version of the model"),
    ]
    with pytest.raises(mv.GateRefused):
        mv.activate(db, v2, "admin", scene="helmet", camera_id="tank")
    out = mv.activate(db, v2, "admin", scene="helmet", camera_id="tank", override=True, reason="trial")
    assert [e["scope"] for e in out["audit"]] == ["camera:tank/helmet"]
    with db.session() as s:
        pins = {cs.camera_id: cs.model_version_id for cs in s.query(CameraScene).filter_by(scene="helmet")}
    assert pins == {"gate": None, "tank": v2}
    assert [(u["camera_id"], u["how"]) for u in mv.show_version(db, v2)["usage"]] == [("tank", "pinned")]
    assert [u["camera_id"] for u in mv.show_version(db, v1)["usage"]] == ["gate"]
    with pytest.raises(mv.ModelVersionError, match="pinned on tank/helmet"):
        mv.retire(db, v2, "admin")
    with pytest.raises(mv.ModelVersionError, match="no camera runs scene"):
        mv.activate(db, v1, "admin", scene="smoke")
    assert current(db, root) == v1  # the model-wide choice did not move


def test_version_names_its_sets_and_is_tested(tmp_path: Path, models_dir: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'v.db'}")
    upgrade(db.engine)
    root = tmp_path / "storage"
    lib = SampleLibrary(db, root)
    lib.import_yolo(yolo_folder(tmp_path / "data", range(15), names=["person", "helmet", "car"]), "people")
    split = lib.split("people")
    assert split.test > 0
    version = mv.register_version(
        db,
        root,
        trained(tmp_path, models_dir, "1"),
        train_set_id=split.train_id,
        test_set_id=split.test_id,
        metrics={"f1": 0.5},
    )
    shown = mv.show_version(db, version)
    assert shown["train_set"]["purpose"] == "train" and shown["test_set"]["id"] == split.test_id
    assert shown["train_set"]["task"] == "people"
    with pytest.raises(mv.ModelVersionError, match="not a train set"):
        mv.register_version(db, root, trained(tmp_path, models_dir, "2"), train_set_id=split.test_id)
    result = mv.test_version(db, root, version, split.test_id, conf=0.3)
    assert result["images"] == split.test and set(result["classes"]) == {"person", "car"}
    assert result["skipped_classes"] == ["helmet"]
    stored = mv.show_version(db, version)
    assert stored["tests"][-1]["overall"] == result["overall"]
    assert stored["metrics"]["f1"] == result["overall"]["f1"]  # its own test set: the F1 of record
    with pytest.raises(mv.VersionNotFound):
        mv.test_version(db, root, "01NOSUCHVERSION00000000000", split.test_id)
    # Removing the task keeps the sets a version names (detached from the task).
    assert lib.remove_task("people")["kept_datasets"] == 2
    kept = mv.show_version(db, version)
    assert kept["test_set"]["id"] == split.test_id and kept["test_set"]["task"] is None
    db.dispose()


# --- API ----------------------------------------------------------------------------------------


async def test_api_roles_and_gate(client: Client, gateway: Gateway, tmp_path: Path, models_dir: Path) -> None:  # noqa: F811
    root = gateway.config.storage.root
    v1 = register(gateway.db, root, tmp_path, models_dir, "1", 0.9)
    v2 = register(gateway.db, root, tmp_path, models_dir, "2", 0.8)
    viewer, operator, admin = [await login(client, role) for role in ("viewer", "operator", "admin")]
    r = await client.get("/api/model-versions", headers=viewer)
    assert r.status == 200 and len((await r.json())["items"]) == 2
    r = await client.get(f"/api/model-versions/{v1}", headers=viewer)
    assert r.status == 200 and (await r.json())["status"] == "candidate"
    for who in (viewer, operator):
        r = await client.post(f"/api/model-versions/{v1}/activate", json={}, headers=who)
        assert r.status == 403
    assert (await client.post(f"/api/model-versions/{v1}/activate", json={}, headers=admin)).status == 200
    r = await client.post(f"/api/model-versions/{v2}/activate", json={}, headers=admin)
    assert r.status == 409 and "promotion gate" in (await r.json())["error"]["message"]
    r = await client.post(
        f"/api/model-versions/{v2}/activate", json={"override": True, "reason": "trial"}, headers=admin
    )
    assert r.status == 200 and (await r.json())["audit"][0]["override"] is True
    r = await client.post(f"/api/model-versions/{v1}/rollback", json={}, headers=admin)
    assert r.status == 200
    audit = await (await client.get("/api/models/hat_det/audit", headers=viewer)).json()
    assert [e["action"] for e in audit["items"]] == ["activate", "activate", "rollback"]
    assert (await client.post(f"/api/model-versions/{v2}/retire", json={}, headers=operator)).status == 403
    assert (await client.post(f"/api/model-versions/{v2}/retire", json={}, headers=admin)).status == 200
    assert (await client.get("/api/model-versions/NOPE", headers=viewer)).status == 404
    doc = await (await client.get("/api/openapi.json", headers=viewer)).json()
    for path in (
        "/api/model-versions/{version_id}/activate",
        "/api/samples/{sample_id}/labels",
        "/api/tasks",
    ):
        assert path in doc["paths"]
    assert "VersionActivateBody" in doc["components"]["schemas"]


async def test_api_samples_roles(client: Client, gateway: Gateway, tmp_path: Path) -> None:  # noqa: F811
    root = gateway.config.storage.root
    lib = SampleLibrary(gateway.db, root)
    lib.import_yolo(yolo_folder(tmp_path / "in", range(3)), "hats", scene="helmet")
    viewer, operator = await login(client, "viewer"), await login(client, "operator")
    r = await client.get("/api/samples?task=hats", headers=viewer)
    assert r.status == 200
    items = (await r.json())["items"]
    assert len(items) == 3
    sample = items[0]
    image = await client.get(sample["image"], headers=viewer)
    assert image.status == 200 and image.headers["Content-Type"] == "image/png"
    box = {"label": "helmet", "box": [0.1, 0.1, 0.2, 0.3]}
    url = f"/api/samples/{sample['id']}/labels"
    assert (await client.post(url, json=box, headers=viewer)).status == 403
    assert (await client.delete(f"{url}/0", headers=viewer)).status == 403
    assert (await client.delete(f"/api/samples/{sample['id']}", headers=viewer)).status == 403
    r = await client.post(url, json=box, headers=operator)
    assert r.status == 201 and (await r.json())["labels"][-1] == box
    r = await client.put(f"{url}/0", json={"label": "head", "box": [0.2, 0.2, 0.1, 0.3]}, headers=operator)
    assert r.status == 422 and "no area" in (await r.json())["error"]["message"]
    r = await client.put(url, json={"labels": [box]}, headers=operator)
    assert r.status == 200 and (await r.json())["labels"] == [box]
    assert (await client.delete(f"{url}/5", headers=operator)).status == 404
    assert (await client.delete(f"{url}/0", headers=operator)).status == 200

    # Tasks: viewers read, operators write; split; export as a zip; import a zip.
    assert (await client.post("/api/tasks", json={"name": "x"}, headers=viewer)).status == 403
    r = await client.post(
        "/api/tasks", json={"name": "fire", "scene": "flame", "labels": ["fire"]}, headers=operator
    )
    assert r.status == 201
    assert (await client.post("/api/tasks", json={"name": "fire"}, headers=operator)).status == 409
    tasks = await (await client.get("/api/tasks", headers=viewer)).json()
    assert [t["name"] for t in tasks["items"]] == ["fire", "hats"]
    r = await client.post("/api/tasks/hats/split", headers=operator)
    assert r.status == 201 and (await r.json())["train"] + (await r.json())["test"] == 3
    r = await client.get("/api/tasks/hats/export?format=coco", headers=viewer)
    assert r.status == 200 and r.headers["Content-Type"] == "application/zip"
    archive = tmp_path / "hats.zip"
    archive.write_bytes(await r.read())
    r = await client.post(
        "/api/tasks/hats_copy/import?format=coco",
        data=archive.read_bytes(),
        headers={**operator, "Content-Type": "application/zip"},
    )
    assert r.status == 200, await r.text()
    report = await r.json()
    assert report["added"] == 0 and report["linked"] == 3 and report["skipped"] == []
    r = await client.post(
        "/api/tasks/hats/import", data=b"not a zip", headers={**operator, "Content-Type": "application/zip"}
    )
    assert r.status == 422

    # An alarm to a sample in one action; a viewer may not.
    alarm_id = add_alarm(gateway.db, root, "true_positive")
    body = {"alarm_id": alarm_id, "kind": "positive"}
    assert (await client.post("/api/samples/from-alarm", json=body, headers=viewer)).status == 403
    r = await client.post("/api/samples/from-alarm", json=body, headers=operator)
    assert r.status == 201 and (await r.json())["origin"] == "confirmed_alarm"
    assert (await r.json())["tasks"] == ["hats"]  # the task of the alarm's scene
    assert (await client.post("/api/samples/from-alarm", json=body, headers=operator)).status == 200
    r = await client.post(
        "/api/samples/from-alarm", json={"alarm_id": alarm_id, "kind": "false_positive"}, headers=operator
    )
    assert r.status == 409


# --- CLI ----------------------------------------------------------------------------------------


def test_cli(tmp_path: Path, models_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from gateway.cli.models import register_versions
    from gateway.cli.samples import register as register_samples
    from tests.conftest import write_config

    config = write_config(tmp_path)
    parser = argparse.ArgumentParser(prog="vigil")
    parser.add_argument("--config")
    sub = parser.add_subparsers(dest="command", required=True)
    register_samples(sub)
    models = sub.add_parser("models").add_subparsers(dest="models_command", required=True)
    register_versions(models)

    def run(*argv: str) -> int:
        args = parser.parse_args(["--config", str(config), *argv])
        return int(args.func(args))

    db = Database(f"sqlite:///{tmp_path / 'vigil.db'}")
    upgrade(db.engine)
    folder = yolo_folder(tmp_path / "in", range(8))
    (folder / "labels" / "img003.txt").write_text("0 0.5 0.5", encoding="utf-8")
    assert run("tasks", "add", "hats", "--scene", "helmet", "--labels", "head,helmet,person") == 0
    assert run("samples", "import", str(folder), "--task", "hats", "--no-progress") == 0
    out = capsys.readouterr()
    assert "7 added" in out.out and "skipped labels/img003.txt" in out.err
    assert run("samples", "split", "hats") == 0
    assert "train set" in capsys.readouterr().out
    assert (
        run("samples", "export", str(tmp_path / "out"), "--task", "hats", "--format", "coco", "--no-progress")
        == 0
    )
    assert (tmp_path / "out" / "annotations.json").is_file()
    assert run("tasks", "list") == 0 and "hats" in capsys.readouterr().out

    root = tmp_path / "storage"
    v1 = register(db, root, tmp_path, models_dir, "1", 0.9)
    v2 = register(db, root, tmp_path, models_dir, "2", 0.8)
    assert run("models", "activate", v1) == 0
    assert run("models", "activate", v2) == 3
    assert "promotion gate" in capsys.readouterr().err
    assert run("models", "activate", v2, "--override", "--reason", "trial") == 0
    assert run("models", "rollback", v1) == 0
    assert run("models", "show", v1) == 0
    shown = capsys.readouterr().out
    assert "(current)" in shown and "rollback" in shown and "usage: none" in shown
    assert run("models", "retire", v2) == 0
    assert run("models", "show", "NOPE") == 2
    with db.session() as s:
        assert s.get(ModelVersion, v2).status == "retired"  # type: ignore[union-attr]
    db.dispose()


def test_model_pack_archive_import(tmp_path: Path, models_dir: Path) -> None:
    import tarfile

    from gateway.models.pack import import_pack

    db = Database(f"sqlite:///{tmp_path / 'v.db'}")
    upgrade(db.engine)
    pack = tmp_path / "pack"
    pack.mkdir()
    trained(pack, models_dir, "7")
    archive = tmp_path / "pack.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(pack, arcname="pack")
    results = import_pack(db, tmp_path / "storage", archive, None)
    assert [(r.name, r.version, r.status) for r in results] == [("hat_det", "7", "imported")]
    assert import_pack(db, tmp_path / "storage", archive, None)[0].status == "unchanged"
    first = results[0].version_id
    assert current(db, tmp_path / "storage") == first  # the model's first version runs at once
    # A later version of the model waits as a candidate: it runs once activated through the gate.
    newer = tmp_path / "newer"
    newer.mkdir()
    trained(newer, models_dir, "8")
    later = import_pack(db, tmp_path / "storage", newer, None)[0]
    assert later.status == "imported" and "candidate" in later.detail
    assert current(db, tmp_path / "storage") == first
    mv.activate(db, later.version_id, "admin")
    assert current(db, tmp_path / "storage") == later.version_id
    (tmp_path / "broken.tgz").write_bytes(b"not a tar")
    with pytest.raises(ModelPackError, match="cannot unpack"):
        import_pack(db, tmp_path / "storage", tmp_path / "broken.tgz", None)
    db.dispose()
