"""Detector, classifier and pose families: decoders against hand-built outputs, load-time shape checks
against the card, the real pose models on a real frame, and frames that must not crash anything."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import av
import numpy as np
import pytest

from analyzers.detectors import (
    Detector,
    ImageClassifier,
    RtDetrDetector,
    YoloV8Detector,
    YoloxDetector,
    load_detector,
)
from analyzers.detectors.base import Placement, TensorInfo, check_input, letterbox
from analyzers.detectors.classifier import activate, check_output, crop_box
from analyzers.detectors.rtdetr import decode_postprocessed, decode_raw, detect_form
from analyzers.detectors.yolov8 import decode, head_layout
from analyzers.pose import BlazePoseLandmarks, MoveNetMultiPose, load_pose
from analyzers.records import Pose
from analyzers.runtime import ModelCard, ModelCardError, read_card
from tests.conftest import ROOT

LABELS = ["person", "helmet"]
CARDS = ROOT / "config" / "models"
# People on frame 0 of vtest.avi, measured with YOLOX-Nano (x1, y1, x2, y2).
PEOPLE = [(643.0, 239.0, 684.0, 322.0), (252.0, 220.0, 283.0, 308.0), (503.0, 158.0, 531.0, 232.0)]
HEAD = ("nose", "left_eye", "right_eye", "left_ear", "right_ear")


def card(family: str, size: tuple[int, int] = (640, 640), **input_: Any) -> ModelCard:
    spec = {"name": "images", "size": size, "colour": "RGB", "scale": 1 / 255, "letterbox": "centre"}
    spec.update(input_)
    return ModelCard.model_validate(
        {
            "name": f"test_{family}",
            "version": "1",
            "family": family,
            "file": f"{family}.onnx",
            "licence": "MIT",
            "source": "test",
            "input": spec,
            "classes": LABELS,
        }
    )


class FakeSession:
    """Stands in for an onnxruntime session: declared inputs/outputs, canned results."""

    def __init__(
        self,
        inputs: list[TensorInfo],
        outputs: list[TensorInfo],
        result: Callable[[dict[str, np.ndarray]], list[np.ndarray]],
    ) -> None:
        self.inputs, self.outputs, self.result = inputs, outputs, result
        self.feeds: list[dict[str, np.ndarray]] = []

    def get_inputs(self) -> list[SimpleNamespace]:
        return [SimpleNamespace(name=t.name, shape=list(t.shape), type=t.type) for t in self.inputs]

    def get_outputs(self) -> list[SimpleNamespace]:
        return [SimpleNamespace(name=t.name, shape=list(t.shape), type=t.type) for t in self.outputs]

    def get_providers(self) -> list[str]:
        return ["CPUExecutionProvider"]

    def run(self, names: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        self.feeds.append(feeds)
        batch = len(next(iter(feeds.values())))
        # Canned outputs are for one image; repeat them for a batch.
        return [np.repeat(o, batch, 0) if o.shape[0] == 1 else o for o in self.result(feeds)]


IMAGES_IN = TensorInfo("images", ("batch", 3, 640, 640))


# ---- YOLOv5 / YOLOv8 heads -------------------------------------------------------------------------


def test_head_layout_from_output_shape() -> None:
    assert head_layout("m.onnx", TensorInfo("output0", (1, 25200, 7)), 2) == "v5"
    assert head_layout("m.onnx", TensorInfo("output0", (1, 6, 8400)), 2) == "v8"
    assert head_layout("m.onnx", TensorInfo("output0", ("b", 6, "anchors")), 2) == "v8"
    assert head_layout("m.onnx", TensorInfo("output0", ("b", "n", "m")), 2) is None
    with pytest.raises(ModelCardError, match=r"m\.onnx: output 'output0' is \[1,84,8400\].*\[B,6,N\]"):
        head_layout("m.onnx", TensorInfo("output0", (1, 84, 8400)), 2)
    with pytest.raises(ModelCardError, match="no classes"):
        head_layout("m.onnx", TensorInfo("output0", (1, 84, 8400)), 0)


def test_yolov5_decode_objectness_times_class_and_nms() -> None:
    raw = np.zeros((100, 7), dtype=np.float32)
    raw[:, :4] = [50, 50, 10, 10]
    raw[10] = [120, 80, 40, 60, 0.9, 0.8, 0.1]  # person 0.72 at (100,50)-(140,110) in input pixels
    raw[11] = [122, 80, 40, 60, 0.9, 0.7, 0.1]  # same person, lower score: NMS drops it
    raw[12] = [300, 200, 20, 20, 0.5, 0.2, 0.9]  # helmet 0.45
    raw[13] = [400, 200, 20, 20, 0.5, 0.1, 0.5]  # helmet 0.25: below conf
    placement = Placement(2.0, 2.0, 0.0, 10.0, 1000, 1000)  # frame doubled, 10 px padding on top
    dets = decode(raw, "v5", placement, LABELS, conf=0.3, nms_iou=0.45)
    assert [(d.label, round(d.score, 4)) for d in dets] == [("person", 0.72), ("helmet", 0.45)]
    assert np.allclose(dets[0].box, (50, 20, 70, 50))
    assert np.allclose(dets[1].box, (145, 90, 155, 100))
    only_helmets = decode(raw, "v5", placement, LABELS, conf=0.3, nms_iou=0.45, classes={1})
    assert [d.label for d in only_helmets] == ["helmet"]


def test_yolov8_detect_letterbox_centre_rgb_end_to_end() -> None:
    out = np.zeros((1, 6, 8400), dtype=np.float32)
    out[0, :, 7] = [100, 260, 40, 80, 0.1, 0.9]  # helmet at (80,220)-(120,300) in input pixels
    out[0, :, 8] = [500, 300, 20, 20, 0.85, 0.0]  # person, overlapping nothing
    session = FakeSession([IMAGES_IN], [TensorInfo("output0", (1, 6, 8400))], lambda feeds: [out])
    detector = YoloV8Detector(card("yolov8"), Path("."), session=session)
    assert detector.layout == "v8" and detector.max_batch == 16 and isinstance(detector, Detector)
    frame = np.full((320, 640, 3), (10, 20, 30), dtype=np.uint8)  # BGR; centred with 160 px above
    (dets,) = detector.detect([frame], conf=0.5)
    assert [(d.label, round(d.score, 2)) for d in dets] == [("helmet", 0.9), ("person", 0.85)]
    assert np.allclose(dets[0].box, (80, 60, 120, 140))
    assert np.allclose(dets[1].box, (490, 130, 510, 150))
    tensor = session.feeds[0]["images"]
    assert tensor.shape == (1, 3, 640, 640) and tensor.dtype == np.float32
    assert np.allclose(tensor[0, :, 320, 320], np.array([30, 20, 10]) / 255)  # RGB order, scaled
    assert np.allclose(tensor[0, :, 0, 0], 114 / 255)  # padding above the frame


# ---- RT-DETR / D-FINE ------------------------------------------------------------------------------


def postprocessed_io(queries: int = 300) -> tuple[list[TensorInfo], list[TensorInfo]]:
    inputs = [
        TensorInfo("images", ("N", 3, 640, 640)),
        TensorInfo("orig_target_sizes", ("N", 2), "tensor(int64)"),
    ]
    outputs = [
        TensorInfo("labels", ("N", queries), "tensor(int64)"),
        TensorInfo("boxes", ("N", queries, 4)),
        TensorInfo("scores", ("N", queries)),
    ]
    return inputs, outputs


def test_rtdetr_postprocessed_form_feeds_sizes_and_keeps_overlaps() -> None:
    labels = np.zeros((1, 300), dtype=np.int64)
    boxes = np.zeros((1, 300, 4), dtype=np.float32)
    scores = np.zeros((1, 300), dtype=np.float32)
    labels[0, :3] = [0, 0, 1]
    boxes[0, :3] = [[100, 100, 200, 300], [110, 100, 210, 300], [0, 0, 64, 64]]
    scores[0, :3] = [0.6, 0.9, 0.2]
    inputs, outputs = postprocessed_io()
    session = FakeSession(inputs, outputs, lambda feeds: [labels, boxes, scores])
    detector = RtDetrDetector(card("rtdetr", letterbox="none"), Path("."), session=session)
    assert detector.form == "postprocessed"
    frame = np.zeros((640, 1280, 3), dtype=np.uint8)  # stretched: x halves, y stays
    (dets,) = detector.detect([frame], conf=0.5, nms_iou=0.1)
    # No NMS in end-to-end heads: both overlapping people stay, best first.
    assert [(d.label, round(d.score, 2)) for d in dets] == [("person", 0.9), ("person", 0.6)]
    assert np.allclose(dets[0].box, (220, 100, 420, 300)) and np.allclose(dets[1].box, (200, 100, 400, 300))
    sizes = session.feeds[0]["orig_target_sizes"]
    assert sizes.dtype == np.int64 and sizes.tolist() == [[640, 640]]
    assert detector.detect([frame], conf=0.1, classes={1})[0][0].label == "helmet"


def test_rtdetr_decoders_on_known_values() -> None:
    same = Placement(1.0, 1.0, 0.0, 0.0, 640, 640)
    dets = decode_postprocessed(
        np.array([1, 0]), np.array([[10, 20, 30, 40], [0, 0, 5, 5]]), np.array([0.7, 0.1]), same, LABELS, 0.5
    )
    assert len(dets) == 1 and dets[0].box == (10, 20, 30, 40) and dets[0].label == "helmet"
    raw = np.full((300, 6), -8.0, dtype=np.float32)
    raw[:, :4] = 0.1
    raw[5] = [0.5, 0.5, 0.25, 0.5, -1.0, 2.0]  # logits: helmet sigmoid(2) = 0.8808
    (det,) = decode_raw(raw, (640, 640), same, LABELS, conf=0.5)
    assert det.label == "helmet" and abs(det.score - 1 / (1 + np.exp(-2.0))) < 1e-5
    assert np.allclose(det.box, (240, 160, 400, 480))
    probs = np.zeros((300, 6), dtype=np.float32)  # an export that already applied the sigmoid
    probs[5] = [0.5, 0.5, 0.25, 0.5, 0.7, 0.1]
    (det,) = decode_raw(probs, (640, 640), same, LABELS, conf=0.5)
    assert det.label == "person" and abs(det.score - 0.7) < 1e-6


def test_rtdetr_raw_form_end_to_end() -> None:
    out = np.full((1, 300, 6), -9.0, dtype=np.float32)
    out[0, 0] = [0.25, 0.5, 0.1, 0.2, 3.0, -3.0]
    session = FakeSession([IMAGES_IN], [TensorInfo("logits_boxes", (1, 300, 6))], lambda feeds: [out])
    detector = RtDetrDetector(card("rtdetr", letterbox="top_left"), Path("."), session=session)
    assert detector.form == "raw"
    (dets,) = detector.detect([np.zeros((320, 320, 3), np.uint8)], conf=0.5)  # frame doubled
    assert len(dets) == 1 and np.allclose(dets[0].box, (64, 128, 96, 192))


def test_rtdetr_form_errors_name_the_file() -> None:
    _, outputs = postprocessed_io()
    assert detect_form("d.onnx", outputs, 2) == ("postprocessed", [0, 1, 2])
    bad = [outputs[0], TensorInfo("boxes", ("N", 300, 4)), TensorInfo("scores", ("N", 200))]
    with pytest.raises(ModelCardError, match=r"d\.onnx: output 'scores' is \[\?,200\], expected \[\?,300\]"):
        detect_form("d.onnx", bad, 2)
    with pytest.raises(ModelCardError, match=r"d\.onnx: .*\[1,300,84\].*2 classes.*\[B,Q,6\]"):
        detect_form("d.onnx", [TensorInfo("out", (1, 300, 84))], 2)
    with pytest.raises(ModelCardError, match=r"d\.onnx: outputs are x \[1,5\]"):
        detect_form("d.onnx", [TensorInfo("x", (1, 5))], 2)


# ---- classifier -------------------------------------------------------------------------------------


def test_classifier_activation() -> None:
    probs = activate(np.array([[0.0, np.log(3.0)], [5.0, 5.0]]))
    assert np.allclose(probs, [[0.25, 0.75], [0.5, 0.5]])
    assert np.allclose(activate(np.array([[0.2, 0.8]])), [[0.2, 0.8]])  # softmax already in the graph
    assert np.allclose(activate(np.array([[0.0, 0.0]]), "sigmoid"), [[0.5, 0.5]])
    assert np.allclose(activate(np.array([[0.2, 0.8]]), "softmax"), [[0.3543, 0.6457]], atol=1e-4)


def test_classifier_on_crops() -> None:
    logits = np.array([[2.0, 0.0]], dtype=np.float32)
    session = FakeSession(
        [TensorInfo("images", (1, 3, 224, 224))], [TensorInfo("logits", (1, 2))], lambda feeds: [logits]
    )
    clf = ImageClassifier(card("classifier", (224, 224), letterbox="none"), Path("."), session=session)
    frame = np.full((100, 100, 3), 50, np.uint8)
    crops = [crop_box(frame, (10, 10, 50, 90)), crop_box(frame, (200, 200, 300, 300))]  # 2nd is empty
    assert crops[0].shape == (80, 40, 3) and crops[1].size == 0
    probs = clf.classify(crops)
    assert probs.shape == (2, 2) and clf.labels == LABELS
    assert np.allclose(probs[0], [np.exp(2) / (np.exp(2) + 1), 1 / (np.exp(2) + 1)])
    assert (probs[1] == 0).all() and len(session.feeds) == 1
    with pytest.raises(ValueError, match="crop 0 must be HxWx3"):
        clf.classify([np.zeros((10, 10), np.uint8)])
    with pytest.raises(ModelCardError, match=r"c\.onnx: output 'p' is \[1,3\], the card lists 2 classes"):
        check_output("c.onnx", [TensorInfo("p", (1, 3))], 2)


# ---- load-time checks -------------------------------------------------------------------------------


def test_input_checks_against_the_card() -> None:
    spec = card("yolov8", (416, 416)).input
    assert check_input("m.onnx", [TensorInfo("images", ("b", 3, "h", "w"))], spec).name == "images"
    with pytest.raises(
        ModelCardError, match=r"m\.onnx: input 'images' is \[1,3,320,320\], the card says 416x416"
    ):
        check_input("m.onnx", [TensorInfo("images", (1, 3, 320, 320))], spec)
    with pytest.raises(ModelCardError, match=r"m\.onnx: no input named 'images'.*\['input'\]"):
        check_input("m.onnx", [TensorInfo("input", (1, 3, 416, 416))], spec)
    with pytest.raises(ModelCardError, match="NCHW"):
        check_input("m.onnx", [TensorInfo("images", (1, 416, 416, 3))], spec)
    with pytest.raises(ModelCardError, match=r"is tensor\(uint8\), the card says float32"):
        check_input("m.onnx", [TensorInfo("images", (1, 3, 416, 416), "tensor(uint8)")], spec)


def yolox_card(models_dir: Path) -> ModelCard:
    return read_card(CARDS / "yolox_nano.yaml", models_dir / "yolox_nano")


def test_real_yolox_with_a_wrong_card_size(models_dir: Path) -> None:
    good = yolox_card(models_dir)
    # the pack's fixed-size export (the card names the dynamic one, which takes any size)
    wrong = good.model_copy(
        update={
            "file": "yolox_nano.onnx",
            "dynamic_size": False,
            "input": good.input.model_copy(update={"size": (320, 320)}),
        }
    )
    with pytest.raises(
        ModelCardError, match=r"yolox_nano\.onnx: input 'images' is \[1,3,416,416\], the card says 320x320"
    ):
        load_detector(wrong, models_dir / "yolox_nano", threads=1)
    with pytest.raises(ModelCardError, match="not a detector"):
        load_detector(good.model_copy(update={"family": "movenet"}), models_dir / "yolox_nano")
    with pytest.raises(ModelCardError, match=r"movenet_multipose\.onnx: no input named 'images'"):
        load_detector(
            good.model_copy(update={"family": "yolov8", "file": "movenet_multipose.onnx"}),
            models_dir / "movenet_multipose",
        )


# ---- real pose models -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def frame0(vtest: Path) -> np.ndarray:
    with av.open(str(vtest)) as container:
        for frame in container.decode(video=0):
            return frame.to_ndarray(format="bgr24")
    raise AssertionError("no frame")


def movenet_card(models_dir: Path, size: tuple[int, int] = (256, 256)) -> ModelCard:
    c = read_card(CARDS / "movenet_multipose.yaml", models_dir / "movenet_multipose")
    return c.model_copy(update={"input": c.input.model_copy(update={"size": size})})


@pytest.fixture(scope="module")
def movenet(models_dir: Path) -> MoveNetMultiPose:
    model = load_pose(movenet_card(models_dir), models_dir / "movenet_multipose", threads=2)
    assert isinstance(model, MoveNetMultiPose)
    return model


@pytest.fixture(scope="module")
def blazepose(models_dir: Path) -> BlazePoseLandmarks:
    c = read_card(CARDS / "blazepose_landmark.yaml", models_dir / "blazepose_landmark")
    model = load_pose(c, models_dir / "blazepose_landmark", threads=2)
    assert isinstance(model, BlazePoseLandmarks)
    return model


def assert_upright(pose: Pose, box: tuple[float, float, float, float], min_conf: float) -> None:
    """Confident keypoints lie in the (slightly grown) person box; the head is above the ankles."""
    x1, y1, x2, y2 = box
    mx, my = (x2 - x1) * 0.25, (y2 - y1) * 0.15
    confident = pose.keypoints[pose.keypoints[:, 2] >= min_conf]
    assert len(confident) >= 10
    assert ((confident[:, 0] >= x1 - mx) & (confident[:, 0] <= x2 + mx)).all()
    assert ((confident[:, 1] >= y1 - my) & (confident[:, 1] <= y2 + my)).all()
    head = [p for p in (pose.point(n, min_conf) for n in HEAD) if p is not None]
    ankles = [p for p in (pose.point(n, min_conf) for n in ("left_ankle", "right_ankle")) if p is not None]
    assert head and ankles
    assert max(y for _, y in head) < min(y for _, y in ankles)


def matching_person(pose: Pose) -> tuple[float, float, float, float]:
    cx, cy = (pose.box[0] + pose.box[2]) / 2, (pose.box[1] + pose.box[3]) / 2
    return next(b for b in PEOPLE if b[0] <= cx <= b[2] and b[1] <= cy <= b[3])


def test_movenet_finds_people_on_frame0(
    movenet: MoveNetMultiPose, frame0: np.ndarray, models_dir: Path
) -> None:
    poses = movenet.estimate(frame0, min_score=0.15)
    assert len(poses) >= 2 and poses[0].score >= poses[-1].score
    for pose in poses:
        assert_upright(pose, matching_person(pose), min_conf=0.3)
    # A larger input (same weights) finds the small people of CCTV views more surely.
    large = MoveNetMultiPose(
        movenet_card(models_dir, (512, 384)), models_dir / "movenet_multipose", threads=2
    )
    poses = large.estimate(frame0)
    assert len(poses) >= 3
    for pose in poses:
        assert_upright(pose, matching_person(pose), min_conf=0.3)


def test_blazepose_on_person_crops(blazepose: BlazePoseLandmarks, frame0: np.ndarray) -> None:
    poses = blazepose.estimate(frame0, PEOPLE)
    assert len(poses) == len(PEOPLE)
    for pose, box in zip(poses, PEOPLE, strict=True):
        assert pose.box == box and pose.score > 0.9 and pose.keypoints.shape == (17, 3)
        assert_upright(pose, box, min_conf=0.5)
        shoulders, hips = pose.keypoints[[5, 6], 1].mean(), pose.keypoints[[11, 12], 1].mean()
        assert shoulders < hips


def test_blazepose_left_and_right_agree_with_movenet(
    blazepose: BlazePoseLandmarks, movenet: MoveNetMultiPose, frame0: np.ndarray
) -> None:
    """The 33 -> 17 mapping keeps the person's own left as left, as MoveNet (COCO) does."""
    compared = 0
    for mn in movenet.estimate(frame0, min_score=0.15):
        (bp,) = blazepose.estimate(frame0, [mn.box])
        for left, right in ((5, 6), (11, 12)):  # shoulders, hips (ankles cross while walking)
            gap = mn.keypoints[left, 0] - mn.keypoints[right, 0]
            if abs(gap) > 5:
                assert np.sign(bp.keypoints[left, 0] - bp.keypoints[right, 0]) == np.sign(gap)
                compared += 1
    assert compared >= 2


