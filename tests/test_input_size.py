"""Detector input sized for the camera: the card's size, a fixed (width, height), or "auto"
(aspect-matched per frame on a dynamic-size YOLOX card), from the detector up to the gateway's
shared model workers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from analyzers import Region, build_scene
from analyzers.detectors import YoloxDetector, auto_size, load_detector
from analyzers.detectors.yolox import decode
from analyzers.runtime import ModelCard, ModelCardError, read_card
from analyzers.scenes.settings import SceneConfig
from gateway.alarms.recorder import SceneContext
from gateway.app import Gateway
from gateway.config.schema import CameraConfig, load_config
from gateway.db import upgrade
from gateway.models.pack import import_pack
from tests.conftest import ROOT, write_config

CARDS = ROOT / "config" / "models"
COLOUR = (30, 200, 60)  # BGR of the drawn rectangle; far from the pad grey 114


def dynamic_card(models_dir: Path) -> ModelCard:
    return read_card(CARDS / "yolox_nano.yaml", models_dir / "yolox_nano")


def fixed_card(models_dir: Path) -> ModelCard:
    """The pack's fixed 416x416 export of the same weights."""
    return dynamic_card(models_dir).model_copy(update={"file": "yolox_nano.onnx", "dynamic_size": False})


@pytest.fixture(scope="module")
def auto_detector(models_dir: Path) -> YoloxDetector:
    card = dynamic_card(models_dir)
    detector = load_detector(card, models_dir / "yolox_nano", threads=1, input_size="auto")
    assert isinstance(detector, YoloxDetector)
    return detector


@pytest.fixture(scope="module")
def vtest_frame(vtest: Path) -> np.ndarray:
    capture = cv2.VideoCapture(str(vtest))
    try:
        ok, frame = capture.read()
    finally:
        capture.release()
    assert ok and frame is not None, f"cannot read a frame of {vtest}"
    return np.asarray(frame)


# --- auto_size -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        ((1280, 704), (640, 352)),  # 16:9 CCTV
        ((1920, 1080), (640, 352)),  # 640 * 1080 / 1920 = 360 -> 352
        ((768, 576), (640, 480)),  # 4:3 (vtest.avi)
        ((640, 640), (416, 416)),  # square: the card's size
        ((440, 416), (416, 416)),  # within 10% of the card's aspect
        ((704, 1280), (352, 640)),  # portrait: the longer side is the height
    ],
)
def test_auto_size(frame: tuple[int, int], expected: tuple[int, int]) -> None:
    assert auto_size((416, 416), frame[0], frame[1], 32) == expected


def test_auto_size_against_a_wide_card() -> None:
    # A 16:9 frame on a card already shaped 640x352 keeps the card's size; a square frame does not.
    assert auto_size((640, 352), 1280, 720, 32) == (640, 352)
    assert auto_size((640, 352), 640, 640, 32) == (640, 640)


# --- letterbox round trip ------------------------------------------------------------------------


def frame_with_box(width: int, height: int, box: tuple[int, int, int, int]) -> np.ndarray:
    image = np.full((height, width, 3), 20, dtype=np.uint8)
    x1, y1, x2, y2 = box
    image[y1:y2, x1:x2] = COLOUR
    return image


def found_box(tensor: np.ndarray) -> tuple[int, int, int, int]:
    """The drawn rectangle in a CHW BGR input tensor: its bounding box, in input pixels."""
    pixels = tensor.transpose(1, 2, 0)
    mask = np.all(np.abs(pixels - np.asarray(COLOUR, dtype=np.float32)) < 40, axis=2)
    ys, xs = np.nonzero(mask)
    assert len(xs), "the rectangle is not in the input"
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


