"""Image enhancement steps on frames of the sample video: what each does to a darkened or hazed copy,
that nothing changes when no step is chosen, and that the camera runner's models see the enhanced
frame while the evidence keeps the camera's own unless asked."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from pydantic import ValidationError

from adapters import Frame
from analyzers.enhance import EnhanceSettings, clahe, dehaze, enhance, lowlight
from gateway.cameras.plant_context import CameraContext
from gateway.cameras.scene_gate import SceneGate
from gateway.config.schema import CameraConfig


@pytest.fixture(scope="module")
def frame(vtest: Path) -> np.ndarray:
    with av.open(str(vtest)) as container:
        return next(container.decode(video=0)).to_ndarray(format="bgr24")


def contrast(image: np.ndarray) -> float:
    return float(image.astype(np.float32).std())


def test_lowlight_lifts_a_dark_frame_and_leaves_a_bright_one(frame: np.ndarray) -> None:
    dark = (frame * 0.2).astype(np.uint8)
    lifted = lowlight(dark, target=110, max_gain=4)
    assert dark.mean() < 30 and 60 < lifted.mean() < 120
    assert lowlight(frame, target=110) is frame  # already bright enough


def test_dehaze_and_clahe_restore_contrast(frame: np.ndarray) -> None:
    hazed = np.clip(frame.astype(np.float32) * 0.45 + 215 * 0.55, 0, 255).astype(np.uint8)
    assert contrast(dehaze(hazed)) > 1.5 * contrast(hazed)
    assert contrast(clahe(hazed)) > contrast(hazed)
    assert dehaze(hazed).shape == hazed.shape and dehaze(hazed).dtype == np.uint8


def test_no_steps_is_the_same_frame(frame: np.ndarray) -> None:
    assert enhance(frame, EnhanceSettings()) is frame
    assert not EnhanceSettings().active


def test_steps_are_checked() -> None:
    with pytest.raises(ValidationError):
        EnhanceSettings.model_validate({"steps": ["sharpen"]})


def test_the_models_see_the_enhanced_frame_and_the_evidence_the_camera_s(frame: np.ndarray) -> None:
    dark = (frame * 0.2).astype(np.uint8)
    camera = CameraConfig.model_validate(
        {"id": "c", "name": "c", "url": "rtsp://127.0.0.1/x", "enhance": {"steps": ["lowlight"]}}
    )
    context = CameraContext(camera, SceneGate(camera, None, None, None), None)
    seen = context.image(Frame("c", 1.0, dark, 0.0, True))
    assert seen.mean() > 2 * dark.mean()
    assert context.evidence(Frame("c", 1.0, dark, 0.0, True), seen) is dark
    camera.enhance.in_evidence = True
    assert context.evidence(Frame("c", 1.0, dark, 0.0, True), seen) is seen
