"""The `cluster:` section: where camera analysis runs (in this process, or on Ray analysis nodes)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

RESOURCE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


class ClusterConfig(BaseModel):
    """``engine: local`` (the default) analyses every camera in the gateway process; ``engine: ray``
    places each camera as a Ray actor on the analysis nodes of the Ray cluster at ``address``."""

    model_config = ConfigDict(extra="forbid")

    engine: Literal["local", "ray"] = Field(
        "local", description="local: cameras analysed in this process; ray: on Ray analysis nodes"
    )
    address: str | None = Field(
        None, description="Ray cluster address (HOST:PORT of the head, or 'auto'); null = 'auto'"
    )
    namespace: str = Field(
        "vigil", pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="Ray namespace of the camera and model actors"
    )
    ingest_url: str | None = Field(
        None,
        description="URL the analysis nodes send alarm events to (this control node's API, reachable from "
        "them); null = http://<server.host>:<server.port>",
    )
    token_env: str = Field(
        "VIGIL_CLUSTER_TOKEN",
        description="environment variable with the API token (scope alarms:write) nodes send events with",
    )
    camera_cpus: float = Field(0.25, gt=0, le=64, description="CPU share each camera actor asks of its node")
    camera_gpus: float = Field(0.0, ge=0, le=1, description="GPU fraction each camera actor asks of its node")
    model_gpus: float = Field(0.0, ge=0, le=1, description="GPU fraction each per-node model server asks")
    camera_slots_resource: str = Field(
        "camera_slots",
        description="custom Ray resource a node offers per camera (`vigil node start --camera-slots`)",
    )
    affinity: dict[str, str] = Field(
        default_factory=dict,
        description="camera id -> custom Ray resource its node must offer (e.g. a site or GPU label)",
    )
    spool_dir: Path | None = Field(
        None, description="folder of the event spool on each analysis node; null = <system temp>/vigil-spool"
    )
    spool_max_mb: float = Field(
        512.0, gt=0, description="disk the spool of one camera may use before its oldest events go"
    )
    standby_per_node: int = Field(
        1,
        ge=0,
        le=64,
        description="hot spare camera actors kept per node (code loaded, one camera slot held) so a dead "
        "node's cameras start at once elsewhere",
    )
    reconcile_interval_s: float = Field(2.0, gt=0, le=60, description="how often placement is checked")
    max_event_mb: float = Field(64.0, gt=0, description="largest event (picture and clip) accepted")

    @field_validator("camera_slots_resource")
    @classmethod
    def _resource(cls, value: str) -> str:
        if not RESOURCE_NAME.match(value):
            raise ValueError("a Ray resource name: a letter, then letters, digits or '_' (at most 64)")
        return value

    @field_validator("affinity")
    @classmethod
    def _affinity(cls, value: dict[str, str]) -> dict[str, str]:
        bad = sorted(r for r in value.values() if not RESOURCE_NAME.match(r))
        if bad:
            raise ValueError(f"affinity names Ray resources; not valid: {', '.join(bad)}")
        return value