@pytest.mark.parametrize("frame_size", [(1280, 704), (768, 576), (640, 640)])
@pytest.mark.parametrize("size", [(416, 416), (640, 352), "auto"])
def test_letterbox_round_trip(
    models_dir: Path, frame_size: tuple[int, int], size: tuple[int, int] | str
) -> None:
    """The rectangle lands where the mapping says (top-left, one scale, pad 114 right and below), and a
    box the network reports there decodes back onto the frame's rectangle."""
    width, height = frame_size
    box = (int(width * 0.3), int(height * 0.2), int(width * 0.7), int(height * 0.9))
    image = frame_with_box(width, height, box)
    detector = YoloxDetector(dynamic_card(models_dir), models_dir / "yolox_nano", 1, size)  # type: ignore[arg-type]
    input_w, input_h = detector.size_for(image)
    if size == "auto":
        assert (input_w, input_h) == auto_size((416, 416), width, height, 32)
    else:
        assert (input_w, input_h) == size
    tensor, ratio = detector.preprocess(image)
    assert tensor.shape == (3, input_h, input_w)
    new_w, new_h = round(width * ratio), round(height * ratio)
    assert new_w <= input_w and new_h <= input_h and (new_w == input_w or new_h == input_h)
    assert (tensor[:, new_h + 1 :, :] == 114).all() and (tensor[:, :, new_w + 1 :] == 114).all()
    # frame -> input: within 1 input pixel (the resize blends the edges), so 1 / ratio frame pixels back
    found = np.asarray(found_box(tensor), dtype=np.float64)
    assert np.abs(found - np.asarray(box) * ratio).max() <= 1.0, (found, box, ratio)
    assert np.abs(found / ratio - np.asarray(box)).max() <= 1.0 / ratio
    # the head output for the input-pixel box, on this size's grid, decodes to the frame box within 1 px
    grid, strides = detector.grid_for((input_w, input_h))
    assert len(grid) == sum((input_w // s) * (input_h // s) for s in (8, 16, 32))
    x1, y1, x2, y2 = (v * ratio for v in box)
    cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
    cell = int(cy // 8) * (input_w // 8) + int(cx // 8)  # a stride-8 cell
    raw = np.zeros((len(grid), 85), dtype=np.float32)
    raw[cell, :5] = [cx / 8 - grid[cell, 0], cy / 8 - grid[cell, 1], np.log(w / 8), np.log(h / 8), 0.9]
    raw[cell, 5] = 0.9
    (det,) = decode(raw, grid, strides, ratio, ["person"], conf=0.3, nms_iou=0.45)
    assert np.abs(np.asarray(det.box) - np.asarray(box)).max() <= 1.0, (det.box, box)


# --- the real model on a real frame -------------------------------------------------------------


def test_dynamic_card_detects_people_at_auto(auto_detector: YoloxDetector, vtest_frame: np.ndarray) -> None:
    height, width = vtest_frame.shape[:2]
    assert (width, height) == (768, 576)
    assert auto_detector.size_for(vtest_frame) == (640, 480)
    (people,) = auto_detector.detect([vtest_frame], conf=0.3, classes={0})
    # Frame 0 of vtest.avi shows four people on the path (counted by eye).
    assert 3 <= len(people) <= 7
    for d in people:
        x1, y1, x2, y2 = d.box
        assert d.label == "person" and -1 <= x1 < x2 <= width + 1 and -1 <= y1 < y2 <= height + 1
        assert (y2 - y1) > (x2 - x1)  # standing people are taller than wide


def test_frames_of_several_sizes_in_one_batch(auto_detector: YoloxDetector, vtest_frame: np.ndarray) -> None:
    wide = cv2.resize(vtest_frame, (1280, 704))  # stretched to 16:9: runs at 640x352
    square = cv2.resize(vtest_frame, (640, 640))  # runs at the card's 416x416
    frames = [vtest_frame, wide, square, vtest_frame]
    together = auto_detector.detect(frames, conf=0.3, classes={0})
    alone = [auto_detector.detect([f], conf=0.3, classes={0})[0] for f in frames]
    assert [len(d) for d in together] == [len(d) for d in alone]
    for got, want in zip(together, alone, strict=True):
        for a, b in zip(got, want, strict=True):
            assert np.allclose(a.box, b.box, atol=1e-3) and abs(a.score - b.score) < 1e-5
    assert together[0] and together[1] and together[2]
    for found, frame in zip(together, frames, strict=True):
        height, width = frame.shape[:2]
        for d in found:
            assert -1 <= d.box[0] < d.box[2] <= width + 1 and -1 <= d.box[1] < d.box[3] <= height + 1
    # one grid per input size, computed once
    assert {(640, 480), (640, 352), (416, 416)} <= set(auto_detector._grids)


def test_dynamic_file_at_416_matches_the_fixed_one(models_dir: Path, vtest_frame: np.ndarray) -> None:
    fixed = load_detector(fixed_card(models_dir), models_dir / "yolox_nano", threads=1)
    dynamic = load_detector(dynamic_card(models_dir), models_dir / "yolox_nano", threads=1)
    a = fixed.detect([vtest_frame], conf=0.3)[0]
    b = dynamic.detect([vtest_frame], conf=0.3)[0]
    assert len(a) == len(b) > 0
    for x, y in zip(a, b, strict=True):
        assert x.label == y.label and np.allclose(x.box, y.box, atol=1e-2)


def test_sizes_a_card_refuses(models_dir: Path) -> None:
    folder = models_dir / "yolox_nano"
    fixed = fixed_card(models_dir)
    with pytest.raises(
        ValueError, match=r"input size 640x352 asked for, but the card's network takes only 416x416"
    ):
        load_detector(fixed, folder, threads=1, input_size=(640, 352))
    # on a fixed card "auto" and the card's own size are the card's size
    assert isinstance(d := load_detector(fixed, folder, threads=1, input_size="auto"), YoloxDetector)
    assert d.size_label == "416x416" and d.size_for(np.zeros((704, 1280, 3), np.uint8)) == (416, 416)
    assert load_detector(fixed, folder, threads=1, input_size=(416, 416)).card is fixed
    dynamic = dynamic_card(models_dir)
    with pytest.raises(
        ValueError, match=r"641x352 is not a positive multiple of the model's largest stride 32"
    ):
        load_detector(dynamic, folder, threads=1, input_size=(641, 352))
    with pytest.raises(ValueError, match="not one; use 'auto'"):
        load_detector(dynamic, folder, threads=1, input_size="big")  # type: ignore[arg-type]
    # a card that claims dynamic_size for a fixed-size export
    with pytest.raises(ModelCardError, match="fixed height and width"):
        load_detector(
            dynamic.model_copy(update={"file": "yolox_nano.onnx"}), folder, threads=1, input_size=(640, 352)
        )
    # other families run at their card's size only (refused before any file is opened)
    with pytest.raises(ModelCardError, match="yolov8 models run at their card's size only"):
        load_detector(dynamic.model_copy(update={"family": "yolov8"}), folder, input_size="auto")


# --- the scene setting ---------------------------------------------------------------------------


def test_scene_config_input_size() -> None:
    assert SceneConfig(scene="intrusion").input_size == "auto"
    assert SceneConfig(scene="intrusion", input_size="card").input_size == "card"
    assert SceneConfig.model_validate({"scene": "intrusion", "input_size": [640, 352]}).input_size == (
        640,
        352,
    )
    with pytest.raises(ValidationError, match="multiples of 32"):
        SceneConfig.model_validate({"scene": "intrusion", "input_size": [641, 352]})
    with pytest.raises(ValidationError):
        SceneConfig.model_validate({"scene": "intrusion", "input_size": "big"})


# --- the gateway: one worker per (model, input size) --------------------------------------------


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("gw")
    pack = tmp / "pack"
    pack.mkdir()
    (pack / "yolox_nano").symlink_to(models_dir / "yolox_nano", target_is_directory=True)
    gw = Gateway(load_config(write_config(tmp), environ={}), analyse=False)
    upgrade(gw.db.engine)
    import_pack(gw.db, gw.config.storage.root, pack, CARDS)
    yield gw
    gw.analytics.stop()


def test_scenes_share_a_model_per_input_size(gateway: Gateway) -> None:
    scenes = [
        {"scene": "intrusion"},
        {"scene": "crowd"},
        {"scene": "off_post", "input_size": [640, 352]},
        {"scene": "lifting_zone", "input_size": [640, 352]},
        {"scene": "supervisor_present", "input_size": "card"},
    ]
    camera = CameraConfig.model_validate(
        {"id": "c", "name": "c", "url": "rtsp://127.0.0.1:9/x", "scenes": scenes}
    )
    runs = {
        cfg.scene: gateway.analytics.scene_run(
            camera,
            build_scene("c", cfg),
            SceneContext(None, {}, None, [Region(r.name, r.polygon) for r in cfg.regions]),
        )
        for cfg in camera.scenes
    }
    assert {k: r.status for k, r in runs.items()} == dict.fromkeys(runs, "running")
    auto, fixed, card = runs["intrusion"].model, runs["off_post"].model, runs["supervisor_present"].model
    assert auto is not None and fixed is not None and card is not None
    assert runs["crowd"].model is auto and runs["lifting_zone"].model is fixed
    assert len({id(auto), id(fixed), id(card)}) == 3
    assert (auto.input_size, fixed.input_size, card.input_size) == ("auto", "640x352", "416x416")
    # the scene default keeps the plain name (metrics and the models API read it)
    assert set(gateway.analytics.models) == {"yolox_nano", "yolox_nano[640x352]", "yolox_nano[416x416]"}
    assert {r.first_key for r in runs.values()} == {
        "yolox_nano",
        "yolox_nano[640x352]",
        "yolox_nano[416x416]",
    }
