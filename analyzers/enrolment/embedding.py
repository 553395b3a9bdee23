"""Crops -> EfficientNet-Lite0 ImageNet embeddings (1280 numbers each), batched, L2-normalised.

The model is the pack's ``efficientnet_lite0/efficientnet_lite0_embedding.onnx`` (Apache-2.0): input
``image`` float32 [N, 3, 224, 224] RGB, (pixel - 127) / 128, a plain resize of the crop; output
``embedding`` [N, 1280], the global average of the last feature map. It opens through the project's
runtime session (``analyzers.runtime.open_session``: onnxruntime or OpenVINO, GPU where there is one).
One embedder per file is shared by every scene of the process (``shared_embedder``).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from analyzers.runtime.session import open_session

EMBEDDER_FOLDER = "efficientnet_lite0"
EMBEDDER_FILE = "efficientnet_lite0_embedding.onnx"
MODELS_ENV = "VIGIL_MODELS_DIR"
SIDE = 224
BATCH = 32  # crops per inference; more only costs memory on a CPU
DIMENSION = 1280


class EmbedderMissing(FileNotFoundError):
    """The embedding model is not where the enrolment looks for it; the message says where to put it."""


def embedder_path(*folders: Path | None) -> Path:
    """The embedding model's file in the first of ``folders`` (a model pack) that has it, else in
    ``$VIGIL_MODELS_DIR``."""
    env = os.environ.get(MODELS_ENV)
    tried = []
    for folder in (*folders, Path(env) if env else None):
        if folder is None:
            continue
        path = Path(folder) / EMBEDDER_FOLDER / EMBEDDER_FILE
        if path.is_file():
            return path
        tried.append(str(path))
    raise EmbedderMissing(
        "the enrolment's embedding model is missing (looked for "
        + (", ".join(tried) or f"{EMBEDDER_FOLDER}/{EMBEDDER_FILE}")
        + f"); put the model pack's {EMBEDDER_FOLDER}/ folder in the config's models.pack_dir or "
        f"${MODELS_ENV}"
    )


def prepare(crop: np.ndarray) -> np.ndarray:
    """One BGR uint8 crop -> the model's [3, 224, 224] input (an empty crop becomes grey)."""
    if crop.size == 0 or crop.ndim != 3:
        return np.zeros((3, SIDE, SIDE), np.float32)
    rgb = cv2.cvtColor(cv2.resize(crop, (SIDE, SIDE), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    return ((rgb.astype(np.float32) - 127.0) / 128.0).transpose(2, 0, 1)


class Embedder:
    """EfficientNet-Lite0 embeddings of crops, ``batch`` crops per inference."""

    def __init__(self, path: Path, threads: int = 0, batch: int = BATCH) -> None:
        self.path = Path(path)
        self.batch = max(1, batch)
        self.session = open_session(self.path, threads)
        self.input = self.session.get_inputs()[0].name
        self.sha256 = hashlib.sha256(self.path.read_bytes()).hexdigest()
        self._lock = threading.Lock()

    @property
    def provider(self) -> str:
        return str(self.session.get_providers()[0])

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """[len(crops), 1280] float32, each row of length 1 (an empty crop gives zeros)."""
        out = np.zeros((len(crops), DIMENSION), np.float32)
        for start in range(0, len(crops), self.batch):
            chunk = crops[start : start + self.batch]
            feed = np.stack([prepare(c) for c in chunk])
            with self._lock:  # one session, callers on several camera threads
                raw = np.asarray(self.session.run(None, {self.input: feed})[0], np.float32)
            out[start : start + len(chunk)] = raw.reshape(len(chunk), -1)[:, :DIMENSION]
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        empty = np.array([c.size == 0 for c in crops], bool)
        out = out / np.maximum(norms, 1e-9)
        out[empty] = 0.0
        return out


_shared: dict[Path, Embedder] = {}
_shared_lock = threading.Lock()


def shared_embedder(path: Path) -> Embedder:
    """The process's one embedder for ``path`` (loaded on first use; one thread per session, as the
    gateway runs its models)."""
    key = Path(path).resolve()
    with _shared_lock:
        if key not in _shared:
            _shared[key] = Embedder(key, threads=1)
        return _shared[key]
