"""Where scenes find their enrolments at run time.

Analyzers never read the gateway's database: the gateway installs a source (``use_source``) that
answers, for a scene on a camera, the enrolment to match against (the camera's own enrolment where it
has one, else the site's) and the shared embedder. Tests and ``vigil eval`` install theirs the same way.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from analyzers.enrolment.descriptor import colour_descriptors
from analyzers.enrolment.embedding import Embedder
from analyzers.enrolment.matcher import Enrolled, Match


class EnrolmentSource(Protocol):
    def enrolled(self, scene: str, camera_id: str) -> Enrolled | None:
        """The enrolment ``scene`` matches against on ``camera_id``; None when nothing is enrolled."""

    def embedder(self) -> Embedder:
        """The embedder the enrolments were made with (raises EmbedderMissing when it is absent)."""


_source: EnrolmentSource | None = None
_lock = threading.Lock()


def use_source(source: EnrolmentSource | None) -> EnrolmentSource | None:
    """Install the process's enrolment source; returns the one it replaces."""
    global _source
    with _lock:
        old, _source = _source, source
    return old


def current_source() -> EnrolmentSource | None:
    return _source


def match_crops(enrolled: Enrolled, embedder: Embedder, crops: Sequence[np.ndarray]) -> list[Match]:
    """Every crop against the enrolment, embedded in batches."""
    if not crops:
        return []
    return enrolled.match_features(embedder.embed(crops), colour_descriptors(list(crops)))