def test_movenet_card_must_be_multiples_of_32(models_dir: Path) -> None:
    with pytest.raises(
        ModelCardError, match=r"movenet_multipose\.onnx: the card says 250x250; .*multiples of 32"
    ):
        MoveNetMultiPose(movenet_card(models_dir, (250, 250)), models_dir / "movenet_multipose")
    c = read_card(CARDS / "blazepose_landmark.yaml", models_dir / "blazepose_landmark")
    small = c.model_copy(update={"input": c.input.model_copy(update={"size": (224, 224)})})
    with pytest.raises(ModelCardError, match=r"pose_landmark_lite\.onnx: input 'input_1' is \[1,256,256,3\]"):
        load_pose(small, models_dir / "blazepose_landmark")


# ---- frames that must not crash anything ------------------------------------------------------------

NOTHING = {
    "black": np.zeros((576, 768, 3), np.uint8),
    "tiny": np.full((8, 8, 3), 200, np.uint8),
    "strip": np.full((1, 900, 3), 90, np.uint8),
    "odd size": np.full((1001, 77, 3), 30, np.uint8),
    "empty": np.zeros((0, 0, 3), np.uint8),
}
WRONG_KIND = {
    "grayscale": np.zeros((100, 100), np.uint8),
    "grayscale HxWx1": np.zeros((100, 100, 1), np.uint8),
    "BGRA": np.zeros((100, 100, 4), np.uint8),
    "float": np.zeros((100, 100, 3), np.float32),
}


