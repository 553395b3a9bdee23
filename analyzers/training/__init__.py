"""Training the project's own classifiers (helmet, workwear, flame/smoke, smoking, extinguisher).

Data preparation, augmentation and evaluation need only numpy/OpenCV/onnxruntime; the training loop
and ONNX export import torch lazily (``pip install 'vigil[train]'``), so the product runs without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from analyzers.training.augment import AugmentConfig, augment, augment_batch, transform_boxes
from analyzers.training.data import CropSet, DataError, folder_images, yolo_crops, yolo_images
from analyzers.training.evaluate import evaluate_model, format_metrics, metrics
from analyzers.training.tasks import TASKS, Source, TaskSpec, build_set

if TYPE_CHECKING:
    from analyzers.training.train import TrainResult

__all__ = [
    "TASKS",
    "AugmentConfig",
    "CropSet",
    "DataError",
    "Source",
    "TaskSpec",
    "augment",
    "augment_batch",
    "build_set",
    "evaluate_model",
    "folder_images",
    "format_metrics",
    "metrics",
    "train_classifier",
    "transform_boxes",
    "yolo_crops",
    "yolo_images",
]


def train_classifier(*args: Any, **kwargs: Any) -> TrainResult:
    """See ``analyzers.training.train.train_classifier`` (imports torch on first use)."""
    from analyzers.training.train import train_classifier as run

    return run(*args, **kwargs)
