"""Content-addressed evidence files under the storage root: evidence/ab/cd/<sha256>.<ext>."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


class EvidenceStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "evidence").mkdir(parents=True, exist_ok=True)

    def put(self, data: bytes, ext: str) -> tuple[str, str]:
        """Write bytes atomically (temp file + rename); returns (sha256, path relative to the root).

        The same content is stored once. A crash leaves either nothing or the whole file.
        """
        digest = hashlib.sha256(data).hexdigest()
        rel = Path("evidence") / digest[:2] / digest[2:4] / f"{digest}.{ext}"
        target = self.root / rel
        if not target.exists():
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
        return digest, rel.as_posix()

    def path(self, rel: str) -> Path:
        """Resolve a stored relative path, refusing anything outside the root."""
        full = (self.root / rel).resolve()
        if self.root.resolve() not in full.parents:
            raise ValueError("path outside the storage root")
        return full

    def usage_bytes(self) -> int:
        return sum(p.stat().st_size for p in (self.root / "evidence").rglob("*") if p.is_file())
