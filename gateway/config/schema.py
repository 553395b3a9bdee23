"""The gateway's typed configuration: the single source of truth, loaded from YAML + environment.

Environment overrides use ``VIGIL_<SECTION>__<FIELD>`` (double underscore between levels), for
example ``VIGIL_DATABASE__URL=postgresql+psycopg://vigil@db/vigil``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from analyzers.enhance import EnhanceSettings
from analyzers.health import DiagnosisSettings
from analyzers.scenes import SceneConfig, SceneError, scene_class
from gateway.config.alarm_policy import AlarmPolicy
from gateway.config.cluster import ClusterConfig
from gateway.config.plant import PlantConfig, PtzConfig
from gateway.config.stream_url import encode_userinfo, stream_url_problem, url_message
from gateway.config.yaml_text import yaml_error_text
from uplink.targets import KINDS, TargetKind

ENV_PREFIX = "VIGIL_"
CONFIG_ENV = "VIGIL_CONFIG"
DEFAULT_CONFIG = Path("config/demo.yaml")

Role = Literal["admin", "operator", "viewer"]
# people: robots, e-mail and SMS that reach the camera's recipients
# (uplink/targets/{wecom,dingtalk,email,sms}.py)
Tier = Literal["park", "county", "city", "province", "enterprise", "big_screen", "people"]


STORED = {"stored": True}  # validation context of configuration read back from the database


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SiteConfig(Strict):
    name: str = Field("vigil demo plant", description="plant name shown in the console")
    site_code: str = Field("000000000000", description="site code issued by the park/regulator")
    enterprise_code: str = Field(
        "000000000000000000", description="unified social credit code (统一社会信用代码) of the enterprise"
    )
    timezone: str = Field("Asia/Shanghai", description="IANA time zone for schedules and reports")
    language: Literal["zh", "en"] = Field(
        "zh", description="language of server text when the user's is not known: captions, messages"
    )


class DatabaseConfig(Strict):
    url: str = Field(
        "sqlite:///vigil.db",
        description="SQLAlchemy URL: sqlite:///PATH (embedded, WAL; relative to the config file) or postgresql+psycopg://USER@HOST/DB",
    )
    echo: bool = Field(False, description="log every SQL statement (debugging only)")

    @field_validator("url")
    @classmethod
    def _supported(cls, url: str) -> str:
        if not re.match(r"^(sqlite|postgresql(\+psycopg)?)://", url):
            raise ValueError("use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB")
        return url


class StorageConfig(Strict):
    root: Path = Field(
        Path("storage"), description="evidence, samples and imported models (relative to the config file)"
    )
    evidence_retention_days: int = Field(
        183, ge=183, description="alarm evidence is kept at least this long (regulation: 6 months)"
    )
    quota_gb: float | None = Field(None, gt=0, description="disk quota for evidence; null = no quota")
    quota_alarm_percent: float = Field(
        90.0, gt=0, le=100, description="raise the storage alarm and stop keeping clips above this share"
    )
    clip_pre_s: float = Field(5.0, ge=0, le=60, description="seconds of video kept before an alarm")
    clip_post_s: float = Field(5.0, ge=0, le=60, description="seconds of video kept after an alarm")
    sweep_interval_s: float = Field(3600.0, gt=0, description="how often expired evidence is removed")
    secret_key_file: Path | None = Field(
        None,
        description="key that seals camera/ONVIF credentials in the database (null = <root>/secret.key, "
        "created on first use); VIGIL_SECRET_KEY or VIGIL_SECRET_KEY_FILE override it",
    )


class ServerConfig(Strict):
    host: str = Field("127.0.0.1", description="listen address")
    port: int = Field(8080, ge=1, le=65535)
    max_body_mb: float = Field(2.0, gt=0, description="largest JSON request body accepted")
    max_upload_mb: float = Field(2048.0, gt=0, description="largest video upload accepted")
    session_hours: float = Field(12.0, gt=0, description="how long a console login stays valid")
    tls_cert: Path | None = Field(
        None, description="PEM certificate (chain): serve HTTPS (API, console, feeds)"
    )
    tls_key: Path | None = Field(None, description="PEM private key of tls_cert")
    hsts_max_age_s: int = Field(
        31536000, ge=0, description="Strict-Transport-Security max-age sent when TLS is on (0 = none)"
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="extra origins (scheme://host[:port]) allowed for cookie-authenticated writes and the "
        "WebSocket feed; the gateway's own origin is always allowed",
    )
    login_failures_per_account: int = Field(
        5, ge=1, description="wrong passwords for one account before its logins wait (doubling backoff)"
    )
    login_failures_per_address: int = Field(
        30, ge=1, description="wrong passwords from one address before guesses from it wait (backoff)"
    )
    login_window_s: float = Field(900.0, gt=0, description="how long a failed login counts")
    hash_workers: int = Field(2, ge=1, le=16, description="threads that hash passwords (apart from the rest)")
    hash_queue: int = Field(16, ge=0, description="logins waiting for a hashing thread before 503")

    @model_validator(mode="after")
    def _tls_pair(self) -> ServerConfig:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together: set both (HTTPS) or neither (HTTP)")
        return self


class AlarmsConfig(AlarmPolicy):
    """Alarm type codes, repeat rules per scene and escalation (gateway/config/alarm_policy.py)."""

    types_file: Path | None = Field(
        None, description="alarm type code table (YAML); null = the shipped config/alarm_types.yaml"
    )


class ModelsConfig(Strict):
    pack_dir: Path | None = Field(
        None, description="model pack to import on `vigil demo` (folders with ONNX files); import is offline"
    )


class SourceConfig(Strict):
    id: str = Field(description="source id, referenced by cameras")
    kind: Literal["rtsp", "onvif", "gb28181", "file"] = "rtsp"
    name: str = ""
    address: str | None = Field(None, description="host[:port] of the platform/NVR/device, where relevant")
    username: str | None = None
    password_env: str | None = Field(None, description="environment variable holding the password")


class Recipient(Strict):
    name: str = Field(description="person to notify, e.g. the area's safety officer")
    contact: str = Field("", description="phone, e-mail or account id the upstream system knows")
    role: str = Field("", description="e.g. 安全员, 班组长")


class CameraAlarmConfig(Strict):
    """Where a camera's alarms go and to whom (DESIGN: 报警配置)."""

    push: list[str] = Field(
        default_factory=list,
        description="uplink target names this camera's alarms go to; empty = every matching target",
    )
    recipients: list[Recipient] = Field(default_factory=list, description="people the alarm is pushed to")
    min_priority: int = Field(0, ge=0, le=4, description="alarms below this priority are kept but not pushed")


