"""Enrolment: a plant's own appearance classes (work-clothes types, extinguisher types, role markers)
learnt from a few example crops, matched by embedding and colour (see matcher.py)."""

from __future__ import annotations

from analyzers.enrolment.descriptor import colour_descriptor, colour_descriptors
from analyzers.enrolment.embedding import Embedder, EmbedderMissing, embedder_path, shared_embedder
from analyzers.enrolment.matcher import (
    MIN_EXAMPLES,
    Calibration,
    Enrolled,
    EnrolmentError,
    Examples,
    Match,
    calibrate,
)
from analyzers.enrolment.source import EnrolmentSource, current_source, match_crops, use_source

__all__ = [
    "MIN_EXAMPLES",
    "Calibration",
    "Embedder",
    "EmbedderMissing",
    "Enrolled",
    "EnrolmentError",
    "EnrolmentSource",
    "Examples",
    "Match",
    "calibrate",
    "colour_descriptor",
    "colour_descriptors",
    "current_source",
    "embedder_path",
    "match_crops",
    "shared_embedder",
    "use_source",
]
