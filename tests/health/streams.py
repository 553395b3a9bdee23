"""Test videos for the video diagnosis: the first seconds of vtest.avi altered frame by frame (black,
frozen, blurred, turned away) and written as H.264 with PyAV (FFmpeg), for the sample RTSP server."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

FPS = 10


def vtest_frames(vtest: Path, seconds: float) -> list[np.ndarray]:
    out = []
    with av.open(str(vtest)) as container:
        for frame in container.decode(video=0):
            out.append(frame.to_ndarray(format="bgr24"))
            if len(out) >= seconds * FPS:
                break
    return out


def write_video(path: Path, frames: list[np.ndarray]) -> Path:
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, FPS)
        stream.options = {"preset": "ultrafast"}
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def black(frames: list[np.ndarray]) -> list[np.ndarray]:
    return [np.full_like(f, 3) for f in frames]


def frozen(frames: list[np.ndarray]) -> list[np.ndarray]:
    return [frames[0]] * len(frames)


def blurred(frames: list[np.ndarray]) -> list[np.ndarray]:
    return [cv2.GaussianBlur(f, (0, 0), 3) for f in frames]


def turned(frames: list[np.ndarray]) -> list[np.ndarray]:
    """The camera turned to another part of the scene (the left half, lower three quarters, zoomed)."""
    h, w = frames[0].shape[:2]
    return [cv2.resize(f[h // 4 :, : w // 2], (w, h)) for f in frames]


VARIANTS: dict[str, Callable[[list[np.ndarray]], list[np.ndarray]]] = {
    "black": black,
    "frozen": frozen,
    "blurred": blurred,
    "turned": turned,
}
