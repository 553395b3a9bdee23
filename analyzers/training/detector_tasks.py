"""The project's own detectors: what each is trained on (no torch needed to read this).

Each task names the detector's classes, its training and valid YOLO splits with their class maps and
attributions, and which classes a source lacks and gets from the pack's COCO model (``fill``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from analyzers.training.tasks import CSS, HHS, Source

CIGARETTE = "cigarettev6, rokok-jw5ic, https://universe.roboflow.com/rokok-jw5ic/cigarettev6"
PHONE = "cellphone, lolli, https://universe.roboflow.com/lolli/cellphone-q8trb"
PPE_CSS = {"Person": "person", "NO-Hardhat": "head", "Hardhat": "helmet", "Safety Vest": "vest"}
PPE_HHS = {"head": "head", "helmet": "helmet"}


@dataclass(frozen=True)
class DetectorTask:
    name: str
    classes: tuple[str, ...]
    train: tuple[Source, ...] = ()
    valid: tuple[Source, ...] = ()
    # per source path: detector classes the source does not label, filled from the COCO model
    fill: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    size: int = 416  # square training input; the exported ONNX takes any multiple of 32
    description: str = ""

    def with_data(self, train: list[Source], valid: list[Source]) -> DetectorTask:
        return replace(self, train=tuple(train) or self.train, valid=tuple(valid) or self.valid)


def _src(path: str, cmap: Mapping[str, str], licence: str, who: str) -> Source:
    return Source(path, dict(cmap), licence, who)


DETECTOR_TASKS: dict[str, DetectorTask] = {
    "ppe": DetectorTask(
        "ppe",
        ("person", "head", "helmet", "vest"),
        train=(
            _src("construction_site_safety/train", PPE_CSS, "CC BY 4.0", CSS),
            _src("hard_hat_sample/train", PPE_HHS, "Public Domain", HHS),
        ),
        valid=(
            _src("construction_site_safety/valid", PPE_CSS, "CC BY 4.0", CSS),
            _src("hard_hat_sample/valid", PPE_HHS, "Public Domain", HHS),
        ),
        # the hard-hat photos label heads, almost never the people under them
        fill={"hard_hat_sample/train": ("person",), "hard_hat_sample/valid": ("person",)},
        description="YOLOX-Nano fine-tuned from COCO: person, head (bare head), helmet (helmeted head), "
        "vest (safety vest on the torso)",
    ),
    "cigarette": DetectorTask(
        "cigarette",
        ("cigarette",),
        train=(_src("cigarette_rokok/train", {"cigarette": "cigarette"}, "CC BY 4.0", CIGARETTE),),
        valid=(_src("cigarette_rokok/valid", {"cigarette": "cigarette"}, "CC BY 4.0", CIGARETTE),),
        description="YOLOX-Nano fine-tuned from COCO: cigarette (held, in the mouth, on the ground)",
    ),
    "phone": DetectorTask(
        "phone",
        ("phone",),
        train=(_src("cellphone/train", {"phone": "phone"}, "CC BY 4.0", PHONE),),
        valid=(_src("cellphone/valid", {"phone": "phone"}, "CC BY 4.0", PHONE),),
        description="YOLOX-Nano fine-tuned from COCO (its cell phone class seeds phone): mobile phones, "
        "mostly in hands",
    ),
}
