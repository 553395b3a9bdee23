"""The command line: database, users, tokens and the offline model-pack import."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gateway.cli import main
from gateway.config.schema import load_config
from gateway.db import Database
from gateway.db.schema import ApiToken, ModelVersion, User
from tests.conftest import ROOT, write_config


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = write_config(tmp_path)
    assert main(["--config", str(path), "db", "upgrade"]) == 0
    return path


def db_of(path: Path) -> Database:
    return Database(load_config(path, environ={}).database.url)


def test_commands_refuse_an_unmigrated_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path)
    assert main(["--config", str(path), "alarms", "list"]) == 1
    assert "run `vigil db upgrade`" in capsys.readouterr().err
    assert main(["--config", str(path), "db", "current"]) == 0
    assert "current empty" in capsys.readouterr().out


def test_users_add_from_stdin(
    config_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert main(["--config", str(config_path), "users", "add", "zhang.san", "--role", "operator"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["--config", str(config_path), "users", "add", "li.si", "--role", "viewer"]) == 1
    assert "at least 10 characters" in capsys.readouterr().err
    with db_of(config_path).session() as s:
        assert s.scalars(select(User.username)).all() == ["zhang.san"]


def test_tokens_create_prints_secret_once_and_stores_hash(
    config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "--config",
                str(config_path),
                "tokens",
                "create",
                "sms-callback",
                "--role",
                "operator",
                "--kind",
                "callback",
                "--scope",
                "alarms:write",
            ]
        )
        == 0
    )
    secret = capsys.readouterr().out.strip()
    assert secret.startswith("vgl_") and len(secret) > 40
    with db_of(config_path).session() as s:
        row = s.scalars(select(ApiToken)).one()
        assert row.scopes == ["alarms:write"] and row.kind == "callback" and secret not in row.token_hash
    assert (
        main(
            [
                "--config",
                str(config_path),
                "tokens",
                "create",
                "x",
                "--role",
                "viewer",
                "--scope",
                "users:write",
            ]
        )
        == 1
    )


def test_model_import_is_offline_checked_and_idempotent(
    config_path: Path, models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cards = str(ROOT / "config" / "models")
    args = ["--config", str(config_path), "models", "import", str(models_dir), "--cards", cards]
    assert main(args) == 0
    assert "yolox_nano coco-2021.07-dynamic: imported" in capsys.readouterr().out
    assert main(args) == 0
    assert "yolox_nano coco-2021.07-dynamic: unchanged" in capsys.readouterr().out
    storage = load_config(config_path, environ={}).storage.root
    assert (storage / "models" / "yolox_nano" / "coco-2021.07-dynamic" / "yolox_nano_dynamic.onnx").is_file()

    # Damaged weights are refused with the reason, and nothing new is registered.
    damaged = tmp_path / "pack" / "yolox_nano"
    damaged.mkdir(parents=True)
    shutil.copy(models_dir / "yolox_nano" / "coco_classes.txt", damaged)
    (damaged / "yolox_nano_dynamic.onnx").write_bytes(b"not a model")
    assert (
        main(["--config", str(config_path), "models", "import", str(tmp_path / "pack"), "--cards", cards])
        == 1
    )
    assert "does not match the card's" in capsys.readouterr().err
    with db_of(config_path).session() as s:
        assert s.scalar(select(func.count()).select_from(ModelVersion)) == 3

    assert main(["--config", str(config_path), "models", "import", str(tmp_path / "nowhere")]) == 1
    assert "not found" in capsys.readouterr().err


def test_scenes_lists_the_whole_catalogue(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenes"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 16  # a header and every scene
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert "intrusion" in rows and rows["extinguisher"][1] == "0.017"  # one frame a minute
    assert "sleeping" in out and "(configured)" in out
