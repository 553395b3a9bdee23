"""What an analysis node needs to run one camera, worked out on the control node (which has the
database): the camera's configuration, its scene ids, the model versions its scenes read (and their
files), pinned versions, which scenes keep clips, and where events go.

The models are resolved exactly as a local camera resolves them (``Analytics.scene_runs``), only
without loading them: ``PlanningAnalytics`` records what each reference resolves to instead.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from gateway.alarms.recorder import AlarmRecorder
from gateway.cameras.analytics import Analytics, InputSize, ModelHandle
from gateway.config.schema import CameraConfig
from gateway.db import Database

MAX_MODEL_BYTES = 2 * 1024**3  # a model folder larger than this is not shipped to the nodes


@dataclass
class CameraSpec:
    """Everything a camera actor is built from; ``digest`` changes when what it analyses changes."""

    camera_id: str
    camera_json: str
    scene_ids: dict[str, int]
    refs: dict[str, str]  # model reference -> version id
    pins: dict[int, str]  # camera-scene id -> pinned model reference
    clip_scenes: list[str]
    clip_pre_s: float
    clip_post_s: float
    clips: bool
    affinity: str | None  # a custom Ray resource the node must offer
    open_keys: list[str] = field(default_factory=list)  # filled in at each placement
    bundles: dict[str, Any] = field(default_factory=dict)  # version id -> Ray object of its files
    ingest_url: str = ""
    token: str = field(default="", repr=False)
    namespace: str = "vigil"
    spool_dir: str | None = None
    spool_max_bytes: int = 512 * 1024**2
    model_gpus: float = 0.0

    @property
    def digest(self) -> str:
        what = [
            self.camera_json,
            sorted(self.scene_ids.items()),
            sorted(self.refs.items()),
            sorted(self.pins.items()),
            sorted(self.clip_scenes),
            self.clip_pre_s,
            self.clip_post_s,
            self.clips,
            self.affinity,
        ]
        return hashlib.sha256(json.dumps(what, default=str).encode()).hexdigest()[:16]


class _NotLoaded:
    """The worker of a model resolved for planning: never asked to infer."""

    def submit(self, item: Any) -> Any:
        raise RuntimeError("a planned model is not loaded on the control node")

    def close(self) -> None:
        return None


class PlanningAnalytics(Analytics):
    """Resolves a camera's models (database, pinned versions) without loading any of them."""

    def __init__(self, db: Database, storage_root: Path) -> None:
        super().__init__(db, storage_root, cast(AlarmRecorder, None), None)
        self.refs: dict[str, str] = {}
        self.dirs: dict[str, Path] = {}  # version id -> its folder in the storage root
        self.pins: dict[int, str] = {}

    def _resolve(self, ref: str) -> tuple[Path, Any, str]:
        path, card, version_id = super()._resolve(ref)
        self.refs[ref] = version_id
        self.dirs[version_id] = path
        return path, card, version_id

    def _pinned(self, camera_scene_id: int | None) -> str | None:
        pinned = super()._pinned(camera_scene_id)
        if camera_scene_id is not None and pinned:
            self.pins[camera_scene_id] = pinned
        return pinned

    def _load(
        self,
        name: str,
        key: str,
        kind: str,
        path: Path,
        card: Any,
        version_id: str,
        size: InputSize,
        label: str,
    ) -> ModelHandle:
        if kind != "pose" and card.family == "classifier":
            kind = "classifier"
        return ModelHandle(
            name,
            version_id,
            "planned",
            kind,
            frozenset(card.classes),
            cast(Any, _NotLoaded()),
            card.crop,
            label if kind == "detector" else None,
            key,
            dict(card.thresholds),
        )


def plan_camera(
    db: Database,
    storage_root: Path,
    camera: CameraConfig,
    scene_ids: dict[str, int],
    recorder: AlarmRecorder,
    clip_settings: tuple[bool, float, float],
    affinity: str | None,
) -> tuple[CameraSpec, dict[str, Path]]:
    """The camera's spec and the folders of the model versions it reads (version id -> folder).
    Sample capture (``capture_interval_s``) writes to the control node's library: not on a node."""
    planner = PlanningAnalytics(db, storage_root)
    planner.scene_runs(camera, scene_ids, set())
    remote = camera.model_copy(update={"capture_interval_s": None})
    clips, pre_s, post_s = clip_settings
    spec = CameraSpec(
        camera_id=camera.id,
        camera_json=remote.model_dump_json(),
        scene_ids=dict(scene_ids),
        refs=dict(planner.refs),
        pins=dict(planner.pins),
        clip_scenes=sorted({s.scene for s in camera.scenes if recorder.wants_clip(s.scene)}),
        clip_pre_s=pre_s,
        clip_post_s=post_s,
        clips=clips,
        affinity=affinity,
    )
    return spec, dict(planner.dirs)


def model_files(folder: Path) -> dict[str, bytes]:
    """A model version's folder as {relative path: bytes}, to ship to the analysis nodes."""
    files: dict[str, bytes] = {}
    total = 0
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            total += path.stat().st_size
            if total > MAX_MODEL_BYTES:
                raise ValueError(f"model folder {folder} is larger than {MAX_MODEL_BYTES} bytes")
            files[path.relative_to(folder).as_posix()] = path.read_bytes()
    return files
