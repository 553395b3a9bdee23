"""VideoDiagnosis on frames of the sample video and altered copies of them: each fault is judged as
itself (a black picture is dark, not also covered or frozen), raised once per episode after hold_s and
cleared after recover_s; offline needs no frame at all."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from analyzers.health import (
    BLURRED,
    COVERED,
    DARK,
    FROZEN,
    MOVED,
    OFFLINE,
    OVEREXPOSED,
    DiagnosisSettings,
    Reference,
    VideoDiagnosis,
)

SETTINGS = DiagnosisSettings(check_interval_s=1, hold_s=3, recover_s=2, offline_s=5, frozen_s=4)


@pytest.fixture(scope="module")
def frames(vtest: Path) -> list[np.ndarray]:
    """One frame a second of the first 20 s of vtest.avi (10 frames/s)."""
    out = []
    with av.open(str(vtest)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % 10 == 0:
                out.append(frame.to_ndarray(format="bgr24"))
            if len(out) == 20:
                break
    return out


def black(f: np.ndarray) -> np.ndarray:
    return np.full_like(f, 4)


def overexposed(f: np.ndarray) -> np.ndarray:
    return np.clip(f.astype(np.int32) * 3 + 80, 0, 255).astype(np.uint8)


def blurred(f: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(f, (0, 0), 3)


def covered(f: np.ndarray) -> np.ndarray:
    out = f.copy()
    out[:, : int(f.shape[1] * 0.9)] = (60, 60, 70)
    return out


def moved(f: np.ndarray) -> np.ndarray:
    h, w = f.shape[:2]
    return cv2.resize(f[h // 4 :, : w // 2], (w, h))


def run(
    diag: VideoDiagnosis, images: list[np.ndarray], start: float = 1000.0
) -> list[tuple[str, str, float]]:
    """Offer one image a second and tick after each; the raises and clears with their times."""
    changes = []
    for i, image in enumerate(images):
        now = start + i
        diag.offer(image, now)
        changes += [(c.code, c.kind, c.at - start) for c in diag.tick(now)]
    return changes


@pytest.mark.parametrize(
    ("alter", "code"),
    [(black, DARK), (overexposed, OVEREXPOSED), (blurred, BLURRED), (covered, COVERED), (moved, MOVED)],
)
def test_each_fault_is_raised_once_as_itself_and_cleared(frames: list[np.ndarray], alter, code: str) -> None:  # type: ignore[no-untyped-def]
    diag = VideoDiagnosis("c", SETTINGS, Reference.of(frames[0]))
    images = frames[:5] + [alter(f) for f in frames[5:14]] + frames[14:20]
    changes = run(diag, images)
    assert changes == [(code, "raise", 5 + SETTINGS.hold_s), (code, "clear", 14 + SETTINGS.recover_s)]
    assert diag.active() == []


def test_frozen_picture_while_frames_arrive(frames: list[np.ndarray]) -> None:
    diag = VideoDiagnosis("c", SETTINGS, Reference.of(frames[0]))
    images = frames[:4] + [frames[4]] * 8 + frames[12:20]
    changes = run(diag, images)
    # the picture is the same from t=4; frozen after frozen_s, cleared recover_s after it moves again
    assert changes == [(FROZEN, "raise", 4 + SETTINGS.frozen_s), (FROZEN, "clear", 12 + SETTINGS.recover_s)]


def test_normal_video_raises_nothing(frames: list[np.ndarray]) -> None:
    diag = VideoDiagnosis("c", SETTINGS, Reference.of(frames[0]))
    assert run(diag, frames) == []
    assert diag.measured == len(frames)


def test_first_good_picture_becomes_the_reference(frames: list[np.ndarray]) -> None:
    diag = VideoDiagnosis("c", SETTINGS)
    assert run(diag, frames[:3]) == []
    assert diag.reference is not None and diag.new_reference is not None
    assert run(diag, [moved(f) for f in frames[3:10]], start=1003)[0][:2] == (MOVED, "raise")


def test_offline_without_frames_and_recovery() -> None:
    diag = VideoDiagnosis("c", SETTINGS)
    image = np.random.default_rng(1).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    diag.offer(image, 100.0)
    assert diag.tick(104.0) == []
    raised = diag.tick(105.5)
    assert [(c.code, c.kind) for c in raised] == [(OFFLINE, "raise")]
    assert "5 s" in raised[0].message
    assert diag.tick(110.0) == []  # once per episode
    diag.offer(image, 111.0)
    assert diag.tick(112.0) == []  # back, but not yet for recover_s
    assert [(c.code, c.kind) for c in diag.tick(114.5)] == [(OFFLINE, "clear")]


def test_an_adopted_open_alarm_clears_when_the_fault_is_gone(frames: list[np.ndarray]) -> None:
    diag = VideoDiagnosis("c", SETTINGS, Reference.of(frames[0]))
    diag.adopt(DARK)  # open from before a restart
    assert run(diag, frames[:5]) == [(DARK, "clear", 0 + SETTINGS.recover_s)]


def test_checks_can_be_switched_off(frames: list[np.ndarray]) -> None:
    settings = SETTINGS.model_copy(update={"checks": [OFFLINE]})
    diag = VideoDiagnosis("c", settings, Reference.of(frames[0]))
    assert run(diag, [black(f) for f in frames[:10]]) == []
