"""onnxruntime sessions with execution providers chosen TensorRT -> CUDA -> CPU."""

from __future__ import annotations

import logging
from pathlib import Path

import onnxruntime as ort

log = logging.getLogger(__name__)

PREFERENCE = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


def choose_providers(available: list[str] | None = None) -> list[str]:
    """The usable providers in order of preference; CPU is always last and always there."""
    have = set(ort.get_available_providers() if available is None else available)
    chosen = [p for p in PREFERENCE if p in have]
    return chosen or ["CPUExecutionProvider"]


def open_session(path: Path, threads: int = 0) -> ort.InferenceSession:
    """Open a session; ``threads`` = 0 lets onnxruntime use every core."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), sess_options=options, providers=choose_providers())
    log.info("model %s runs on %s", path.name, session.get_providers()[0])
    return session
