"""What every stream source measures while it decodes: frames per second, the keyframe interval,
and the decode mode "auto" picks from them. Shared by the RTSP and the GB/T 28181 sources."""

from __future__ import annotations

import time

FPS_WINDOW_S = 2.0
MAX_GOP_S = 60.0  # a longer gap between keyframes is a pause or a reset, not a GOP


def auto_mode(sample_fps: float, gop_s: float) -> str:
    """Keyframes only when every sample can be a keyframe: at most 1 sample/s and a GOP no longer
    than one and a half sampling periods; otherwise every frame is decoded."""
    short = 0 < sample_fps <= 1 and gop_s <= 1.5 / sample_fps
    return "keyframes" if short else "all"


class GopMeter:
    """The interval between consecutive keyframes, from their timestamps (seconds)."""

    def __init__(self) -> None:
        self.last: float | None = None

    def keyframe(self, pts: float) -> float | None:
        """Note a keyframe; returns the GOP it closes, or None when there is no plausible one."""
        gop = None
        if self.last is not None and 0 < pts - self.last < MAX_GOP_S:
            gop = round(pts - self.last, 3)
        self.last = pts
        return gop


class FpsMeter:
    """Frames decoded per second, measured over windows of FPS_WINDOW_S."""

    def __init__(self) -> None:
        self.start, self.frames = time.monotonic(), 0

    def tick(self) -> float | None:
        """Count one frame; returns the rate when a window closes."""
        self.frames += 1
        elapsed = time.monotonic() - self.start
        if elapsed < FPS_WINDOW_S:
            return None
        fps = round(self.frames / elapsed, 2)
        self.start, self.frames = time.monotonic(), 0
        return fps
