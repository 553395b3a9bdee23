"""Video diagnosis (视频诊断) of one camera from the frames it already decodes: offline, covered,
blurred, too dark, overexposed, frozen picture and a moved view (the picture no longer matches the
reference the regions were drawn on).

``VideoDiagnosis.offer(frame)`` is called for every decoded frame; it measures at most once per
``check_interval_s`` on a small grey copy (about a millisecond). ``tick(now)`` (once a second, from any
thread) judges offline and turns conditions into episodes: a condition must hold ``hold_s`` to raise,
and be gone ``recover_s`` to clear, so each episode is one ``HealthChange("raise")`` and one
``HealthChange("clear")``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

# Alarm type codes (config/alarm_types.yaml), in the order a frame is judged: a black picture is dark,
# not also covered or blurred.
OFFLINE = "camera_offline"
DARK = "camera_dark"
OVEREXPOSED = "camera_overexposed"
COVERED = "camera_covered"
BLURRED = "camera_blurred"
FROZEN = "camera_frozen"
MOVED = "camera_moved"
CODES: tuple[str, ...] = (OFFLINE, DARK, OVEREXPOSED, COVERED, BLURRED, FROZEN, MOVED)
PICTURE_FAULTS = (DARK, OVEREXPOSED, COVERED, BLURRED)  # while one holds, frozen/moved are not judged

WIDTH = 320  # frames are measured on a grey copy this wide
REF_SIZE = (96, 72)  # edge maps compared with the reference at this size
GRID = (8, 6)  # tiles for the covered check
# A pixel has changed when its grey level moved more than this: an encoder re-encoding the same picture
# moves pixels by a few levels, a moving person or a ticking on-screen clock by far more.
CHANGE_LEVEL = 20


class DiagnosisSettings(BaseModel):
    """Per-camera video diagnosis thresholds (defaults suit a fixed industrial camera)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="run video diagnosis on this camera's decoded frames")
    checks: list[str] = Field(
        default_factory=lambda: list(CODES), description=f"which checks run; any of {', '.join(CODES)}"
    )
    check_interval_s: float = Field(1.0, gt=0, le=60, description="measure a frame at most this often")
    hold_s: float = Field(10.0, ge=0, le=3600, description="a fault must last this long to raise")
    recover_s: float = Field(5.0, ge=0, le=3600, description="and be gone this long to clear")
    offline_s: float = Field(30.0, gt=0, le=3600, description="no frame for this long: offline")
    dark_level: float = Field(25.0, ge=0, le=255, description="mean grey level below which it is too dark")
    bright_level: float = Field(235.0, ge=0, le=255, description="mean grey level above: overexposed")
    covered_fraction: float = Field(
        0.7, gt=0, le=1, description="share of the picture without texture that counts as covered"
    )
    flat_std: float = Field(4.0, gt=0, le=64, description="grey standard deviation of a textureless tile")
    blur_ratio: float = Field(
        0.15, gt=0, lt=1, description="blurred when sharpness falls below this share of the reference's"
    )
    blur_floor: float = Field(
        0.05,
        ge=0,
        description="without a reference: blurred below this sharpness (Laplacian over grey variance)",
    )
    frozen_s: float = Field(30.0, gt=0, le=3600, description="the same picture this long while frames arrive")
    frozen_changed: float = Field(
        0.0002, ge=0, le=1, description="share of changed pixels below which two frames are the same"
    )
    moved_similarity: float = Field(
        0.5, ge=-1, le=1, description="edge similarity to the reference below which the view has moved"
    )

    def runs(self, code: str) -> bool:
        return self.enabled and code in self.checks


@dataclass(frozen=True)
class Measure:
    """What one frame looks like to the diagnosis."""

    at: float
    brightness: float  # mean grey 0..255
    sharpness: float  # variance of the Laplacian
    flat: float  # share of tiles without texture
    changed: float | None  # share of pixels changed since the previous measured frame
    similarity: float | None  # edge correlation with the reference (None: no reference)


@dataclass(frozen=True)
class HealthChange:
    """An episode starts (raise) or ends (clear)."""

    code: str
    kind: Literal["raise", "clear"]
    at: float
    message: str
    details: dict[str, float]


@dataclass
class Reference:
    """The picture the regions were drawn on, as the diagnosis compares it."""

    edges: np.ndarray
    sharpness: float

    @classmethod
    def of(cls, image: np.ndarray) -> Reference:
        grey = small_grey(image)
        return cls(edge_map(grey), sharpness(grey))