def fake_detectors() -> list[Detector]:
    yolo_out = np.zeros((1, 6, 8400), np.float32)
    rt_out = np.full((1, 300, 6), -9.0, np.float32)
    return [
        YoloV8Detector(
            card("yolov8"),
            Path("."),
            session=FakeSession([IMAGES_IN], [TensorInfo("o", (1, 6, 8400))], lambda f: [yolo_out]),
        ),
        RtDetrDetector(
            card("rtdetr"),
            Path("."),
            session=FakeSession([IMAGES_IN], [TensorInfo("o", (1, 300, 6))], lambda f: [rt_out]),
        ),
    ]


def test_bad_frames_give_nothing_or_a_clear_value_error(
    models_dir: Path, movenet: MoveNetMultiPose, blazepose: BlazePoseLandmarks
) -> None:
    yolox = load_detector(yolox_card(models_dir), models_dir / "yolox_nano", threads=2)
    assert isinstance(yolox, YoloxDetector)
    detectors = [yolox, *fake_detectors()]
    for name, image in NOTHING.items():
        for detector in detectors:
            assert detector.detect([image, image]) == [[], []], (name, detector)
        assert movenet.estimate(image) == [], name
        box = (0.0, 0.0, float(image.shape[1]), float(image.shape[0]))
        assert blazepose.estimate(image, [box]) == [], name
    for image in WRONG_KIND.values():
        for detector in detectors:
            with pytest.raises(ValueError, match="image 1 must be"):
                detector.detect([NOTHING["black"], image])
        with pytest.raises(ValueError, match="must be"):
            movenet.estimate(image)
        with pytest.raises(ValueError, match="must be"):
            blazepose.estimate(image, [(0.0, 0.0, 10.0, 10.0)])


