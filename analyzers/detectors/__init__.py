"""Object detectors: pre-processing, decoding and NMS per model family."""

from analyzers.detectors.yolox import YoloxDetector

__all__ = ["YoloxDetector"]
