"""`vigil enrol` and `vigil eval --scene extinguisher --end-to-end` on a plant's labelled photos:
clear errors (a folder without the class, pictures that do not read, too few examples) that store
nothing; enrol, list, remove; the scene scored end to end with the database's enrolment, in the
JSON shape of `vigil eval`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.cli import main
from tests.conftest import ROOT, write_config
from tests.enrolment.test_extinguisher_enrolment import photos


@pytest.fixture
def config(tmp_path: Path, models_dir: Path) -> str:
    cfg = write_config(tmp_path, models={"pack_dir": str(models_dir)})
    (tmp_path / "models").symlink_to(ROOT / "config" / "models")  # the project's cards beside the config
    assert main(["--config", str(cfg), "db", "upgrade"]) == 0
    return str(cfg)


def test_enrol_errors_then_enrol_list_eval_remove(
    config: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = photos(tmp_path / "train", 6, seed=3)
    (folder / "images" / "broken.jpg").write_bytes(b"not a picture")
    (folder / "labels" / "broken.txt").write_text("0 0.5 0.5 0.1 0.2\n")
    base = ["--config", config, "enrol", "extinguisher", "red 4kg", "--data", str(folder), "--no-progress"]

    assert main([*base, "--class", "Fire Extinguisher"]) == 2
    err = capsys.readouterr().err
    assert "no class 'Fire Extinguisher' in its data.yaml (classes: fire extinguisher)" in err
    assert main([*base, "--class", "fire extinguisher", "--limit", "3"]) == 2
    assert "--limit 3: an enrolment needs at least 5 examples per class" in capsys.readouterr().err
    assert main([*base[:5], "--data", str(tmp_path / "nowhere"), "--class", "x"]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert main(["--config", config, "enrol", "list"]) == 0
    assert "nothing enrolled" in capsys.readouterr().out

    assert main([*base, "--class", "fire extinguisher"]) == 0
    out, err = capsys.readouterr()
    assert "1 image(s) did not read and were skipped (first: broken.jpg)" in err
    assert (
        "enrolled extinguisher 'red 4kg' (positive, 9 examples from 6 images) for the site: version 1" in out
    )
    assert "background windows of the same images as the negative 'background'" in out
    assert main(["--config", config, "enrol", "list", "extinguisher", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(e["name"], e["kind"]) for e in listed] == [("background", "negative"), ("red 4kg", "positive")]

    valid = photos(tmp_path / "valid", 3, seed=11)
    assert (
        main(
            [
                "--config",
                config,
                "eval",
                "--scene",
                "extinguisher",
                "--data",
                str(valid),
                "--end-to-end",
                "--json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    row = result["classes"]["extinguisher"]
    assert set(row) >= {"precision", "recall", "f1", "tp", "fp", "fn", "image_f1"}
    assert row["support"] == 4 and row["f1"] >= 0.8  # 1 or 2 extinguishers on each of 3 photos
    assert main(["--config", config, "enrol", "remove", "extinguisher", "red 4kg"]) == 0
    assert "1 version(s) retired" in capsys.readouterr().out
    assert (
        main(["--config", config, "eval", "--scene", "extinguisher", "--data", str(valid), "--end-to-end"])
        == 2
    )
    assert "nothing enrolled for extinguisher" in capsys.readouterr().err
