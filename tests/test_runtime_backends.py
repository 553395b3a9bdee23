"""CPU runtimes behind open_session: the VIGIL_CPU_RUNTIME choice, and OpenVINO giving onnxruntime's
numbers (raw outputs of the pack models and the project's cards, and the detector's detections on a
real frame) through the same session interface."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import av
import numpy as np
import onnxruntime as ort
import pytest

from analyzers.detectors import ImageClassifier, YoloxDetector
from analyzers.pose import BlazePoseLandmarks, MoveNetMultiPose
from analyzers.runtime import read_card
from analyzers.runtime import session as runtime
from analyzers.runtime.openvino_session import openvino_available
from analyzers.runtime.session import choose_runtime, cpu_runtime_setting, open_session
from tests.conftest import ROOT

CARDS = ROOT / "config" / "models"
# People on frame 0 of vtest.avi (as in tests/test_model_families.py), for BlazePose's crops.
PEOPLE = [(643.0, 239.0, 684.0, 322.0), (252.0, 220.0, 283.0, 308.0), (503.0, 158.0, 531.0, 232.0)]
CPU = ["CPUExecutionProvider"]
GPU = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
needs_openvino = pytest.mark.skipif(
    not openvino_available(),
    reason="openvino is not installed (pip install 'vigil[openvino]'); the OpenVINO runtime is optional",
)


# ---- which runtime opens a model (no openvino needed) -----------------------------------------------


def test_cpu_runtime_setting() -> None:
    assert cpu_runtime_setting({}) == "auto"
    assert cpu_runtime_setting({"VIGIL_CPU_RUNTIME": ""}) == "auto"
    assert cpu_runtime_setting({"VIGIL_CPU_RUNTIME": " OpenVINO "}) == "openvino"
    assert cpu_runtime_setting({"VIGIL_CPU_RUNTIME": "onnxruntime"}) == "onnxruntime"
    with pytest.raises(ValueError, match=r"VIGIL_CPU_RUNTIME='tensorflow': expected one of auto, "):
        cpu_runtime_setting({"VIGIL_CPU_RUNTIME": "tensorflow"})


def test_gpu_providers_always_run_onnxruntime() -> None:
    for setting in ("auto", "onnxruntime", "openvino"):
        assert choose_runtime(Path("m/yolox_nano_dynamic.onnx"), setting, GPU, have_openvino=True) == (
            "onnxruntime"
        )
    assert choose_runtime(Path("m/x.onnx"), "openvino", ["CUDAExecutionProvider", *CPU], False) == (
        "onnxruntime"
    )


def test_cpu_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "OPENVINO_FASTER", frozenset({"fast.onnx"}))
    assert choose_runtime(Path("a/fast.onnx"), "auto", CPU, have_openvino=True) == "openvino"
    assert choose_runtime(Path("a/slow.onnx"), "auto", CPU, have_openvino=True) == "onnxruntime"
    # auto never needs openvino: without the package every model runs on onnxruntime.
    assert choose_runtime(Path("a/fast.onnx"), "auto", CPU, have_openvino=False) == "onnxruntime"
    assert choose_runtime(Path("a/fast.onnx"), "onnxruntime", CPU, have_openvino=True) == "onnxruntime"
    assert choose_runtime(Path("a/slow.onnx"), "openvino", CPU, have_openvino=True) == "openvino"
    with pytest.raises(RuntimeError, match=r"openvino package is not installed .*vigil\[openvino\]"):
        choose_runtime(Path("a/slow.onnx"), "openvino", CPU, have_openvino=False)


def test_auto_table() -> None:
    """What tests/benchmarks/bench_runtimes.py measured (see OPENVINO_FASTER): BlazePose on OpenVINO,
    the rest on onnxruntime."""
    pick = {
        name: choose_runtime(Path("m") / name, "auto", CPU, have_openvino=True)
        for name in (
            "pose_landmark_lite.onnx",
            "yolox_nano_dynamic.onnx",
            "yolox_nano.onnx",
            "movenet_multipose.onnx",
            "efficientnet_lite0_embedding.onnx",
            "helmet.onnx",
            "ppe.onnx",
        )
    }
    assert {n for n, r in pick.items() if r == "openvino"} == {"pose_landmark_lite.onnx"}


def test_open_session_follows_the_setting(models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = models_dir / "yolox_nano" / "yolox_nano.onnx"
    monkeypatch.setenv("VIGIL_CPU_RUNTIME", "onnxruntime")
    assert isinstance(open_session(path, 1), ort.InferenceSession)
    monkeypatch.setenv("VIGIL_CPU_RUNTIME", "bogus")
    with pytest.raises(ValueError, match="VIGIL_CPU_RUNTIME"):
        open_session(path, 1)
    if openvino_available():
        monkeypatch.setenv("VIGIL_CPU_RUNTIME", "openvino")
        assert open_session(path, 1).get_providers() == ["OpenVINO"]
        assert open_session(path, 1, runtime="onnxruntime").get_providers() == CPU


# ---- OpenVINO gives onnxruntime's numbers ------------------------------------------------------------


def both(path: Path, threads: int = 2) -> tuple[Any, Any]:
    from analyzers.runtime.openvino_session import OpenVinoSession

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=CPU), OpenVinoSession(path, threads)


def assert_same(expected: list[np.ndarray], found: list[np.ndarray], rel: float = 1e-4) -> None:
    """Same shapes and dtypes; values within ``rel`` of the output's largest magnitude (fp32 kernels
    sum in other orders)."""
    assert len(expected) == len(found)
    for want, got in zip(expected, found, strict=True):
        assert isinstance(got, np.ndarray) and got.shape == want.shape and got.dtype == want.dtype
        scale = max(1.0, float(np.abs(want).max()))
        assert float(np.abs(want - got).max()) <= rel * scale, (want.shape, np.abs(want - got).max(), scale)


def image_batch(shape: tuple[int, ...], dtype: type[np.generic], high: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random(shape) * high).astype(dtype)


PACK_CASES = [
    # (file under the pack, input name, input shape, dtype, pixel range)
    ("yolox_nano/yolox_nano_dynamic.onnx", "images", (1, 3, 352, 640), np.float32, 255.0),
    ("yolox_nano/yolox_nano_dynamic.onnx", "images", (1, 3, 416, 416), np.float32, 255.0),
    ("yolox_nano/yolox_nano_dynamic.onnx", "images", (1, 3, 480, 640), np.float32, 255.0),
    ("yolox_nano/yolox_nano.onnx", "images", (1, 3, 416, 416), np.float32, 255.0),
    ("movenet_multipose/movenet_multipose.onnx", "input", (1, 384, 512, 3), np.int32, 255.0),
    ("movenet_multipose/movenet_multipose.onnx", "input", (1, 256, 256, 3), np.int32, 255.0),
    ("efficientnet_lite0/efficientnet_lite0_embedding.onnx", "image", (8, 3, 224, 224), np.float32, 2.0),
    ("efficientnet_lite0/efficientnet_lite0_embedding.onnx", "image", (1, 3, 224, 224), np.float32, 2.0),
    ("blazepose_landmark/pose_landmark_lite.onnx", "input_1", (1, 256, 256, 3), np.float32, 1.0),
]


@needs_openvino
@pytest.mark.parametrize(("file", "name", "shape", "dtype", "high"), PACK_CASES)
def test_pack_models_agree(
    models_dir: Path, file: str, name: str, shape: tuple[int, ...], dtype: type[np.generic], high: float
) -> None:
    ref, ov = both(models_dir / file)
    feeds = {name: image_batch(shape, dtype, high)}
    if name == "image":  # efficientnet: (pixel - 127) / 128, centred on 0
        feeds[name] -= 1.0
    assert_same(ref.run(None, feeds), ov.run(None, feeds))


@needs_openvino
@pytest.mark.parametrize("name", ["helmet", "fire", "smoking", "workwear"])
def test_classifier_cards_agree(name: str) -> None:
    card = read_card(CARDS / f"{name}.yaml", CARDS / name)
    ref, ov = both(CARDS / name / card.file)
    width, height = card.input.size
    feeds = {card.input.name: image_batch((5, 3, height, width), np.float32, 4.0, seed=1) - 2.0}
    assert_same(ref.run(None, feeds), ov.run(None, feeds))


@needs_openvino
def test_session_interface_matches_onnxruntime(models_dir: Path) -> None:
    ref, ov = both(models_dir / "blazepose_landmark" / "pose_landmark_lite.onnx", threads=1)
    for mine, theirs in ((ov.get_inputs(), ref.get_inputs()), (ov.get_outputs(), ref.get_outputs())):
        assert [(n.name, n.shape, n.type) for n in mine] == [(n.name, n.shape, n.type) for n in theirs]
    assert ov.get_providers() == ["OpenVINO"]
    feeds = {"input_1": image_batch((1, 256, 256, 3), np.float32, 1.0)}
    # A subset of the outputs, in the order asked for.
    subset = ov.run(["Identity_1", "Identity"], feeds)
    assert_same(ref.run(["Identity_1", "Identity"], feeds), subset)
    # Dynamic dimensions read as None (onnxruntime: a symbol name): the shape checks treat both alike.
    _, yolox = both(models_dir / "yolox_nano" / "yolox_nano_dynamic.onnx", threads=1)
    assert yolox.get_inputs()[0].shape == [1, 3, None, None]
    # What onnxruntime refuses, OpenVINO refuses too (it would quietly convert the type).
    with pytest.raises(ValueError, match=r"input 'input_1' is tensor\(float\), got numpy float64"):
        ov.run(None, {"input_1": np.zeros((1, 256, 256, 3))})
    with pytest.raises(ValueError, match=r"input 'input_1' is \[1, 256, 256, 3\], got \[1, 224, 224, 3\]"):
        ov.run(None, {"input_1": np.zeros((1, 224, 224, 3), np.float32)})
    with pytest.raises(ValueError, match="no input named"):
        ov.run(None, {"pixels": np.zeros((1, 256, 256, 3), np.float32)})
    with pytest.raises(ValueError, match="no output named 'nope'"):
        ov.run(["nope"], feeds)


@needs_openvino
def test_concurrent_runs_give_each_caller_its_answer(models_dir: Path) -> None:
    """Inference workers share one session across threads, as they share onnxruntime's."""
    ref, ov = both(models_dir / "yolox_nano" / "yolox_nano_dynamic.onnx", threads=1)
    feeds = [{"images": image_batch((1, 3, 224, 320), np.float32, 255.0, seed=s)} for s in range(4)]
    want = [ref.run(None, f)[0] for f in feeds]
    got: dict[tuple[int, int], np.ndarray] = {}

    def work(worker: int) -> None:
        for rep in range(3):
            i = (worker + rep) % len(feeds)
            got[(worker, rep)] = ov.run(None, feeds[i])[0]

    threads = [threading.Thread(target=work, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for (worker, rep), out in got.items():
        assert_same([want[(worker + rep) % len(feeds)]], [out])
    assert 2 <= ov.compiled <= 4  # the dynamic compile, then one per concurrent caller at this shape


@needs_openvino
def test_shapes_compile_static_or_fall_back_to_dynamic(
    models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref, ov = both(models_dir / "yolox_nano" / "yolox_nano_dynamic.onnx", threads=1)
    feeds = {"images": image_batch((1, 3, 96, 128), np.float32, 255.0)}
    assert_same(ref.run(None, feeds), ov.run(None, feeds))
    assert ov.compiled == 2  # the dynamic compile made at open, then this shape's static one
    compile_ = ov._compile

    def no_static(shapes: Any) -> Any:
        if shapes is not None:
            raise RuntimeError("cannot reshape")
        return compile_(shapes)

    monkeypatch.setattr(ov, "_compile", no_static)
    other = {"images": image_batch((1, 3, 64, 96), np.float32, 255.0)}
    assert_same(ref.run(None, other), ov.run(None, other))  # on the dynamic compile
    assert_same(ref.run(None, other), ov.run(None, other))
    assert ov.compiled == 2


# ---- the analyzers on OpenVINO give the same answers --------------------------------------------------


@pytest.fixture(scope="module")
def frame0(vtest: Path) -> np.ndarray:
    with av.open(str(vtest)) as container:
        for frame in container.decode(video=0):
            return frame.to_ndarray(format="bgr24")
    raise AssertionError("no frame")


@needs_openvino
@pytest.mark.parametrize("size", [(640, 352), (416, 416)])
def test_detector_detections_agree(
    models_dir: Path, frame0: np.ndarray, size: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    card = read_card(CARDS / "yolox_nano.yaml", models_dir / "yolox_nano")
    found = {}
    for setting in ("onnxruntime", "openvino"):
        monkeypatch.setenv("VIGIL_CPU_RUNTIME", setting)
        detector = YoloxDetector(card, models_dir / "yolox_nano", threads=1, input_size=size)
        found[setting] = detector.detect([frame0], conf=0.3)[0]
        assert detector.provider == ("OpenVINO" if setting == "openvino" else "CPUExecutionProvider")
    ref, ov = found["onnxruntime"], found["openvino"]
    assert len(ref) >= 3
    assert [d.label for d in ov] == [d.label for d in ref]
    for a, b in zip(ref, ov, strict=True):
        assert abs(a.score - b.score) < 1e-3
        assert np.allclose(a.box, b.box, atol=0.05)


@needs_openvino
def test_pose_and_classifier_agree(
    models_dir: Path, frame0: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    pose_card = read_card(CARDS / "movenet_multipose.yaml", models_dir / "movenet_multipose")
    blaze_card = read_card(CARDS / "blazepose_landmark.yaml", models_dir / "blazepose_landmark")
    helmet = read_card(CARDS / "helmet.yaml", CARDS / "helmet")
    heads = [frame0[220:260, 250:285], frame0[239:270, 643:684], frame0[158:190, 503:531]]
    poses, landmarks, probs = {}, {}, {}
    for setting in ("onnxruntime", "openvino"):
        monkeypatch.setenv("VIGIL_CPU_RUNTIME", setting)
        poses[setting] = MoveNetMultiPose(pose_card, models_dir / "movenet_multipose", threads=1).estimate(
            frame0
        )
        blaze = BlazePoseLandmarks(blaze_card, models_dir / "blazepose_landmark", threads=1)
        landmarks[setting] = blaze.estimate(frame0, PEOPLE)
        probs[setting] = ImageClassifier(helmet, CARDS / "helmet", threads=1).classify(heads)
    assert len(poses["openvino"]) == len(poses["onnxruntime"]) >= 3
    assert len(landmarks["openvino"]) == len(landmarks["onnxruntime"]) == len(PEOPLE)
    ref, ov = poses["onnxruntime"] + landmarks["onnxruntime"], poses["openvino"] + landmarks["openvino"]
    for a, b in zip(ref, ov, strict=True):
        assert abs(a.score - b.score) < 1e-3 and np.allclose(a.keypoints, b.keypoints, atol=0.05)
    assert np.allclose(probs["onnxruntime"], probs["openvino"], atol=1e-4)
