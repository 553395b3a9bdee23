"""A model is a directory holding an ONNX file and a model card (``model.yaml``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

Family = Literal["yolox", "yolov8", "rtdetr", "classifier", "movenet", "blazepose"]


class ModelCardError(ValueError):
    """The model directory or its card is unusable; the message says what to fix."""


class InputSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="ONNX input tensor name")
    size: tuple[int, int] = Field(description="input width, height in pixels")
    layout: Literal["NCHW", "NHWC"] = "NCHW"
    colour: Literal["BGR", "RGB"] = "BGR"
    dtype: Literal["float32", "int32", "uint8"] = "float32"
    scale: float = Field(1.0, description="pixel values are multiplied by this (1/255 for 0..1 inputs)")
    letterbox: Literal["top_left", "centre", "none"] = "top_left"
    pad_value: int = 114
    mean: tuple[float, float, float] | None = Field(
        None, description="per-channel mean subtracted after `scale`, in the card's colour order"
    )
    std: tuple[float, float, float] | None = Field(None, description="per-channel divisor after `mean`")


class ModelCard(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="stable model name, for example yolox_nano")
    version: str = Field(description="version string of these weights")
    family: Family
    file: str = Field(description="ONNX file name inside the model directory")
    sha256: str | None = Field(None, description="expected SHA-256 of the ONNX file (checked on import)")
    description: str = ""
    licence: str
    source: str
    input: InputSpec
    classes: list[str] = Field(default_factory=list)
    classes_file: str | None = Field(
        None, description="text file with one class name a line (read on import)"
    )
    activation: Literal["softmax", "sigmoid", "none"] | None = Field(
        None, description="how class scores become probabilities; null = the family's default"
    )
    crop: Literal["head", "torso", "person", "box", "frame", "grid", "scan"] | None = Field(
        None,
        description="classifier cards: the part the runtime cuts for the model (head/torso/person of "
        "each detected person; frame, grid or scan windows of the frame); null = the scene's own",
    )
    strides: list[int] = Field(default_factory=lambda: [8, 16, 32], description="YOLOX grid strides")
    dynamic_size: bool = Field(
        False,
        description="the network takes any input size that is a multiple of the largest stride "
        "(a camera may run it at an aspect-matched size such as 640x352); `input.size` is the default",
    )
    thresholds: dict[str, float] = Field(
        default_factory=dict,
        description="per-class detection thresholds chosen at training on a hold-out carved from the "
        "training data (never on a test split); a scene without its own threshold uses these",
    )


def read_card(card_path: Path, model_dir: Path) -> ModelCard:
    """Read a card for the model files in ``model_dir``; ``classes_file`` fills an empty class list."""
    try:
        card = ModelCard.model_validate(yaml.safe_load(card_path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ModelCardError(f"{card_path}: invalid model card: {exc}") from exc
    if card.classes_file and not card.classes:
        classes = model_dir / card.classes_file
        if not classes.is_file():
            raise ModelCardError(
                f"{model_dir}: the card names classes file {card.classes_file}, which is missing"
            )
        card.classes = [c.strip() for c in classes.read_text(encoding="utf-8").splitlines() if c.strip()]
    if not (model_dir / card.file).is_file():
        raise ModelCardError(f"{model_dir}: the card names {card.file!r}, which is not there")
    return card


def load_card(model_dir: Path) -> ModelCard:
    """Read and validate ``model.yaml`` in a model directory."""
    card_path = model_dir / "model.yaml"
    if not card_path.is_file():
        raise ModelCardError(f"{model_dir}: no model.yaml model card; a model directory needs one")
    return read_card(card_path, model_dir)
