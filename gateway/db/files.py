"""Content-addressed files under the storage root: <folder>/ab/cd/<sha256>.<ext>.

Evidence (alarm pictures and clips) and samples (the training library) share the mechanism: the same
bytes are stored once, and a write is atomic (temp file in the target folder, fsync, rename), so a
crash leaves either nothing or the whole file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


class ContentStore:
    folder: str

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / self.folder).mkdir(parents=True, exist_ok=True)

    def put(self, data: bytes, ext: str) -> tuple[str, str, bool]:
        """Store bytes; returns (sha256, path relative to the storage root, whether this call wrote it)."""
        digest = hashlib.sha256(data).hexdigest()
        rel = Path(self.folder) / digest[:2] / digest[2:4] / f"{digest}.{ext}"
        target = self.root / rel
        if target.exists():
            return digest, rel.as_posix(), False
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest, rel.as_posix(), True

    def path(self, rel: str) -> Path:
        """Resolve a stored relative path, refusing anything outside this store's folder."""
        full = (self.root / rel).resolve()
        if (self.root / self.folder).resolve() not in full.parents:
            raise ValueError(f"path outside the {self.folder} store")
        return full

    def remove(self, rel: str) -> None:
        self.path(rel).unlink(missing_ok=True)


class EvidenceStore(ContentStore):
    folder = "evidence"

    def usage_bytes(self) -> int:
        return sum(p.stat().st_size for p in (self.root / self.folder).rglob("*") if p.is_file())


class SampleStore(ContentStore):
    folder = "samples"
