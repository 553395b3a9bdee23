"""The gateway's enrolment source for running scenes (analyzers.enrolment.use_source): the set of a
scene on a camera read from the database and the content-addressed store, kept in memory and looked
at again every ``REFRESH_S`` seconds, so an enrolment made in the console or the CLI reaches the running
cameras without a restart."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from analyzers.enrolment import Embedder, Enrolled, EnrolmentError, embedder_path, shared_embedder
from gateway.db import Database
from gateway.enrolment.versions import load_set, members

log = logging.getLogger(__name__)
REFRESH_S = 30.0


class DatabaseEnrolments:
    """What the running scenes match against (an ``analyzers.enrolment.EnrolmentSource``)."""

    def __init__(
        self, db: Database, storage_root: Path, pack_dir: Path | None = None, refresh_s: float = REFRESH_S
    ) -> None:
        self.db = db
        self.refresh_s = refresh_s
        self.storage_root = storage_root
        self.pack_dir = pack_dir
        self._lock = threading.Lock()
        self._sets: dict[tuple[str, str | None], tuple[float, str, Enrolled | None]] = {}

    def embedder(self) -> Embedder:
        return shared_embedder(embedder_path(self.pack_dir))

    def enrolled(self, scene: str, camera_id: str | None) -> Enrolled | None:
        key = (scene, camera_id)
        now = time.monotonic()
        with self._lock:
            cached = self._sets.get(key)
            if cached is not None and now - cached[0] < self.refresh_s:
                return cached[2]
        try:
            with self.db.session() as s:
                ids = ",".join(sorted(r.id for r in members(s, scene, camera_id)))
            if cached is not None and cached[1] == ids:
                found = cached[2]
            else:
                found = load_set(self.db, self.storage_root, scene, camera_id) if ids else None
        except (SQLAlchemyError, OSError, EnrolmentError, ValueError, KeyError) as exc:
            log.warning("enrolment of %s on %s cannot be read: %s", scene, camera_id, exc)
            found = cached[2] if cached is not None else None
            ids = cached[1] if cached is not None else ""
        with self._lock:
            self._sets[key] = (now, ids, found)
        return found
