"""YOLOX pre- and post-processing against known values, and the real model on a real frame."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from analyzers.detectors.base import letterbox
from analyzers.detectors.yolox import YoloxDetector, decode, make_grid
from analyzers.runtime import choose_providers, read_card
from tests.conftest import ROOT

LABELS = ["person", "bicycle"]


def test_letterbox_top_left_with_pad() -> None:
    image = np.full((100, 200, 3), 7, dtype=np.uint8)
    canvas, placement = letterbox(image, (416, 416), "top_left", 114)
    assert placement.scale_x == placement.scale_y == 416 / 200
    assert canvas.shape == (416, 416, 3)
    assert (canvas[:208, :, :] == 7).all()  # 100 * 2.08 = 208 rows of image at the top
    assert (canvas[208:, :, :] == 114).all()


def test_grid_matches_yolox_head_order() -> None:
    grid, strides = make_grid((416, 416), [8, 16, 32])
    assert grid.shape == (3549, 2)  # 52*52 + 26*26 + 13*13
    assert tuple(grid[1]) == (1, 0) and tuple(grid[52]) == (0, 1)
    assert strides[0, 0] == 8 and strides[2704, 0] == 16 and strides[-1, 0] == 32


def test_decode_known_cell_and_nms() -> None:
    grid, strides = make_grid((416, 416), [8, 16, 32])
    raw = np.zeros((3549, 5 + len(LABELS)), dtype=np.float32)
    raw[:, 2:4] = -10  # tiny boxes everywhere, all below threshold anyway
    # Cell (10, 20) at stride 8: centre ((10+0.5)*8, (20+0.25)*8) = (84, 162), size exp(2)*8 x exp(3)*8.
    cell = 20 * 52 + 10
    raw[cell] = [0.5, 0.25, 2.0, 3.0, 0.9, 0.8, 0.1]
    # A near-duplicate in the next cell with a lower score is suppressed by NMS.
    raw[cell + 1] = [-0.5, 0.25, 2.0, 3.0, 0.9, 0.7, 0.1]
    dets = decode(raw, grid, strides, ratio=2.0, labels=LABELS, conf=0.3, nms_iou=0.45)
    assert len(dets) == 1
    d = dets[0]
    assert d.label == "person" and abs(d.score - 0.72) < 1e-6
    w, h = np.exp(2.0) * 8, np.exp(3.0) * 8
    expected = np.array([84 - w / 2, 162 - h / 2, 84 + w / 2, 162 + h / 2]) / 2.0
    assert np.allclose(d.box, expected, atol=1e-3)
    assert decode(raw, grid, strides, 2.0, LABELS, conf=0.3, nms_iou=0.45, classes={1}) == []


def test_providers_prefer_gpu_and_fall_back_to_cpu() -> None:
    assert choose_providers(
        ["CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"]
    ) == ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert choose_providers(["AzureExecutionProvider"]) == ["CPUExecutionProvider"]


def load_detector(models_dir: Path) -> YoloxDetector:
    card = read_card(ROOT / "config" / "models" / "yolox_nano.yaml", models_dir / "yolox_nano")
    return YoloxDetector(card, models_dir / "yolox_nano", threads=1)


def test_real_model_finds_pedestrians(models_dir: Path, vtest: Path) -> None:
    detector = load_detector(models_dir)
    with av.open(str(vtest)) as container:
        frames = []
        for i, f in enumerate(container.decode(video=0)):
            if i in (0, 50):
                frames.append(f.to_ndarray(format="bgr24"))
            if i == 50:
                break
    first, later = detector.detect(frames, conf=0.3, classes={0})
    # Frame 0 of vtest.avi shows four people on the path (counted by eye); frame 50 five.
    assert 3 <= len(first) <= 6 and 4 <= len(later) <= 8
    for d in first + later:
        x1, y1, x2, y2 = d.box
        assert d.label == "person" and 0 <= x1 < x2 <= 770 and 0 <= y1 < y2 <= 580
        assert (y2 - y1) > (x2 - x1)  # standing people are taller than wide