class CameraConfig(Strict):
    id: str = Field(description="camera id: a slug, or the 20-digit GB/T 28181 channel id")
    name: str
    location: str = Field("", description="where the camera is, as a safety manager names it")
    source: str | None = Field(None, description="id of a source in `sources`; null = standalone RTSP")
    url: str = Field(description="main stream: rtsp://..., or a video file path for offline sources")
    sub_url: str | None = Field(None, description="sub stream, for live view")
    transport: Literal["tcp", "udp"] = "tcp"
    quality: str | None = Field(None, description="stream quality label, e.g. 1080p main")
    enabled: bool = True
    scenes: list[SceneConfig] = Field(default_factory=list)
    capture_interval_s: float | None = Field(
        None, gt=0, description="save a frame every N seconds to the sample library; null = off"
    )
    alarm: CameraAlarmConfig = Field(default_factory=lambda: CameraAlarmConfig())
    unit: str | None = Field(None, description="production unit (装置) the camera belongs to (plant.units)")
    diagnosis: DiagnosisSettings = Field(
        default_factory=lambda: DiagnosisSettings(), description="video diagnosis (视频诊断) thresholds"
    )
    enhance: EnhanceSettings = Field(
        default_factory=lambda: EnhanceSettings(), description="image enhancement before inference"
    )
    ptz: PtzConfig = Field(default_factory=lambda: PtzConfig(), description="PTZ presets the scenes refer to")

    @field_validator("id")
    @classmethod
    def _id_chars(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", value):
            raise ValueError("use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
        return value

    @field_validator("url", "sub_url")
    @classmethod
    def _stream_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if (info.context or {}).get("stored"):
            return value  # read back from the database: checked when it was saved (or saved before)
        value = encode_userinfo(value) if value is not None else None  # a password with '@' or '/'
        problem = stream_url_problem(value) if value is not None else None
        if problem is not None:  # the key and parameters let the API word it in the user's language
            key, params = problem
            context = {"text": url_message(problem), "key": key, **params}
            raise PydanticCustomError("stream_url", "{text}", context)
        return value

    @model_validator(mode="after")
    def _scenes_known(self) -> CameraConfig:
        for scene in self.scenes:
            try:
                cls = scene_class(scene.scene)
            except SceneError as exc:  # `vigil config check` reports it at the scene's own line
                raise PydanticCustomError("scene_unknown", "{text}", {"text": str(exc)}) from exc
            try:
                cls.Params.model_validate(scene.params)
            except ValidationError as exc:  # `vigil config check` reports each at the parameter's line
                problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
                context = {"scene": scene.scene, "problems": problems}
                raise PydanticCustomError("scene_params", "scene {scene}: {problems}", context) from exc
            if not (scene.model or cls.default_model):
                raise ValueError(f"scene {scene.scene!r} needs `model`: the name of the detector it reads")
            if scene.preset is not None and self.ptz.preset(scene.preset) is None:
                raise ValueError(
                    f"scene {scene.scene!r}: preset {scene.preset!r} is not in ptz.presets; add its position"
                )
            for region in scene.regions:
                if region.preset is not None and self.ptz.preset(region.preset) is None:
                    raise ValueError(
                        f"scene {scene.scene!r} region {region.name!r}: preset {region.preset!r} is not in "
                        "ptz.presets; add its position"
                    )
            if any(e.preset is not None for e in scene.exclusions):
                raise ValueError(f"scene {scene.scene!r}: exclusions apply at every preset; remove `preset`")
        return self


Action = Literal["raised", "updated", "confirmed", "rejected", "disposed", "cleared", "closed", "escalated"]


class DispatchConfig(Strict):
    max_attempts: int = Field(12, ge=1, description="transient failures before a message is dead-lettered")
    backoff_initial_s: float = Field(
        1.0, gt=0, description="first retry delay; doubles each attempt, with jitter"
    )
    backoff_max_s: float = Field(300.0, gt=0, description="longest retry delay")
    concurrency: int = Field(8, ge=1, le=64, description="alarms delivered at once (order per alarm is kept)")
    breaker_failures: int = Field(5, ge=1, description="consecutive failures that open the circuit breaker")
    breaker_open_s: float = Field(30.0, gt=0, description="how long an open breaker waits before a trial")


class UplinkTargetConfig(Strict):
    """What every uplink target has; each kind (uplink/targets/*.py) adds ``kind: <its key>`` and its
    typed settings under ``<kind>:``. The config holds a union of them keyed by ``kind``."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    kind: str
    tier: Tier
    enabled: bool = True
    scenes: list[str] = Field(default_factory=list, description="scenes routed to this target; empty = all")
    cameras: list[str] = Field(default_factory=list, description="cameras routed to this target; empty = all")
    min_priority: int = Field(0, ge=0, le=4)
    actions: list[Action] = Field(
        default_factory=list, description="lifecycle changes sent (raised, cleared, ...); empty = all of them"
    )
    secret_env: str | None = Field(
        None, description="environment variable holding the signing secret / password (never in this file)"
    )
    cipher_key_env: str | None = Field(
        None, description="environment variable holding the AES/SM4 envelope key, when not the secret"
    )
    dispatch: DispatchConfig = Field(default_factory=lambda: DispatchConfig())

    @property
    def settings(self) -> BaseModel | None:
        """The kind's typed settings block (None where the kind has none or it is left out)."""
        value = getattr(self, self.kind, None)
        return value if isinstance(value, BaseModel) else None


def _target_config(kind: TargetKind) -> type[UplinkTargetConfig]:
    """The config model of one target kind: the shared fields, ``kind`` fixed to its key, its settings."""
    fields: dict[str, Any] = {"kind": (Literal[kind.kind], ...)}
    if kind.settings is not None:
        if kind.settings_required:
            fields[kind.kind] = (kind.settings, Field(description=kind.description))
        else:
            fields[kind.kind] = (kind.settings | None, Field(None, description=kind.description))
    name = "".join(part.title() for part in kind.kind.split("_")) + "UplinkTarget"
    return create_model(name, __base__=UplinkTargetConfig, **fields)


TARGET_CONFIGS: dict[str, type[UplinkTargetConfig]] = {k: _target_config(v) for k, v in KINDS.items()}
if TYPE_CHECKING:
    AnyUplinkTarget = UplinkTargetConfig
else:
    AnyUplinkTarget = Annotated[Union[tuple(TARGET_CONFIGS.values())], Field(discriminator="kind")]  # noqa: UP007


MediaTransport = Literal["udp", "tcp-passive", "tcp-active"]


class GbDeviceConfig(Strict):
    id: str = Field(pattern=r"^\d{20}$", description="the device's 20-digit SIP id")
    password_env: str = Field(description="environment variable holding this device's SIP password")


class GbServerConfig(Strict):
    """The upper-platform role: cameras, NVRs and the plant's VMS register to the gateway."""

    enabled: bool = True
    server_id: str = Field(pattern=r"^\d{20}$", description="our 20-digit SIP server id (type 200)")
    domain: str = Field(pattern=r"^\d{10}$", description="SIP domain / digest realm, usually server_id[:10]")
    host: str = Field("127.0.0.1", description="SIP listen address (also written in SDP unless media_host)")
    port: int = Field(5060, ge=0, le=65535, description="SIP port (UDP and TCP); 0 = any free port")
    udp: bool = True
    tcp: bool = True
    media_host: str | None = Field(None, description="IP written in our SDP c= line; null = host")
    media_transport: MediaTransport = Field(
        "udp", description="how devices send us PS over RTP: udp, tcp-passive (we listen), tcp-active"
    )
    unknown_devices: Literal["refuse", "hold"] = Field(
        "refuse", description="a device with no password configured: refused (403) or held for approval"
    )
    password_env: str | None = Field(
        None, description="environment variable holding the password of devices not listed in `devices`"
    )
    devices: list[GbDeviceConfig] = Field(default_factory=list, description="per-device passwords")
    keepalive_interval_s: float = Field(60.0, gt=0, description="expected device keepalive interval")
    keepalive_misses: int = Field(3, ge=1, description="missed keepalives before a device is offline")
    retry_s: float = Field(10.0, gt=0, description="wait before re-INVITE of an analysed channel")
    auth_failures: int = Field(
        5,
        ge=0,
        description="wrong REGISTER passwords per device id and per address before a cool-down; 0 = no limit",
    )
    auth_failure_window_s: float = Field(60.0, gt=0, description="window the wrong passwords are counted in")
    auth_cooldown_s: float = Field(
        60.0, gt=0, description="REGISTERs refused (403, Retry-After) for this long once the limit is hit"
    )


class GbShareConfig(Strict):
    camera: str = Field(description="camera id in the gateway")
    id: str = Field(pattern=r"^\d{20}$", description="the channel id assigned to this camera by that tier")


class GbSuperiorConfig(Strict):
    """One superior platform (park, county, city, province) the gateway registers up to."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="link name, used by uplink")
    server_id: str = Field(pattern=r"^\d{20}$", description="the superior's SIP id")
    server_domain: str = Field(description="the superior's domain / realm")
    host: str
    port: int = Field(5060, ge=1, le=65535)
    local_id: str = Field(pattern=r"^\d{20}$", description="our platform id as assigned by this superior")
    local_domain: str
    password_env: str = Field(description="environment variable holding the registration password")
    transport: Literal["UDP", "TCP"] = "UDP"
    expires: int = Field(3600, ge=60)
    keepalive_interval_s: float = Field(60.0, gt=0)
    retry_s: float = Field(30.0, gt=0, description="wait before retrying a failed registration")
    alarm_timeout_s: float = Field(10.0, gt=0, description="how long to wait for the superior's Response")
    channels: list[GbShareConfig] = Field(default_factory=list, description="cameras shared to this tier")


class GbCascadeConfig(Strict):
    host: str = Field("127.0.0.1", description="SIP listen address for the cascade role")
    port: int = Field(5061, ge=0, le=65535, description="SIP port for the cascade role; 0 = any free port")
    udp: bool = True
    tcp: bool = True
    superiors: list[GbSuperiorConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> GbCascadeConfig:
        names = [s.name for s in self.superiors]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate superior names: {', '.join(dupes)}")
        return self


class Gb28181Config(Strict):
    server: GbServerConfig | None = Field(None, description="upper-platform role; null = off")
    bind_source: Literal["strict", "port", "off"] = Field(
        "strict",
        description="messages (alarms, keepalives, NOTIFY) of a registered device must come from the host "
        "it registered from (strict; the port may change: NAT rebinding), that host and port (port), "
        "or anywhere (off)",
    )
    cascade: GbCascadeConfig | None = Field(None, description="lower-platform (cascade) role; null = off")
    rtp_ports: tuple[int, int] | None = Field(
        None,
        description="[low, high]: every media (RTP) port, received or relayed, from this range; null = any",
    )

    @field_validator("rtp_ports")
    @classmethod
    def _port_range(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and not 1 <= value[0] <= value[1] <= 65535:
            raise ValueError("rtp_ports is [low, high] with 1 <= low <= high <= 65535")
        return value


class UserConfig(Strict):
    username: str
    role: Role
    password_env: str = Field(description="environment variable holding the initial password")


class GatewayConfig(Strict):
    """Everything the gateway needs; `vigil config schema` writes its JSON schema."""

    site: SiteConfig = Field(default_factory=lambda: SiteConfig())
    database: DatabaseConfig = Field(default_factory=lambda: DatabaseConfig())
    storage: StorageConfig = Field(default_factory=lambda: StorageConfig())
    server: ServerConfig = Field(default_factory=lambda: ServerConfig())
    models: ModelsConfig = Field(default_factory=lambda: ModelsConfig())
    alarms: AlarmsConfig = Field(default_factory=lambda: AlarmsConfig())
    sources: list[SourceConfig] = Field(default_factory=list)
    cameras: list[CameraConfig] = Field(default_factory=list)
    uplink: list[AnyUplinkTarget] = Field(default_factory=list)
    users: list[UserConfig] = Field(default_factory=list)
    plant: PlantConfig = Field(
        default_factory=lambda: PlantConfig(), description="production units and their run-state feeds"
    )
    gb28181: Gb28181Config = Field(default_factory=lambda: Gb28181Config())
    cluster: ClusterConfig = Field(default_factory=lambda: ClusterConfig())

    @model_validator(mode="after")
    def _references(self) -> GatewayConfig:
        for label, ids in (
            ("camera", [c.id for c in self.cameras]),
            ("source", [s.id for s in self.sources]),
        ):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            if dupes:
                raise ValueError(f"duplicate {label} ids: {', '.join(dupes)}")
        known = {s.id for s in self.sources}
        targets = [t.name for t in self.uplink]
        dupes = sorted({n for n in targets if targets.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate uplink target names: {', '.join(dupes)}")
        for cam in self.cameras:
            if cam.source is not None and cam.source not in known:
                raise ValueError(f"camera {cam.id!r} names source {cam.source!r}, which is not in `sources`")
            units = {u.id for u in self.plant.units}
            if cam.unit is not None and cam.unit not in units:
                raise ValueError(f"camera {cam.id!r} names unit {cam.unit!r}, which is not in plant.units")
            for scene in cam.scenes:
                for region in scene.regions:
                    if region.unit is not None and region.unit not in units:
                        raise ValueError(
                            f"camera {cam.id!r} region {region.name!r} names unit {region.unit!r}, "
                            "which is not in plant.units"
                        )
            unknown = sorted(set(cam.alarm.push) - set(targets))
            if unknown:
                raise ValueError(
                    f"camera {cam.id!r} pushes to {', '.join(unknown)}, which are not in `uplink`"
                )
        return self


class ConfigError(Exception):
    """A configuration file is unusable; ``problems`` lists each one with its place in the file."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))


def _line_of(root: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """Follow a pydantic error location through the YAML node tree to a 1-based line number."""
    node, line = root, None
    for part in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        nxt = None
        if isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if k.value == part), None)
            if nxt is None:  # an unknown field: point at its key
                key = next((k for k, _ in node.value if k.value == part), None)
                return key.start_mark.line + 1 if key is not None else line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            nxt = node.value[part]
        node = nxt
    return node.start_mark.line + 1 if node is not None else line


def _loc_text(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def error_places(exc: ValidationError) -> list[tuple[tuple[int | str, ...], str, str]]:
    """(path in the YAML, message, pydantic's error type) of each validation error."""
    places = []
    for err in exc.errors(include_url=False):
        # Drop pydantic's union/validator tags from the path so it reads like the YAML.
        loc = tuple(
            p for p in err["loc"] if not (isinstance(p, str) and p.startswith(("function-", "tagged")))
        )
        if len(loc) > 2 and loc[0] == "uplink" and isinstance(loc[1], int) and loc[2] in TARGET_CONFIGS:
            loc = loc[:2] + loc[3:]  # the union's tag (the target's kind), not a field of the YAML
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = "required field is missing"
        elif err["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling; `vigil config schema` lists the fields)"
        places.append((loc, msg, err["type"]))
    return places


def format_errors(exc: ValidationError, root: yaml.Node | None, path: Path) -> list[str]:
    problems = []
    for loc, msg, _ in error_places(exc):
        line = _line_of(root, loc)
        where = f"{path}:{line}" if line else str(path)
        problems.append(f"{where}: {_loc_text(loc)}: {msg}")
    return problems


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """VIGIL_SECTION__FIELD=value -> {"section": {"field": value}} with YAML scalar parsing."""
    tree: dict[str, Any] = {}
    for key, raw in environ.items():
        if not key.startswith(ENV_PREFIX) or "__" not in key:
            continue
        parts = [p.lower() for p in key[len(ENV_PREFIX) :].split("__")]
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(raw) if raw else raw
    return tree


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> GatewayConfig:
    """Load and validate a YAML config; every problem is reported with its line in the file."""
    if not path.is_file():
        raise ConfigError(path, ["file not found; pass --config FILE or set VIGIL_CONFIG"])
    text = path.read_text(encoding="utf-8")
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(path, [yaml_error_text(exc, path)]) from exc
    if not isinstance(data, dict):
        raise ConfigError(path, ["the top level must be a mapping of sections (site, database, ...)"])
    _merge(data, env_overrides(os.environ if environ is None else environ))
    try:
        config = GatewayConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(path, format_errors(exc, root, path)) from exc
    return resolve_paths(config, path.parent)


def resolve_paths(config: GatewayConfig, base: Path) -> GatewayConfig:
    """Relative storage, model-pack and SQLite paths are relative to the config file's folder."""
    base = base.resolve()
    if not config.storage.root.is_absolute():
        config.storage.root = (base / config.storage.root).resolve()
    paths = ((config.storage, "secret_key_file"), (config.server, "tls_cert"), (config.server, "tls_key"))
    for holder, name in paths:
        value = getattr(holder, name)
        if value is not None and not value.is_absolute():
            setattr(holder, name, (base / value).resolve())
    url = config.database.url
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////") and ":memory:" not in url:
        config.database.url = f"sqlite:///{(base / url.removeprefix('sqlite:///')).resolve()}"
    if config.alarms.types_file is not None and not config.alarms.types_file.is_absolute():
        config.alarms.types_file = (base / config.alarms.types_file).resolve()
    if config.models.pack_dir is not None and not config.models.pack_dir.is_absolute():
        config.models.pack_dir = (base / config.models.pack_dir).resolve()
    return config


def default_config_path() -> Path:
    return Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)