def small_grey(image: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    size = (WIDTH, max(1, round(height * WIDTH / max(1, width))))
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA)


def sharpness(grey: np.ndarray) -> float:
    """Variance of the Laplacian over the picture's own variance: fine detail relative to contrast, so
    that dimming the light does not look like losing focus."""
    contrast = float(grey.var())
    return float(cv2.Laplacian(grey, cv2.CV_32F).var()) / contrast if contrast > 1.0 else 0.0


def edge_map(grey: np.ndarray) -> np.ndarray:
    """Gradient magnitude of a blurred small copy, zero-mean unit-norm: lighting changes move it little,
    a turned camera a lot."""
    small = cv2.GaussianBlur(cv2.resize(grey, REF_SIZE, interpolation=cv2.INTER_AREA), (3, 3), 0)
    gx = cv2.Sobel(small, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(small, cv2.CV_32F, 0, 1)
    mag = cv2.magnitude(gx, gy)
    mag -= mag.mean()
    norm = float(np.linalg.norm(mag))
    return mag / norm if norm > 1e-6 else mag


def flat_share(grey: np.ndarray, flat_std: float) -> float:
    """Share of the picture's tiles (GRID) whose grey level hardly varies."""
    cols, rows = GRID
    height, width = grey.shape
    h, w = height // rows, width // cols
    tiles = grey[: h * rows, : w * cols].astype(np.float32).reshape(rows, h, cols, w)
    return float((tiles.std(axis=(1, 3)) < flat_std).mean())


def measure(
    image: np.ndarray,
    at: float,
    settings: DiagnosisSettings,
    previous: np.ndarray | None,
    ref: Reference | None,
) -> tuple[Measure, np.ndarray]:
    """The frame's measure and its small grey copy (the next frame's ``previous``)."""
    grey = small_grey(image)
    changed = None
    if previous is not None and previous.shape == grey.shape:
        changed = float(np.count_nonzero(cv2.absdiff(grey, previous) > CHANGE_LEVEL)) / grey.size
    similarity = None
    if ref is not None:
        similarity = float((edge_map(grey) * ref.edges).sum())
    m = Measure(
        at, float(grey.mean()), sharpness(grey), flat_share(grey, settings.flat_std), changed, similarity
    )
    return m, grey


@dataclass
class _Episode:
    since: float | None = None  # the condition holds since
    gone_since: float | None = None  # the condition is absent since (while active)
    active: bool = False
    details: dict[str, float] = field(default_factory=dict)


MESSAGES = {
    OFFLINE: "no picture from the camera for {offline_s:.0f} s",
    DARK: "the picture is too dark (mean level {brightness:.0f})",
    OVEREXPOSED: "the picture is overexposed (mean level {brightness:.0f})",
    COVERED: "the lens looks covered ({flat:.0%} of the picture without texture)",
    BLURRED: "the picture is out of focus (sharpness {sharpness:.3f}, reference {reference:.3f})",
    FROZEN: "the picture has not changed for {frozen_s:.0f} s while the stream plays",
    MOVED: "the view no longer matches the reference picture (similarity {similarity:.2f})",
}


class VideoDiagnosis:
    """The diagnosis of one camera. ``offer`` runs on the camera's source thread, ``tick`` on the
    health thread; a lock keeps them apart (both are short)."""

    def __init__(
        self, camera_id: str, settings: DiagnosisSettings, reference: Reference | None = None
    ) -> None:
        self.camera_id = camera_id
        self.settings = settings
        self.reference = reference
        self.new_reference: np.ndarray | None = None  # a picture taken as reference, for the caller to keep
        self.latest: np.ndarray | None = None  # the last measured frame (the alarm's snapshot)
        self.last: Measure | None = None
        self.cost_s = 0.0  # CPU seconds spent measuring (the benchmark reports it)
        self.measured = 0
        self._grey: np.ndarray | None = None
        self._last_frame: float | None = None  # never: offline counts from the first tick
        self._last_measure = 0.0
        self._previous_at = 0.0
        self._unchanged_since: float | None = None
        self._episodes = {code: _Episode() for code in CODES}
        self._lock = threading.Lock()

    def active(self) -> list[str]:
        """The codes of the episodes now raised."""
        with self._lock:
            return [code for code, e in self._episodes.items() if e.active]

    def view_moved(self) -> bool:
        """Whether the view does not match the reference now (held or not yet), for pausing regions."""
        with self._lock:
            e = self._episodes[MOVED]
            return e.since is not None or (e.active and e.gone_since is None)

    def adopt(self, code: str) -> None:
        """An alarm of this code is still open (from before a restart): its episode is active."""
        with self._lock:
            self._episodes[code].active = True

    def offer(self, image: np.ndarray, at: float) -> None:
        """A decoded frame (wall-clock time ``at``)."""
        self._last_frame = at if self._last_frame is None else max(self._last_frame, at)
        # 0.9: frames that come every check_interval_s with some jitter are all measured
        if not self.settings.enabled or at - self._last_measure < 0.9 * self.settings.check_interval_s:
            return
        if at - self._last_measure >= self.settings.offline_s:
            self._grey = None  # after a gap that long the picture is new, not frozen
        self._previous_at, self._last_measure = self._last_measure, at
        started = time.thread_time()  # CPU of this (the camera's) thread: load elsewhere does not count
        m, grey = measure(image, at, self.settings, self._grey, self.reference)
        self._grey = grey
        with self._lock:
            self.latest, self.last = image, m
            self._judge(m)
        self.cost_s += time.thread_time() - started
        self.measured += 1

    def tick(self, now: float) -> list[HealthChange]:
        """Judge offline and turn held or absent conditions into raises and clears."""
        s = self.settings
        out: list[HealthChange] = []
        with self._lock:
            if self._last_frame is None:
                self._last_frame = now
            silent = now - self._last_frame
            if s.runs(OFFLINE):
                self._condition(
                    OFFLINE, silent >= s.offline_s, now - silent + s.offline_s, now, {"silent_s": silent}
                )
            for code, e in self._episodes.items():
                if not e.active and e.since is not None and now - e.since >= self._hold(code):
                    e.active = True
                    values = {**e.details, "offline_s": s.offline_s, "frozen_s": s.frozen_s}
                    out.append(
                        HealthChange(code, "raise", now, MESSAGES[code].format(**values), dict(e.details))
                    )
                elif e.active and e.gone_since is not None and now - e.gone_since >= s.recover_s:
                    e.active, e.gone_since = False, None
                    out.append(HealthChange(code, "clear", now, "recovered", {}))
        return out

    def _hold(self, code: str) -> float:
        # The offline and frozen conditions carry their own duration already.
        return 0.0 if code in (OFFLINE, FROZEN) else self.settings.hold_s

    def _condition(self, code: str, holds: bool, since: float, now: float, details: dict[str, float]) -> None:
        e = self._episodes[code]
        if holds:
            if e.since is None:
                e.since = since
            e.gone_since, e.details = None, details
        else:
            e.since = None
            if e.active and e.gone_since is None:
                e.gone_since = now

    def _judge(self, m: Measure) -> None:
        s = self.settings
        ref = self.reference
        dark = s.runs(DARK) and m.brightness < s.dark_level
        bright = s.runs(OVEREXPOSED) and m.brightness > s.bright_level
        covered = s.runs(COVERED) and not (dark or bright) and m.flat >= s.covered_fraction
        floor = ref.sharpness * s.blur_ratio if ref is not None else s.blur_floor
        blurred = s.runs(BLURRED) and not (dark or bright or covered) and m.sharpness < floor
        faulty = dark or bright or covered or blurred
        looks = {"brightness": m.brightness, "flat": m.flat, "sharpness": m.sharpness}
        self._condition(DARK, dark, m.at, m.at, looks)
        self._condition(OVEREXPOSED, bright, m.at, m.at, looks)
        self._condition(COVERED, covered, m.at, m.at, looks)
        self._condition(BLURRED, blurred, m.at, m.at, {**looks, "reference": ref.sharpness if ref else 0.0})
        # Frozen: the same picture (a few pixels may flicker) for frozen_s; a dark or covered picture
        # is judged as that instead.
        if m.changed is not None and m.changed < s.frozen_changed and not faulty:
            if self._unchanged_since is None:
                self._unchanged_since = self._previous_at
        else:
            self._unchanged_since = None
        still = self._unchanged_since is not None and m.at - self._unchanged_since >= s.frozen_s
        if s.runs(FROZEN):
            self._condition(FROZEN, still, m.at, m.at, {"changed": m.changed or 0.0})
        if s.runs(MOVED):
            if ref is None and not faulty and m.changed is not None:
                # The first good, live picture is the reference until one is set for the camera.
                self.new_reference = self.latest
                self.reference = Reference.of(self.latest) if self.latest is not None else None
            elif ref is not None and m.similarity is not None and not faulty:
                self._condition(
                    MOVED, m.similarity < s.moved_similarity, m.at, m.at, {"similarity": m.similarity}
                )