def test_blazepose_skips_useless_boxes(blazepose: BlazePoseLandmarks, frame0: np.ndarray) -> None:
    # No area, not finite, or wholly off the frame (the crop is all padding: no person present).
    boxes = [(10.0, 10.0, 10.0, 50.0), (float("nan"), 0.0, 5.0, 5.0), (5000.0, 5000.0, 5100.0, 5200.0)]
    assert blazepose.estimate(frame0, boxes) == []
    assert blazepose.estimate(frame0, []) == []


def test_letterbox_keeps_a_one_pixel_strip() -> None:
    canvas, placement = letterbox(np.full((1, 1000, 3), 9, np.uint8), (416, 416), "centre", 0)
    assert canvas.shape == (416, 416, 3) and (canvas[207, :416] == 9).all() and placement.pad_y == 207


def test_every_family_file_registers_itself_and_the_card_literal_names_them() -> None:
    """Families declare their name, role and loader in their own file; load_detector / load_pose
    dispatch through the registry, and every card family has one."""
    from typing import get_args

    from analyzers.detectors.classifier import ImageClassifier as Classifier
    from analyzers.detectors.yolox import load_yolox
    from analyzers.runtime.card import Family
    from analyzers.runtime.families import FAMILIES, ModelFamily, family_names, register_family

    assert set(FAMILIES) == set(get_args(Family))
    assert family_names("detector") == ("yolox", "yolov8", "rtdetr")
    assert family_names("pose") == ("movenet", "blazepose") and family_names("classifier") == ("classifier",)
    assert FAMILIES["yolox"].load is load_yolox and FAMILIES["yolox"].sized
    assert not any(FAMILIES[n].sized for n in FAMILIES if n != "yolox")
    assert FAMILIES["classifier"].load.__annotations__["return"] in (Classifier, "ImageClassifier")
    with pytest.raises(ValueError, match="not a card family"):
        register_family(ModelFamily("nope", "detector", load_yolox))
    with pytest.raises(ValueError, match="declared twice"):
        register_family(ModelFamily("yolox", "detector", load_yolox))
