"""Where a scene that scans the frame (extinguishers) looks: windows of the heights and shape of the
enrolled examples' boxes (shape proposals), the same at enrolment (background windows) and at run time."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DEFAULT_SIDES = (0.12, 0.2, 0.3)  # window heights as fractions of the frame height
DEFAULT_ASPECT = 0.5  # width / height: an upright object


def window_shape(
    shapes: Sequence[tuple[float, float]], sides: Sequence[float] | None = None
) -> tuple[list[float], float]:
    """(window heights as fractions of the frame's, width / height) for examples whose boxes had
    ``shapes`` (height / picture height, width / height): ``sides`` where given, else the 10th, 50th
    and 90th percentile of the examples' heights, else the defaults; the median aspect."""
    aspect = float(np.median([a for _, a in shapes])) if shapes else DEFAULT_ASPECT
    aspect = min(max(aspect, 0.2), 2.0)
    if sides:
        return list(sides), aspect
    if not shapes:
        return list(DEFAULT_SIDES), aspect
    heights = np.clip([h for h, _ in shapes], 0.04, 1.0)
    return sorted({round(float(np.quantile(heights, q)), 2) for q in (0.1, 0.5, 0.9)}), aspect
