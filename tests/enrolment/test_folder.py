"""Example crops from a YOLO split are cut as the scene cuts people at run time: a vest box becomes the
torso of the labelled person who wears it; a class drawn around whole people (no person class) gives
their torsos; other scenes take the box itself. Pictures that do not read are counted, not fatal."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from analyzers.enrolment import EnrolmentError
from gateway.enrolment.folder import background_crops, folder_crops

W, H = 400, 300


def split(root: Path, names: list[str], rows: list[str], count: int = 6) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "data.yaml").write_text(yaml.safe_dump({"names": names, "nc": len(names)}))
    for i in range(count):
        cv2.imwrite(str(root / "images" / f"{i}.jpg"), np.full((H, W, 3), 90, np.uint8))
        (root / "labels" / f"{i}.txt").write_text("\n".join(rows) + "\n")
    return root


def near(shape: tuple[int, ...], expected: tuple[int, int]) -> bool:
    """Within 2 pixels (the crop's edges are rounded outwards)."""
    return all(abs(a - b) <= 2 for a, b in zip(shape, expected, strict=True))


def test_vest_boxes_become_the_wearers_torso(tmp_path: Path) -> None:
    # a person 60x180 px at (100, 60); the vest box inside it; one image does not read
    person = f"1 {130 / W} {150 / H} {60 / W} {180 / H}"
    vest = f"0 {130 / W} {120 / H} {44 / W} {60 / H}"
    root = split(tmp_path / "a", ["vest", "Person"], [person, vest])
    (root / "images" / "5.jpg").write_bytes(b"broken")
    found = folder_crops(root, "vest", "torso", min_examples=3)
    assert len(found.crops) == 5 and found.by_person == 5 and found.unreadable == ["5.jpg"]
    # torso of the person box (0.15..0.6 of its height, 0.1..0.9 of its width) grown 1.2
    assert near(found.crops[0].shape[:2], (97, 58))
    # the extinguisher scene takes the box itself (grown 1.3)
    assert near(folder_crops(root, "vest", "scan", min_examples=3).crops[0].shape[:2], (78, 57))


def test_whole_person_boxes_without_a_person_class(tmp_path: Path) -> None:
    root = split(tmp_path / "b", ["uniform"], [f"0 {130 / W} {150 / H} {60 / W} {180 / H}"])
    found = folder_crops(root, "uniform", "torso")
    assert found.by_person == 6 and near(found.crops[0].shape[:2], (97, 58))
    assert len(background_crops(root, "uniform", "scan")) == 18  # 3 windows away from it per image


def test_errors_say_what_to_do(tmp_path: Path) -> None:
    root = split(tmp_path / "c", ["uniform", "cone"], ["1 0.5 0.5 0.1 0.1"], count=2)
    with pytest.raises(EnrolmentError, match=r"no class 'vest' in its data.yaml \(classes: uniform, cone\)"):
        folder_crops(root, "vest", "torso")
    with pytest.raises(EnrolmentError, match="class 'uniform' is named in data.yaml but no label file has"):
        folder_crops(root, "uniform", "torso")
    with pytest.raises(EnrolmentError, match="only 2 usable examples of 'cone'.*at least 5"):
        folder_crops(root, "cone", "scan")


def test_a_folder_of_pictures_per_class(tmp_path: Path) -> None:
    folder = tmp_path / "crops" / "orange coverall"
    folder.mkdir(parents=True)
    for i in range(6):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((60, 30, 3), (20, 120, 245), np.uint8))
    (folder / "notes.txt").write_text("not a picture, not listed")
    (folder / "bad.jpg").write_bytes(b"\x00broken")
    found = folder_crops(tmp_path / "crops", "orange coverall", "torso", limit=6)
    assert found.layout == "class folder" and len(found.crops) + len(found.unreadable) == 6  # 6 of 7, spread
    everything = folder_crops(tmp_path / "crops", "orange coverall", "torso")
    assert len(everything.crops) == 6 and everything.unreadable == ["bad.jpg"]
    assert everything.crops[0].shape == (60, 30, 3)  # a picture is one example, whole
