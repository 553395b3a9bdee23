"""An enrolment version's files in the content-addressed store: the example crops (JPEG) and one
.npz of their features (embeddings, colour descriptors), each stored once by its SHA-256."""

from __future__ import annotations

import io
from collections.abc import Sequence

import cv2
import numpy as np

from analyzers.enrolment import Examples
from gateway.db.files import ContentStore

CROP_SIDE = 160  # stored example crops are at most this many pixels on the longer side


class EnrolmentFiles(ContentStore):
    folder = "enrolments"

    def put_features(self, embeddings: np.ndarray, colours: np.ndarray, embedder: str) -> tuple[str, str]:
        """(sha256, relative path) of the features file."""
        buf = io.BytesIO()
        np.savez_compressed(
            buf,
            embeddings=embeddings.astype(np.float32),
            colours=colours.astype(np.float32),
            embedder=np.array(embedder),
        )
        digest, rel, _ = self.put(buf.getvalue(), "npz")
        return digest, rel

    def read_examples(self, rel: str, name: str, negative: bool) -> Examples:
        with np.load(self.path(rel), allow_pickle=False) as data:
            emb, col = data["embeddings"], data["colours"]
        return Examples(emb, col, (name,) * len(emb), np.full(len(emb), negative, bool))

    def put_crops(self, crops: Sequence[np.ndarray]) -> list[str]:
        out = []
        for crop in crops:
            h, w = crop.shape[:2]
            scale = min(1.0, CROP_SIDE / max(h, w, 1))
            small = cv2.resize(crop, (max(1, int(w * scale)), max(1, int(h * scale)))) if scale < 1 else crop
            ok, data = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 90])
            if ok:
                out.append(self.put(data.tobytes(), "jpg")[1])
        return out
