"""The frame record adapters produce and analyzers consume."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Frame:
    camera_id: str
    ts: float  # wall-clock seconds since the epoch when the frame was taken
    image: np.ndarray  # HxWx3 BGR uint8
    pts: float  # stream time in seconds
    keyframe: bool


@dataclass
class StreamHealth:
    """What the API and /metrics show about a camera's stream."""

    state: str = "starting"  # starting | online | offline | error | stopped
    codec: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None  # frames decoded per second, measured
    last_frame_at: float | None = None
    last_error: str | None = None
    reconnects: int = 0
    frames: int = 0
    gop_s: float | None = None  # keyframe interval measured from the stream's timestamps
    decode_mode: str | None = None  # what the source decodes now: "all" or "keyframes"
    stalls: int = 0  # sessions given up because no frame arrived for stall_timeout_s
