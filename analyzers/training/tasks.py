"""What each trainable task learns and from which data (dataset folders are named relative to a data
root given on the command line or in VIGIL_DATA_DIR; no machine paths live here)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from analyzers.crops import PEOPLE_FREE
from analyzers.training.data import (
    BACKGROUND,
    CropSet,
    DataError,
    cached,
    folder_images,
    yolo_crops,
    yolo_images,
    yolo_patches,
)

if TYPE_CHECKING:
    from analyzers.training.people import PeopleFinder

Mode = Literal["crop", "image", "patch", "folder"]
CropSource = Literal["gt", "detector", "both"]
CROP_SOURCES: tuple[CropSource, ...] = ("gt", "detector", "both")


@dataclass(frozen=True)
class Source:
    """One labelled split: ``path`` relative to the data root (or absolute), with its attribution."""

    path: str
    class_map: Mapping[str, str] = field(default_factory=dict)  # dataset class -> task class
    licence: str = "unknown (plant's own data)"
    attribution: str = ""


@dataclass(frozen=True)
class TaskSpec:
    name: str
    classes: tuple[str, ...]
    mode: Mode
    size: tuple[int, int]  # input width, height
    expand: float = 1.5  # crop tasks: the box grown this many times about its centre (as at run time)
    multilabel: bool = False
    background_per_image: int = 0  # crop tasks: random non-object crops as a `background` class
    train: tuple[Source, ...] = ()
    valid: tuple[Source, ...] = ()
    description: str = ""
    crop: str = "box"  # what the runtime crops: head | torso | person | frame | grid | scan | box
    # crop tasks of a person's part: samples cut around the labelled boxes (gt), from the person
    # detector's boxes exactly as the scene cuts them (detector), or both plus ``jitter`` shifted and
    # grown copies of every labelled box (both)
    crops: CropSource = "gt"
    jitter: int = 1  # with crops=both: jittered copies per labelled box

    def with_data(self, train: list[Source], valid: list[Source]) -> TaskSpec:
        return replace(self, train=tuple(train) or self.train, valid=tuple(valid) or self.valid)


CSS = "Construction Site Safety Dataset, Roboflow Universe Projects, 2023 (Roboflow Universe, v28)"
HHS = "Hard Hat Sample v1 (Roboflow, subset of Hard Hat Workers)"
FIRE = "fire-wrpgm v8, custom-thxhn, https://universe.roboflow.com/custom-thxhn/fire-wrpgm"
SMOKER = "Smoker Detection Dataset, Khan, Ali et al., Mendeley Data, V1, doi:10.17632/j45dj8bgfc.1"
HELMET_CSS = {"Hardhat": "helmet", "NO-Hardhat": "no_helmet"}
HELMET_HHS = {"helmet": "helmet", "head": "no_helmet"}
VEST = {"Safety Vest": "workwear", "NO-Safety Vest": "no_workwear"}
FIRE_MAP = {"Fire": "fire", "smoke": "smoke"}


def _src(path: str, cmap: Mapping[str, str], licence: str, who: str) -> Source:
    return Source(path, dict(cmap), licence, who)


TASKS: dict[str, TaskSpec] = {
    "helmet": TaskSpec(
        "helmet",
        ("helmet", "no_helmet"),
        "crop",
        (64, 64),
        expand=1.5,
        train=(
            _src("construction_site_safety/train", HELMET_CSS, "CC BY 4.0", CSS),
            _src("hard_hat_sample/train", HELMET_HHS, "Public Domain", HHS),
        ),
        valid=(
            _src("construction_site_safety/valid", HELMET_CSS, "CC BY 4.0", CSS),
            _src("hard_hat_sample/valid", HELMET_HHS, "Public Domain", HHS),
        ),
        description="head crop (box x1.5, letterboxed) -> helmet / no_helmet; colour: HSV rule in the scene",
        crop="head",
    ),
    "workwear": TaskSpec(
        "workwear",
        ("workwear", "no_workwear"),
        "crop",
        (96, 96),
        expand=1.2,
        train=(_src("construction_site_safety/train", VEST, "CC BY 4.0", CSS),),
        valid=(_src("construction_site_safety/valid", VEST, "CC BY 4.0", CSS),),
        description="torso crop (box x1.2, letterboxed) -> workwear (safety vest) / no_workwear",
        crop="torso",
    ),
    "fire": TaskSpec(
        "fire",
        ("fire", "smoke"),
        "image",
        (128, 128),
        multilabel=True,
        # fire_wrpgm has few fire-free frames: the construction-site photos (no class mapped, so
        # neither fire nor smoke) teach the model what an ordinary work site looks like.
        train=(
            _src("fire_wrpgm/train", FIRE_MAP, "CC BY 4.0", FIRE),
            _src("construction_site_safety/train", {}, "CC BY 4.0", CSS),
        ),
        valid=(_src("fire_wrpgm/valid", FIRE_MAP, "CC BY 4.0", FIRE),),
        description="whole frame -> fire, smoke (independent sigmoids; both low = neither)",
        crop="frame",
    ),
    # The patch alternative to `fire`: 3x3 overlapping patches of the frame, each fire / smoke.
    "fire_patch": TaskSpec(
        "fire_patch",
        ("fire", "smoke"),
        "patch",
        (64, 64),
        multilabel=True,
        train=(_src("fire_wrpgm/train", FIRE_MAP, "CC BY 4.0", FIRE),),
        valid=(_src("fire_wrpgm/valid", FIRE_MAP, "CC BY 4.0", FIRE),),
        description="3x3 overlapping frame patches -> fire, smoke (sigmoids); a frame alarms on any patch",
        crop="grid",
    ),
    "smoking": TaskSpec(
        "smoking",
        ("not_smoking", "smoking"),
        "folder",
        (128, 128),
        train=(_src("smoker_mendeley/train", {}, "CC BY 4.0", SMOKER),),
        valid=(_src("smoker_mendeley/valid", {}, "CC BY 4.0", SMOKER),),
        description="upper-body crop -> not_smoking / smoking (the scene adds the hand-to-mouth cue)",
        crop="person",
    ),
    "extinguisher": TaskSpec(
        "extinguisher",
        ("extinguisher", BACKGROUND),
        "crop",
        (64, 64),
        expand=1.3,
        # Many background crops: at run time the model sees hundreds of windows a frame, nearly all
        # of them background, so its false-positive rate per window must be tiny.
        background_per_image=8,
        description="region crop -> extinguisher / background, trained on the plant's own labelled photos; "
        "run on sliding windows of the frame",
        crop="scan",
    ),
}


def resolve(path: str, data_root: Path | None) -> Path:
    p = Path(path)
    if p.is_absolute() or data_root is None:
        return p
    return data_root / p


def build_set(
    spec: TaskSpec,
    sources: tuple[Source, ...],
    data_root: Path | None,
    cache_dir: Path | None,
    seed: int = 0,
    people: PeopleFinder | None = None,
) -> CropSet:
    """The task's samples from every source (cached per source folder and cutting parameters).
    ``people`` finds the persons of a photo for ``crops`` detector/both (analyzers.training.people)."""
    if not sources:
        raise DataError(f"task {spec.name}: no data; pass --data (a YOLO split or a folder per class)")
    from_people = spec.mode == "crop" and spec.crops != "gt"
    if from_people and (spec.crop in PEOPLE_FREE or spec.crop == "box"):
        raise DataError(
            f"task {spec.name}: --crops {spec.crops} needs a part of a person (its crop is {spec.crop})"
        )
    if from_people and people is None:
        raise DataError(f"task {spec.name}: --crops {spec.crops} needs the person detector (yolox_nano)")
    parts = []
    for src in sources:
        root = resolve(src.path, data_root)
        if not root.is_dir():
            raise DataError(f"{root}: data folder not found (task {spec.name})")
        cmap = dict(src.class_map)
        params = {
            "mode": spec.mode,
            "classes": spec.classes,
            "size": spec.size,
            "map": cmap,
            "expand": spec.expand,
            "bg": spec.background_per_image,
            "seed": seed,
        }
        build: Callable[[], tuple[CropSet, list[str]]]
        if spec.mode == "crop":
            crop_map = cmap or {c: c for c in spec.classes if c != BACKGROUND}
            if spec.crops == "both":
                params["jitter"] = spec.jitter
            build = partial(
                yolo_crops,
                root,
                crop_map,
                spec.classes,
                spec.size,
                spec.expand,
                background_per_image=spec.background_per_image,
                seed=seed,
                jitter=spec.jitter if spec.crops == "both" else 0,
            )
        elif spec.mode == "image":
            build = partial(yolo_images, root, cmap, spec.classes, spec.size)
        elif spec.mode == "patch":
            build = partial(yolo_patches, root, cmap, spec.classes, spec.size)
        else:
            build = partial(folder_images, root, spec.classes, spec.size)
        if spec.crops != "detector" or spec.mode != "crop":
            parts.append(cached(cache_dir, root, params, build))
        if from_people:
            from analyzers.training.people import person_part_crops

            assert people is not None
            crop_map = cmap or {c: c for c in spec.classes if c != BACKGROUND}
            people_params = {**params, "from": "people", "part": spec.crop, "detector": people.key}
            people_params.pop("jitter", None)
            people_build = partial(
                person_part_crops, root, crop_map, spec.classes, spec.size, spec.crop, people
            )
            parts.append(cached(cache_dir, root, people_params, people_build))
    result = CropSet.concat(parts)
    if len(result) == 0:
        raise DataError(f"task {spec.name}: the data holds no samples of {', '.join(spec.classes)}")
    return result


def attribution(spec: TaskSpec) -> tuple[str, str]:
    """(licence, source) lines for the model card, from every training source."""
    return sources_attribution(spec.train)


def sources_attribution(sources: Sequence[Source]) -> tuple[str, str]:
    """(licence, source) lines for a model card trained on ``sources``."""
    seen: dict[str, str] = {}
    for src in sources:
        seen.setdefault(src.attribution or src.path, src.licence)
    licences = sorted(set(seen.values()))
    source = "; ".join(f"{who} ({lic})" for who, lic in seen.items())
    return " AND ".join(licences) or "unknown", f"trained by vigil on: {source}"
