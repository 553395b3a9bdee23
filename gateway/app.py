"""The running gateway: configuration, database, evidence store, analytics, and their start/stop."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from analyzers.enrolment import use_source
from gateway.alarms.clips import ClipRecorder
from gateway.alarms.escalation import Escalation
from gateway.alarms.lifecycle import AlarmLifecycle
from gateway.alarms.recorder import AlarmRecorder
from gateway.alarms.retention import RetentionPolicy
from gateway.auth import create_user
from gateway.cameras.analytics import Analytics
from gateway.cameras.health import CameraHealth
from gateway.cameras.onvif_watch import OnvifWatcher
from gateway.cameras.plant_context import PlantContext
from gateway.cameras.registry import (
    GB_SOURCE_KIND,
    api_cameras,
    apply_health,
    camera_config,
    camera_is_gb,
    gb_source_ids,
    is_gb_camera,
    upsert_camera,
)
from gateway.cameras.viewing import Snapshots
from gateway.cluster.engine import build_engine
from gateway.config.schema import CameraConfig, GatewayConfig
from gateway.db import Database
from gateway.db.files import EvidenceStore
from gateway.db.schema import Alarm, Camera, Source, UplinkTarget, User
from gateway.delivery.alarm_types import default_table, load_table
from gateway.delivery.outbox import Outbox
from gateway.delivery.uplinks import UplinkService
from gateway.enrolment.runtime import DatabaseEnrolments
from gateway.gb28181.service import GbService
from gateway.i18n.caption import Caption
from gateway.secrets_at_rest import use_key_file
from gateway.units.feeds import UnitFeeds
from gateway.units.states import UnitStates
from gateway.videos.library import LibraryShelf, jobs_for

log = logging.getLogger(__name__)


class Gateway:
    def __init__(self, config: GatewayConfig, config_path: Path | None = None, analyse: bool = True) -> None:
        self.config = config
        self.config_path = config_path
        use_key_file(config.storage.secret_key_file or config.storage.root / "secret.key")  # sealed secrets
        self.db = Database(config.database.url, config.database.echo)
        self.store = EvidenceStore(config.storage.root)
        site = config.site
        self.outbox = Outbox(
            {"name": site.name, "site_code": site.site_code, "enterprise_code": site.enterprise_code},
            load_table(config.alarms.types_file) if config.alarms.types_file else default_table(),
        )
        retention_days = config.storage.evidence_retention_days
        self.recorder = AlarmRecorder(self.db, self.store, retention_days, self.outbox, config.alarms)
        self.escalation = Escalation(self.db, self.outbox, config.alarms)  # run by the API's serving loop
        st = config.storage
        self.clips = ClipRecorder(
            self.db, self.store, retention_days, pre_s=st.clip_pre_s, post_s=st.clip_post_s
        )
        self.analytics = Analytics(self.db, config.storage.root, self.recorder, self.clips)
        # Scenes that judge by the plant's enrolment (work clothes, extinguishers, role markers) read it here.
        use_source(DatabaseEnrolments(self.db, config.storage.root, config.models.pack_dir))
        # Where cameras are analysed: this process (local) or Ray analysis nodes (cluster.engine).
        self.engine = build_engine(config, self.analytics, self.recorder, self.clips)
        self.snapshots = Snapshots(self.analytics)  # viewers' pictures from the running cameras' frames
        self.recorder.caption = Caption(config.site.language, config.site.timezone)  # snapshots' captions
        self.lifecycle = AlarmLifecycle(
            self.db,
            self.store,
            self.outbox,
            retention_days,
            snapshot=self.engine.latest_image,
            rearm=self.engine.rearm,
        )
        # Plant context: video diagnosis alarms, unit run states, PTZ presets (issue 17).
        self.units = UnitStates(self.db, config.plant)
        self.unit_feeds = UnitFeeds(config.plant, self.units)
        self.health = CameraHealth(
            self.db, self.store, self.outbox, self.lifecycle, config.storage.root, retention_days
        )
        self.analytics.plant = PlantContext(self.health, self.units, self._ptz_state)
        videos = LibraryShelf(self.db, config.storage.root)
        self.retention = RetentionPolicy(self.db, self.store, config.storage, self.outbox, self.clips, videos)
        self.analyse = analyse
        self.started_at = time.time()
        self.metrics = CollectorRegistry()
        self.onvif = OnvifWatcher(self)  # PTZ state and events of cameras on ONVIF sources
        self.gb_cameras: list[tuple[CameraConfig, dict[str, int]]] = []  # analysed by self.gb28181
        # GB/T 28181 roles; started on the serving loop
        self.gb28181 = GbService(config, self.db, self.outbox, self.recorder, self.analytics, self.gb_cameras)
        cascade = self.gb28181.send_alarm if config.gb28181.cascade is not None else None
        self.uplinks = UplinkService(config.uplink, self.db, self.store, self.outbox, cascade)
        self.metrics.register(GatewayCollector(self))

    def _ptz_state(self, camera_id: str) -> dict[str, Any] | None:
        state = self.onvif.state(camera_id)
        return state.get("ptz") if state is not None else None

    def start(self) -> None:
        """Check the schema, sync configured cameras and targets, and start analysing (blocking calls)."""
        self.db.ensure_current()
        self.units.load()
        scene_ids: dict[str, dict[str, int]] = {}
        with self.db.session() as s:
            for src in self.config.sources:  # before the cameras that name them
                row_src = s.get(Source, src.id) or Source(id=src.id)
                row_src.kind, row_src.name, row_src.address = src.kind, src.name, src.address
                row_src.settings = {"username": src.username}  # the password stays in the environment
                s.add(row_src)
            s.flush()
            # A file camera edited or removed in the console since is the database's (origin "api").
            owned = set(s.scalars(select(Camera.id).where(Camera.origin == "api")))
            for cam in self.config.cameras:
                if cam.id not in owned:
                    scene_ids[cam.id] = upsert_camera(s, cam, origin="config")
            configured = {c.id for c in self.config.cameras}
            for stale in s.scalars(select(Camera).where(Camera.origin == "config")):
                if stale.id not in configured:  # taken out of the file: kept for its alarms, not run
                    stale.enabled, stale.status = False, "removed"
            configured_targets = {t.name for t in self.config.uplink}
            for target in self.config.uplink:
                row = s.scalar(select(UplinkTarget).where(UplinkTarget.name == target.name))
                if row is None:
                    row = UplinkTarget(name=target.name)
                    s.add(row)
                row.kind, row.tier, row.enabled = target.kind, target.tier, target.enabled
                # Routing filters and transport settings; secrets stay in the environment (secret_env).
                row.settings = target.model_dump(mode="json", exclude={"name", "kind", "tier", "enabled"})
            for stale_target in s.scalars(select(UplinkTarget)):
                if stale_target.name not in configured_targets:  # kept for its delivery history
                    stale_target.enabled = False
            self._bootstrap_users(s)
            # Seeded cameras (`vigil seed`) are listed with their made-up state but never opened.
            extra = [camera_config(row) for row in api_cameras(s) if row.origin != "seed"]
            for cam in extra:
                scene_ids[cam.id] = {t.scene: t.id for t in s.get(Camera, cam.id).tasks}  # type: ignore[union-attr]
            gb_sources = gb_source_ids(s)
        if not self.analyse:
            return
        open_keys = self.recorder.open_event_keys()
        # GB/T 28181 channels are played by a live INVITE on the serving loop (self.gb28181), not here;
        # a discovered channel without scenes has nothing to analyse.
        wanted = [c for c in self.config.cameras if c.enabled and c.id not in owned] + extra
        is_gb = [is_gb_camera(c.url, GB_SOURCE_KIND if c.source in gb_sources else None) for c in wanted]
        self.gb_cameras[:] = [
            (c, scene_ids.get(c.id, {})) for c, gb in zip(wanted, is_gb, strict=True) if gb and c.scenes
        ]
        for cam in [c for c, gb in zip(wanted, is_gb, strict=True) if not gb]:
            try:
                self.engine.start_camera(cam, scene_ids.get(cam.id, {}), open_keys)
            except Exception as exc:
                # A camera whose model is missing must not stop the others; its status says why.
                log.error("camera %s not started: %s", cam.id, exc)
                with self.db.session() as s:
                    cam_row = s.get(Camera, cam.id)
                    if cam_row is not None:
                        cam_row.status, cam_row.last_error = "error", str(exc)

    def _bootstrap_users(self, session: Any) -> None:
        """Create the configured users that do not exist yet, with passwords from the environment."""
        for user in self.config.users:
            if session.scalar(select(User).where(User.username == user.username)) is not None:
                continue
            password = os.environ.get(user.password_env)
            if not password:
                log.warning("user %s not created: set %s to its password", user.username, user.password_env)
                continue
            create_user(session, user.username, password, user.role)
            log.info("user %s created with role %s", user.username, user.role)

    def add_camera(self, cam: CameraConfig) -> None:
        """Store a camera added through the API and start it (blocking)."""
        gb = self._is_gb(cam)  # a GB/T 28181 channel is played by a live INVITE on the serving loop
        if gb and self.analyse and cam.enabled and self.gb28181.upper is None:
            raise ValueError(f"camera {cam.id!r} is a GB/T 28181 channel: enable gb28181.server first")
        with self.db.session() as s:
            row = s.get(Camera, cam.id)
            if row is not None and row.status != "removed":
                raise ValueError(f"camera {cam.id!r} exists already")
            if row is not None:  # removed but kept for its alarms: it comes back
                row.origin, row.status = "api", "unknown"
            ids = upsert_camera(s, cam, origin="api")
        if self.analyse and cam.enabled and gb:
            self.gb28181.add_camera(cam, ids)
        elif self.analyse and cam.enabled:
            self.engine.start_camera(cam, ids, self.recorder.open_event_keys())

    def _is_gb(self, cam: CameraConfig) -> bool:
        with self.db.session() as s:
            return camera_is_gb(s, cam)

    async def update_camera(self, cam: CameraConfig) -> None:
        """Store a camera's new configuration and restart it with it (on the serving loop).

        Raises LookupError for an unknown (or removed) camera. The database owns the camera from now
        on, also when it came from the configuration file (see start()).
        """

        def store() -> tuple[dict[str, int], bool]:
            with self.db.session() as s:
                row = s.get(Camera, cam.id)
                if row is None or row.status == "removed":
                    raise LookupError(f"no camera {cam.id}")
                if row.origin == "config":
                    row.origin = "api"
                ids = upsert_camera(s, cam, origin=row.origin)
            return ids, self._is_gb(cam)

        ids, is_gb = await asyncio.to_thread(store)
        await self._stop_camera(cam.id)
        if not (self.analyse and cam.enabled):
            return
        if is_gb:  # played by a live INVITE on this loop
            self.gb_cameras[:] = [(c, i) for c, i in self.gb_cameras if c.id != cam.id]
            if cam.scenes:
                self.gb_cameras.append((cam, ids))
                self.gb28181.analyse(cam, ids)
            return

        def start() -> None:
            try:
                self.engine.start_camera(cam, ids, self.recorder.open_event_keys())
            except Exception as exc:  # e.g. its model is missing: the status says why
                log.error("camera %s not restarted: %s", cam.id, exc)
                with self.db.session() as s:
                    row = s.get(Camera, cam.id)
                    if row is not None:
                        row.status, row.last_error = "error", str(exc)

        await asyncio.to_thread(start)

    async def remove_camera(self, camera_id: str) -> dict[str, Any]:
        """Stop a camera and remove it. Its alarms stay with their camera id: a camera that has alarms
        is kept as ``removed`` (not run; its name still labels them); one without is deleted.
        Raises LookupError for an unknown camera."""

        def exists() -> None:
            with self.db.session() as s:
                row = s.get(Camera, camera_id)
                if row is None or row.status == "removed":
                    raise LookupError(f"no camera {camera_id}")

        await asyncio.to_thread(exists)
        await self._stop_camera(camera_id)
        self.gb_cameras[:] = [(c, i) for c, i in self.gb_cameras if c.id != camera_id]

        def forget() -> dict[str, Any]:
            with self.db.session() as s:
                row = s.get(Camera, camera_id)
                assert row is not None
                alarms = s.scalar(select(func.count()).select_from(Alarm).where(Alarm.camera_id == camera_id))
                if alarms:
                    # origin "api": a camera from the file stays removed after a restart too.
                    row.enabled, row.status, row.origin = False, "removed", "api"
                else:
                    s.delete(row)
            return {"id": camera_id, "deleted": not alarms, "alarms_kept": int(alarms or 0)}

        return await asyncio.to_thread(forget)

    async def _stop_camera(self, camera_id: str) -> None:
        await self.gb28181.stop_playing(camera_id)  # a played GB channel: its task stops it
        await asyncio.to_thread(self.engine.stop_camera, camera_id)

    def persist_health(self) -> None:
        """Copy live stream health into the cameras table (called periodically, off the loop)."""
        runners = dict(self.analytics.runners)
        if not runners:
            return
        with self.db.session() as s:
            for cam_id, runner in runners.items():
                row = s.get(Camera, cam_id)
                if row is not None:
                    apply_health(row, runner.health)

    def stop(self) -> None:
        jobs_for(self).stop()  # before the model workers close under a running import
        self.engine.stop()
        self.analytics.stop()
        try:
            self.persist_health()
        except Exception:
            log.exception("could not save camera status at shutdown")
        self.db.dispose()


class GatewayCollector(Collector):
    """Prometheus metrics read from live state at scrape time."""

    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway

    def collect(self) -> Iterator[Any]:
        yield from self._cameras()
        yield from self._models()
        yield from self._storage()
        yield from self._uplinks()
        uptime = GaugeMetricFamily("vigil_uptime_seconds", "seconds since the gateway started")
        uptime.add_metric([], time.time() - self.gw.started_at)
        yield uptime

    def _cameras(self) -> Iterator[Any]:
        up = GaugeMetricFamily(
            "vigil_camera_up", "1 when the camera stream delivers frames", labels=["camera"]
        )
        fps = GaugeMetricFamily("vigil_camera_decode_fps", "frames decoded per second", labels=["camera"])
        analysed = CounterMetricFamily(
            "vigil_frames_analysed", "frames run through the scenes", labels=["camera"]
        )
        alarms = CounterMetricFamily("vigil_alarms_raised", "alarms raised since start", labels=["camera"])
        reconnects = CounterMetricFamily("vigil_camera_reconnects", "stream reconnects", labels=["camera"])
        stalls = CounterMetricFamily("vigil_camera_stalls", "sessions given up as stalled", labels=["camera"])
        keyframes = GaugeMetricFamily(
            "vigil_camera_keyframes_only", "1 when only keyframes are decoded", labels=["camera"]
        )
        captured = CounterMetricFamily(
            "vigil_samples_captured", "frames saved to the sample library", labels=["camera"]
        )
        dropped = CounterMetricFamily(
            "vigil_capture_dropped", "frames not captured because storage was slow", labels=["camera"]
        )
        errors = CounterMetricFamily(
            "vigil_analysis_errors", "frames whose analysis failed", labels=["camera"]
        )
        scenes = GaugeMetricFamily(
            "vigil_scene_running",
            "1 when the scene runs; 0 when a model is missing",
            labels=["camera", "scene"],
        )
        for cam_id, runner in list(self.gw.analytics.runners.items()):
            for scene, status in runner.scene_status().items():
                scenes.add_metric([cam_id, scene], 1.0 if status.startswith("running") else 0.0)
            up.add_metric([cam_id], 1.0 if runner.health.state == "online" else 0.0)
            fps.add_metric([cam_id], runner.health.fps or 0.0)
            analysed.add_metric([cam_id], runner.stats.frames_analysed)
            alarms.add_metric([cam_id], runner.stats.alarms)
            reconnects.add_metric([cam_id], runner.health.reconnects)
            stalls.add_metric([cam_id], runner.health.stalls)
            keyframes.add_metric([cam_id], 1.0 if runner.health.decode_mode == "keyframes" else 0.0)
            errors.add_metric([cam_id], runner.stats.errors)
            if runner.capture is not None:
                captured.add_metric([cam_id], runner.capture.captured)
                dropped.add_metric([cam_id], runner.capture.dropped)
        yield from (up, fps, analysed, alarms, reconnects, stalls, keyframes)
        yield from (captured, dropped, errors, scenes)

    def _models(self) -> Iterator[Any]:
        provider = GaugeMetricFamily(
            "vigil_model_provider",
            "execution provider each model runs on",
            labels=["model", "version", "provider"],
        )
        infer_frames = CounterMetricFamily("vigil_inference_frames", "frames inferred", labels=["model"])
        infer_busy = CounterMetricFamily(
            "vigil_inference_busy_seconds", "time spent in inference", labels=["model"]
        )
        queued = GaugeMetricFamily("vigil_inference_queue", "frames waiting for inference", labels=["model"])
        for name, handle in list(self.gw.analytics.models.items()):
            provider.add_metric([name, handle.version_id, handle.provider], 1.0)
            infer_frames.add_metric([name], handle.worker.frames)
            infer_busy.add_metric([name], handle.worker.busy_s)
            queued.add_metric([name], handle.worker.queued)
        yield from (provider, infer_frames, infer_busy, queued)

    def _storage(self) -> Iterator[Any]:
        storage = GaugeMetricFamily("vigil_storage_evidence_bytes", "bytes of evidence on disk")
        storage.add_metric([], self.gw.retention.usage_bytes())
        quota = GaugeMetricFamily("vigil_storage_quota_bytes", "evidence quota in bytes (0 = none)")
        quota.add_metric([], float(self.gw.retention.quota_bytes or 0))
        clips = GaugeMetricFamily(
            "vigil_storage_clips_kept", "1 while clips are kept (0 once over the quota mark)"
        )
        clips.add_metric([], 1.0 if self.gw.retention.clips_allowed else 0.0)
        clip_counts = CounterMetricFamily("vigil_clips", "alarm clips by outcome", labels=["outcome"])
        for outcome in ("written", "failed", "skipped_disabled", "dropped"):
            clip_counts.add_metric([outcome], getattr(self.gw.clips.stats, outcome))
        yield from (storage, quota, clips, clip_counts)

    def _uplinks(self) -> Iterator[Any]:
        backlog = GaugeMetricFamily(
            "vigil_uplink_messages", "outbox rows by state", labels=["target", "state"]
        )
        circuit = GaugeMetricFamily(
            "vigil_uplink_circuit_open", "1 while the breaker is open", labels=["target"]
        )
        for t in self.gw.uplinks.status():
            for state in ("pending", "dead", "delivered"):
                backlog.add_metric([t["name"], state], t[state])
            circuit.add_metric([t["name"]], 1.0 if t["circuit"] == "open" else 0.0)
        yield from (backlog, circuit)
