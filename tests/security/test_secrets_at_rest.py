"""Issue 19, secrets at rest: camera credentials are sealed in the database, open for the gateway,
re-sealed under a new key by `vigil secrets rotate`, and a missing key says what to restore."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.cli.main import main
from gateway.db.schema import Camera
from gateway.secrets_at_rest import PREFIX, RING, SecretKeyError, key_id, read_key_file
from tests.conftest import make_gateway, write_config

PASSWORD = "p@ss/w:rd#1"  # the characters that broke URL redaction (item 14)
URL = f"rtsp://admin:{PASSWORD}@127.0.0.1:554/main"


def raw_urls(db_file: Path) -> list[str]:
    with sqlite3.connect(db_file) as conn:
        return [r[0] for r in conn.execute("SELECT stream_url FROM cameras")] + [
            r[0] for r in conn.execute("SELECT sub_stream_url FROM cameras") if r[0]
        ]


@pytest.fixture(autouse=True)
def own_ring(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIGIL_SECRET_KEY", raising=False)
    monkeypatch.delenv("VIGIL_SECRET_KEY_FILE", raising=False)
    RING.forget()


def add_camera(gw: object) -> None:
    with gw.db.session() as s:  # type: ignore[attr-defined]
        s.add(Camera(id="cam", name="c", stream_url=URL, sub_stream_url=URL.replace("main", "sub")))


def test_credentials_are_sealed_in_the_database_and_open_for_the_gateway(tmp_path: Path) -> None:
    gw = make_gateway(tmp_path)
    add_camera(gw)
    stored = raw_urls(tmp_path / "vigil.db")
    assert len(stored) == 2
    for value in stored:
        assert value.startswith(PREFIX)
        assert PASSWORD not in value and "admin" not in value
    with gw.db.session() as s:
        row = s.scalars(select(Camera)).one()
        assert row.stream_url == URL
    key_file = tmp_path / "storage" / "secret.key"
    assert key_file.stat().st_mode & 0o077 == 0  # only its owner reads the key


def test_rotate_reseals_every_credential_under_a_new_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gw = make_gateway(tmp_path)
    add_camera(gw)
    key_file = tmp_path / "storage" / "secret.key"
    old_kid = key_id(read_key_file(key_file)[0])
    assert all(v.startswith(f"{PREFIX}{old_kid}:") for v in raw_urls(tmp_path / "vigil.db"))

    config = write_config(tmp_path)
    assert main(["--config", str(config), "secrets", "rotate"]) == 0
    assert "re-sealed 2 stored credential(s)" in capsys.readouterr().out
    keys = read_key_file(key_file)
    assert len(keys) == 1 and key_id(keys[0]) != old_kid  # the old key is gone from the file
    new_kid = key_id(keys[0])
    assert all(v.startswith(f"{PREFIX}{new_kid}:") for v in raw_urls(tmp_path / "vigil.db"))

    RING.forget()  # a fresh process knows only the key file: it still opens everything
    gw2 = make_gateway(tmp_path, migrate=False)
    with gw2.db.session() as s:
        assert s.scalars(select(Camera)).one().stream_url == URL

    assert main(["--config", str(config), "audit", "--event", "secrets_rotated"]) == 0
    assert new_kid in capsys.readouterr().out


def test_legacy_plain_values_read_as_they_are_and_rotation_seals_them(tmp_path: Path) -> None:
    gw = make_gateway(tmp_path)
    add_camera(gw)
    with sqlite3.connect(tmp_path / "vigil.db") as conn:
        conn.execute("UPDATE cameras SET stream_url = ?, sub_stream_url = NULL", (URL,))
    with gw.db.session() as s:
        assert s.scalars(select(Camera)).one().stream_url == URL
    assert main(["--config", str(write_config(tmp_path)), "secrets", "rotate"]) == 0
    assert raw_urls(tmp_path / "vigil.db")[0].startswith(PREFIX)


def test_a_lost_key_gives_a_clear_error(tmp_path: Path) -> None:
    gw = make_gateway(tmp_path)
    add_camera(gw)
    RING.forget()
    (tmp_path / "storage" / "secret.key").unlink()
    gw2 = make_gateway(tmp_path, migrate=False)  # makes a new key: the stored values stay closed
    with (
        pytest.raises(SecretKeyError, match="which this gateway does not have: restore that key"),
        gw2.db.session() as s,
    ):
        s.scalars(select(Camera)).one()


def test_environment_key_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.secrets_at_rest import new_key

    key = new_key()
    monkeypatch.setenv("VIGIL_SECRET_KEY", key)
    gw = make_gateway(tmp_path)
    add_camera(gw)
    assert not (tmp_path / "storage" / "secret.key").exists()
    from gateway.secrets_at_rest import _decode_key

    kid = key_id(_decode_key(key, "test"))
    assert all(v.startswith(f"{PREFIX}{kid}:") for v in raw_urls(tmp_path / "vigil.db"))
