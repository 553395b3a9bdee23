"""GB/T 28181 in the running gateway: the upper-platform role (devices register to us, their video
channels become cameras, analysed channels are played live into a CameraRunner) and the cascade role
(the gateway registers up to each superior tier; the ``gb28181`` uplink target sends alarms through it).

Everything here lives on the serving event loop; database writes and camera start/stop go to threads.
Passwords come from the environment variables the configuration names and are never stored or logged; a
device approved through the API is kept as its digest HA1 (``gb_device_approvals``), never its password.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import threading
from collections.abc import Callable, Coroutine
from typing import Any, cast
from zoneinfo import ZoneInfo, available_timezones

from sqlalchemy import select

from adapters.gb28181.cascade import CascadeAgent, CascadeLink, SuperiorConfig
from adapters.gb28181.common import GbError, gb_time, is_gb_id
from adapters.gb28181.manscdp import AlarmNotify, CatalogItem, RecordItem, ptz_cmd
from adapters.gb28181.media import (
    FeedFollower,
    GbMediaFactory,
    GbMediaSource,
    MediaError,
    ReceiveSession,
    UnitFeed,
)
from adapters.gb28181.media_api import StreamUnavailable
from adapters.gb28181.ps import AccessUnit
from adapters.gb28181.sip.digest import Ha1, ha1_of
from adapters.gb28181.upper import PlaySession, UpperConfig, UpperEvent, UpperPlatform
from adapters.rtsp.packet_feed import PacketFeed
from gateway.alarms.recorder import AlarmRecorder
from gateway.alarms.writer import NewAlarm, write_alarm
from gateway.cameras.analytics import Analytics, CameraRunner
from gateway.cameras.registry import GB_URL_SCHEME, camera_config, is_gb_camera
from gateway.config.schema import CameraConfig, GatewayConfig, GbServerConfig
from gateway.db import Database
from gateway.db.schema import Alarm, Camera, GbDeviceApproval, Source, utcnow
from gateway.delivery.outbox import Outbox
from gateway.gb28181.links import (
    channel_camera,
    channel_url,
    device_cameras,
    device_source,
    device_sources,
    link_source,
    parse_channel_url,
)

log = logging.getLogger(__name__)

VIDEO_TYPES = frozenset({"131", "132"})  # id digits 11-13: camera, network camera (IPC)
URL_SCHEME = GB_URL_SCHEME
POLL_S = 1.0
DEVICE_ALARM_SCENE = "device_alarm"  # a device alarm whose method/type the alarm type table does not map
UNREGISTER_S = 3.0
DEVICE_INFO_FIELDS = ("DeviceName", "Manufacturer", "Model", "Firmware", "Channel")


def is_video_channel(item: CatalogItem) -> bool:
    return is_gb_id(item.device_id) and item.type_code in VIDEO_TYPES


def gb_priority(priority: int) -> int:
    """Our priority (0-4, higher is more urgent) -> GB AlarmPriority (1 = most urgent ... 4)."""
    return min(4, max(1, 5 - int(priority)))


def alarm_description(record: dict[str, Any]) -> str:
    """The zh name, the fine-grained type code and the message, e.g. ``区域入侵(intrusion): ...``."""
    kind = record.get("type") or {}
    zh = kind.get("zh") or kind.get("en") or ""
    code = kind.get("code") or record.get("scene") or ""
    text = f"{zh}({code})" if zh else str(code)
    message = record.get("message") or ""
    return f"{text}: {message}" if message else text


def local_gb_time(iso: str | None, timezone: str) -> str:
    """An ISO UTC time from the record (now if none) -> GB local time without zone (the site's zone)."""
    try:
        when = dt.datetime.fromisoformat(iso) if iso else dt.datetime.now(dt.UTC)
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        return gb_time(when, zone=timezone)
    except (ValueError, KeyError):
        return gb_time(zone=timezone if timezone in available_timezones() else None)


def parse_gb_time(text: str, timezone: str) -> dt.datetime | None:
    """A MANSCDP time (site-local, no zone; ISO 8601) -> UTC; None when it does not parse."""
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except (ValueError, AttributeError):
        return None
    if when.tzinfo is None:
        try:
            when = when.replace(tzinfo=ZoneInfo(timezone))
        except KeyError:
            return None
    return when.astimezone(dt.UTC)


def our_priority(gb: int) -> int:
    """GB AlarmPriority (1 = most urgent ... 4) -> ours (4 = most urgent ... 1); others -> 2."""
    return 5 - gb if 1 <= gb <= 4 else 2


class CameraFeed:
    """The :class:`UnitFeed` of a camera shared upwards: every relay subscription follows the camera's
    current feed (its RTSP runner's packet feed, or its GB live source), also across runner restarts."""

    def __init__(self, service: GbService, camera_id: str) -> None:
        self.service = service
        self.camera_id = camera_id

    def current(self) -> UnitFeed | None:
        return self.service.current_feed(self.camera_id)

    def subscribe(self, callback: Callable[[AccessUnit], None]) -> Callable[[], None]:
        follower = FeedFollower(f"camera {self.camera_id}", callback)
        followers = self.service._followers
        with self.service._followers_lock:
            followers.setdefault(self.camera_id, set()).add(follower)
        follower.attach(self.current())

        def cancel() -> None:
            with self.service._followers_lock:
                followers.get(self.camera_id, set()).discard(follower)
            follower.close()
            self.service.release_pull(self.camera_id)

        return cancel


class GbService:
    """The GB/T 28181 roles of a gateway: build with the gateway, ``start()``/``stop()`` on the loop."""

    def __init__(
        self,
        config: GatewayConfig,
        db: Database,
        outbox: Outbox,
        recorder: AlarmRecorder,
        analytics: Analytics,
        cameras: list[tuple[CameraConfig, dict[str, int]]],
    ) -> None:
        self._db, self._outbox, self._recorder, self._analytics = db, outbox, recorder, analytics
        self._site = config.site
        self._cameras = cameras  # the gateway's GB channel cameras (analysed here), shared
        self.config = config.gb28181
        self.upper: UpperPlatform | None = None
        self.cascade: CascadeAgent | None = None
        self.media: GbMediaFactory | None = None
        self.sources: dict[str, GbMediaSource] = {}  # camera id -> live source (analysed channels)
        self._players: dict[str, asyncio.Task[None]] = {}  # camera id -> keep-playing task
        self._tasks: set[asyncio.Task[Any]] = set()
        self._shares: dict[str, dict[str, str]] = {}  # superior -> {channel id there: camera id}
        self._camera_ids: dict[str, dict[str, str]] = {}  # superior -> {camera id: channel id there}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._followers: dict[str, set[FeedFollower]] = {}  # camera id -> relays following its feed
        self._followers_lock = threading.Lock()
        # the device rows' writers (catalog, DeviceInfo, status) run in threads at once: one at a time
        self._rows_lock = threading.Lock()
        self._device_back: dict[str, asyncio.Event] = {}  # device id -> set when it registers again
        self._pulled: set[str] = set()  # GB channel cameras played only because a superior asked
        self._comebacks: dict[str, int] = {}  # device id -> registrations (and returns online) seen

    # ------------------------------------------------------------------------------------ lifecycle

    @property
    def enabled(self) -> bool:
        server = self.config.server
        return (server is not None and server.enabled) or self.config.cascade is not None

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def start(self, cameras: list[tuple[CameraConfig, dict[str, int]]] | None = None) -> None:
        """Open the SIP roles; ``cameras`` are the GB channel cameras to analyse (with scene ids)."""
        self._loop = asyncio.get_running_loop()
        self._analytics.runner_listeners.append(self._on_runner)
        server = self.config.server
        if server is not None and server.enabled:
            self.media = GbMediaFactory(
                feeds=self._feed, bind_host=server.host, port_range=self.config.rtp_ports
            )
            self.upper = UpperPlatform(self._upper_config(server), self._password, self.media)
            for device_id, secret in await asyncio.to_thread(self._decisions, server.domain):
                if secret is None:
                    self.upper.refuse(device_id)
                else:
                    self.upper.approve(device_id, secret)
            await self.upper.start()
            self._spawn(self._consume(self.upper), "gb28181-events")
            log.info("GB/T 28181 upper platform %s on %s:%d", server.server_id, server.host, self.upper.port)
        cascade = self.config.cascade
        if cascade is not None and cascade.superiors:
            superiors = await asyncio.to_thread(self._superiors)
            if self.media is None:
                self.media = GbMediaFactory(
                    feeds=self._feed, bind_host=cascade.host, port_range=self.config.rtp_ports
                )
            self.cascade = CascadeAgent(
                cascade.host, cascade.port, superiors, self.media, udp=cascade.udp, tcp=cascade.tcp
            )
            await self.cascade.start()
            log.info(
                "GB/T 28181 cascade on %s:%d to %s",
                cascade.host,
                self.cascade.endpoint.port,
                ", ".join(s.name for s in superiors) or "nobody",
            )
        for cam, scene_ids in cameras or []:
            self.analyse(cam, scene_ids)

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            self._analytics.runner_listeners.remove(self._on_runner)
        players = list(self._players.values())
        self._players.clear()
        for task in players:
            task.cancel()
        for task in players:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.cascade is not None:
            for link in self.cascade.links.values():  # bounded: a superior that is down must not
                if link.registered:  # hold the shutdown for a whole SIP transaction timeout
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(link.unregister(), UNREGISTER_S)
                    link.registered = False
            with contextlib.suppress(Exception):
                await self.cascade.close(unregister=False)
            self.cascade = None
        if self.upper is not None:
            with contextlib.suppress(Exception):
                await self.upper.close()
            self.upper = None

    def _upper_config(self, server: GbServerConfig) -> UpperConfig:
        return UpperConfig(
            server.server_id,
            server.domain,
            host=server.host,
            port=server.port,
            udp=server.udp,
            tcp=server.tcp,
            media_host=server.media_host,
            unknown_devices=server.unknown_devices,
            keepalive_interval=server.keepalive_interval_s,
            keepalive_misses=server.keepalive_misses,
            timezone=self._site.timezone,  # the Date we send and the alarm times we read: one zone
            auth_failures=server.auth_failures,
            auth_failure_window=server.auth_failure_window_s,
            auth_cooldown=server.auth_cooldown_s,
            bind_source=self.config.bind_source,
        )

    def _password(self, device_id: str) -> str | None:
        server = self.config.server
        if server is None:
            return None
        env = next((d.password_env for d in server.devices if d.id == device_id), server.password_env)
        if env is None:
            return None
        value = os.environ.get(env)
        if not value:
            log.warning("GB device %s: %s is not set; its registration is refused", device_id, env)
            return None
        return value

    def _superiors(self) -> list[SuperiorConfig]:
        """The configured superiors whose password is set, with their shared channels (blocking)."""
        cascade = self.config.cascade
        assert cascade is not None
        out = []
        for sup in cascade.superiors:
            password = os.environ.get(sup.password_env)
            if not password:
                log.warning("cascade %s not started: set %s to its password", sup.name, sup.password_env)
                continue
            self._shares[sup.name] = {c.id: c.camera for c in sup.channels}
            self._camera_ids[sup.name] = {c.camera: c.id for c in sup.channels}
            out.append(
                SuperiorConfig(
                    name=sup.name,
                    server_id=sup.server_id,
                    server_domain=sup.server_domain,
                    host=sup.host,
                    port=sup.port,
                    local_id=sup.local_id,
                    local_domain=sup.local_domain,
                    password=password,
                    transport=sup.transport,
                    expires=sup.expires,
                    keepalive_interval=sup.keepalive_interval_s,
                    retry_interval=sup.retry_s,
                    alarm_timeout=sup.alarm_timeout_s,
                    channels=self._shared_items(sup.name),
                    catalog=self._catalog_reader(sup.name),
                    device_name=self._site.name,
                    timezone=self._site.timezone,
                )
            )
        return out

    def _catalog_reader(self, superior: str) -> Callable[[], Coroutine[Any, Any, list[CatalogItem]]]:
        async def read() -> list[CatalogItem]:
            return await asyncio.to_thread(self._shared_items, superior)

        return read

    def _shared_items(self, superior: str) -> list[CatalogItem]:
        """The cameras shared to a superior as Catalog items, as they are now (blocking): OFF while the
        camera is offline, failed, disabled or removed (a GB channel goes offline with its device);
        a GB channel carries the manufacturer and model its device gave (catalog item, else DeviceInfo)."""
        cascade = self.config.cascade
        sup = next((c for c in cascade.superiors if c.name == superior), None) if cascade else None
        if sup is None:
            return []
        items = []
        with self._db.session() as s:
            for share in sup.channels:
                row = s.get(Camera, share.camera)
                down = row is None or not row.enabled or row.status in ("offline", "error", "removed")
                maker, model = self._made_by(s, row) if row is not None else ("", "")
                items.append(
                    CatalogItem(
                        share.id,
                        row.name if row is not None else share.camera,
                        manufacturer=maker,
                        model=model,
                        civil_code=sup.local_domain,
                        parent_id=sup.local_id,
                        status="OFF" if down else "ON",
                    )
                )
        return items

    async def _notify_shares(self, device_id: str) -> None:
        """Tell the superiors subscribed to our Catalog that the cameras of this device shared to them
        went ON or OFF (NOTIFY Catalog, items with Event ON/OFF)."""
        if self.cascade is None:
            return
        for name, link in list(self.cascade.links.items()):
            if not any(kind.lower() == "catalog" for kind, _ in link.subscriptions.values()):
                continue
            items = await asyncio.to_thread(self._device_shares, name, device_id)
            if items:
                try:
                    await link.notify_catalog(items)
                except Exception as exc:  # a superior that does not answer must not stop the others
                    log.info("cascade %s: Catalog NOTIFY failed: %s", name, exc)

    def _device_shares(self, superior: str, device_id: str) -> list[CatalogItem]:
        """The Catalog items (with Event = their status) of a device's cameras shared to a superior."""
        dev = self.upper.devices.get(device_id) if self.upper is not None else None
        with self._db.session() as s:
            ids = {
                c.id for c in device_cameras(s, device_id, set(dev.channels) if dev is not None else set())
            }
        shares = self._shares.get(superior, {})
        items = [i for i in self._shared_items(superior) if shares.get(i.device_id) in ids]
        for item in items:
            item.event = item.status
        return items

    def _made_by(self, s: Any, row: Camera) -> tuple[str, str]:
        """(manufacturer, model) of a GB channel camera as its device reported them; ("", "") if unknown."""
        device, channel = parse_channel_url(row.stream_url or "")
        channel = row.gb_channel_id or channel
        if channel is None:
            return "", ""
        dev = None
        if self.upper is not None:
            dev = self.upper.devices.get(device or "") or next(
                (d for d in list(self.upper.devices.values()) if channel in d.channels), None
            )
        item = dev.channels.get(channel) if dev is not None else None
        if item is not None and (item.manufacturer or item.model):
            return item.manufacturer, item.model
        info: dict[str, Any] = dict(dev.info) if dev is not None else {}
        if not info:
            src = s.get(Source, row.source_id) if row.source_id is not None else None
            info = dict((src.settings or {}).get("device_info") or {}) if src is not None else {}
        return str(info.get("Manufacturer") or ""), str(info.get("Model") or "")

    # ---------------------------------------------------------------------------- devices -> cameras

    async def _consume(self, upper: UpperPlatform) -> None:
        while True:
            event = await upper.events.get()
            try:
                await self._on_event(upper, event)
            except Exception:
                log.exception("GB event %s of %s not handled", event.kind, event.device_id)

    async def _on_event(self, upper: UpperPlatform, event: UpperEvent) -> None:
        if event.kind == "registered":
            dev = upper.devices.get(event.device_id)
            address = f"{dev.address.host}:{dev.address.port}" if dev is not None else None
            await asyncio.to_thread(self._device_status, event.device_id, "online", address)
            self._wake_players(event.device_id)  # a pending INVITE goes now, not at the retry timer
            self._spawn(self._notify_shares(event.device_id), f"gb28181-notify-{event.device_id}")
            self._spawn(self._query_device(upper, event.device_id), f"gb28181-catalog-{event.device_id}")
        elif event.kind in ("catalog", "catalog_notify"):
            await asyncio.to_thread(self._upsert_channels, event.device_id, event.items)
        elif event.kind == "online":
            await asyncio.to_thread(self._device_status, event.device_id, "online", None)
            self._wake_players(event.device_id)
            self._spawn(self._notify_shares(event.device_id), f"gb28181-notify-{event.device_id}")
        elif event.kind in ("offline", "unregistered"):
            await asyncio.to_thread(self._device_status, event.device_id, "offline", None)
            self._spawn(self._notify_shares(event.device_id), f"gb28181-notify-{event.device_id}")
        elif event.kind == "alarm" and event.alarm is not None:
            # The device got its 200 and <Response> from the upper platform already; store it like any alarm.
            await asyncio.to_thread(self.store_device_alarm, event.device_id, event.alarm)

    async def _query_device(self, upper: UpperPlatform, device_id: str) -> None:
        """After a registration: DeviceInfo (who made the device, its model and firmware: stored with
        the device, shown by the devices API and sent upwards in our Catalog for its channels), then
        the Catalog (its channels become cameras)."""
        try:
            info = await upper.query_device_info(device_id)
        except GbError as exc:
            log.warning("GB device %s: DeviceInfo query failed: %s", device_id, exc)
        else:
            await asyncio.to_thread(self._store_device_info, device_id, info)
        try:
            await upper.query_catalog(device_id)  # emits "catalog", which upserts the channels
        except GbError as exc:
            log.warning("GB device %s: catalog query failed: %s", device_id, exc)

    def _store_device_info(self, device_id: str, info: dict[str, str]) -> None:
        kept = {k: str(info[k])[:200] for k in DEVICE_INFO_FIELDS if info.get(k)}
        with self._rows_lock, self._db.session() as s:
            src = device_source(s, device_id)
            src.settings = {**(src.settings or {}), "device_info": kept}
        log.info("GB device %s: %s", device_id, ", ".join(f"{k} {v}" for k, v in kept.items()) or "no info")

    def _wake_players(self, device_id: str) -> None:
        """Wake the play loops waiting out their retry timer for this device (it is back)."""
        self._comebacks[device_id] = self._comebacks.get(device_id, 0) + 1
        event = self._device_back.pop(device_id, None)
        if event is not None:
            event.set()

    async def _wait_retry(self, device_id: str | None, delay: float, since: int | None = None) -> None:
        """Sleep ``delay`` seconds, or until the device registers again (or comes back online); at
        once if it did so since ``since`` (a ``_comebacks`` count taken before the attempt that failed:
        it came back while the INVITE was under way)."""
        if device_id is None:
            await asyncio.sleep(delay)
            return
        if since is not None and self._comebacks.get(device_id, 0) != since:
            return
        event = self._device_back.setdefault(device_id, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), delay)

    def _device_status(self, device_id: str, status: str, address: str | None) -> None:
        """The device's source row (the configured source standing for it, else one with its id), and
        the status of all its cameras when it goes offline (blocking). An analysed camera goes offline
        too: its play loop ends the session on its own (see ``_ended``)."""
        with self._rows_lock, self._db.session() as s:
            src = device_source(s, device_id)
            for row in device_sources(s, device_id) or [src]:
                row.status = status
                if address is not None:
                    row.address = address
            if status == "offline":
                dev = self.upper.devices.get(device_id) if self.upper is not None else None
                for cam in device_cameras(s, device_id, set(dev.channels) if dev is not None else set()):
                    if cam.status != "removed":
                        cam.status = "offline"

    def _camera_offline(self, camera_id: str) -> None:
        with self._db.session() as s:
            row = s.get(Camera, camera_id)
            if row is not None and row.status != "removed":
                row.status = "offline"

    def _upsert_channels(self, device_id: str, items: list[CatalogItem]) -> list[str]:
        """Video channels of a device's catalog -> camera rows (id = 20-digit channel id); blocking."""
        changed = []
        with self._rows_lock, self._db.session() as s:
            source = device_source(s, device_id)
            if source.status == "unknown":
                source.status = "online"
            for item in items:
                if not is_video_channel(item):
                    continue
                event = item.event.upper()
                row = channel_camera(s, device_id, item.device_id)
                status = {"ON": "online", "OFF": "offline"}.get(item.status.upper(), "unknown")
                if event in ("OFF", "VLOST", "DEFECT"):
                    status = "offline"
                if event == "DEL":
                    if row is not None and row.origin == "gb28181":
                        row.enabled, row.status = False, "removed"
                    continue
                if row is None:
                    row = Camera(id=item.device_id, origin="gb28181", transport="udp")
                    row.name = item.name or item.device_id
                    row.alarm_settings = {}
                    s.add(row)
                if row.origin == "gb28181":  # discovered: the catalog is the truth
                    row.name = item.name or row.name or item.device_id
                    row.source_id = source.id
                    row.stream_url = channel_url(device_id, item.device_id)
                    row.location = row.location or item.address
                    row.enabled = True
                else:  # a configured (or API) camera of this channel: its source stands for the device
                    self._claim_channel(s, row, item.device_id)
                    linked = s.get(Source, row.source_id) if row.source_id is not None else None
                    if linked is not None and linked.kind == "gb28181":
                        link_source(linked, device_id)
                row.gb_channel_id = item.device_id
                if item.ptz_type is not None:
                    row.ptz = item.ptz_type in (1, 2, 4)
                if row.id not in self._analytics.runners:  # a running camera reports its own health
                    row.status = status
                changed.append(row.id)
        return changed

    @staticmethod
    def _claim_channel(s: Any, row: Camera, channel_id: str) -> None:
        """A configured camera takes a channel a catalog row held (from before it was configured): that
        row is removed, not left as a second camera of the same channel. Another configured camera that
        held the channel (its address changed since) lets it go: a channel has one camera."""
        for other in s.scalars(select(Camera).where(Camera.gb_channel_id == channel_id)):
            if other.id == row.id:
                continue
            other.gb_channel_id = None
            if other.origin == "gb28181":
                other.enabled, other.status = False, "removed"
        s.flush()

    def _device_scene(self, alarm: AlarmNotify) -> str:
        """The alarm type table's code for the device's (AlarmMethod, AlarmType), else device_alarm."""
        if alarm.alarm_type is not None:
            for code, kind in self._outbox.types.types.items():
                if (kind.gb_alarm_method, kind.gb_alarm_type) == (alarm.method, alarm.alarm_type):
                    return code
        return DEVICE_ALARM_SCENE

    def store_device_alarm(self, device_id: str, alarm: AlarmNotify) -> str | None:
        """A device's Alarm notification as a vigil alarm (lifecycle, outbox); returns its id, or None
        for a repeat (same device, channel, AlarmTime, method and type: devices resend when unsure; an
        NVR's channels alarm at the same second with the same type and are not repeats). Blocking."""
        channel = alarm.device_id if is_gb_id(alarm.device_id) else device_id
        key = f"gb28181:{device_id}/{channel}/{alarm.time[:40]}/{alarm.method}/{alarm.alarm_type}"
        timezone = self._site.timezone
        now = utcnow()
        occurred = parse_gb_time(alarm.time, timezone) or now
        scene = self._device_scene(alarm)
        message = alarm.description[:500] or f"GB/T 28181 device alarm (method {alarm.method})"
        with self._db.session() as s:
            if s.scalar(select(Alarm.id).where(Alarm.event_key == key).limit(1)) is not None:
                log.info("GB device %s: alarm %s already stored", device_id, key)
                return None
            camera = channel_camera(s, device_id, channel)  # also before the catalog linked it
            new = NewAlarm(
                scene=scene,
                event_key=key,
                message=message,
                actor=f"device:{device_id}",
                occurred_at=occurred,
                raised_at=now,
                camera_id=camera.id if camera is not None else None,
                priority=our_priority(alarm.priority),
                score=1.0,  # the device decided; there is no model score
                details={
                    "source": "gb28181",
                    "device_id": device_id,
                    "channel_id": channel,
                    "gb_alarm_priority": alarm.priority,
                    "gb_alarm_method": alarm.method,
                    "gb_alarm_type": alarm.alarm_type,
                    "gb_alarm_time": alarm.time,
                    "description": alarm.description,
                    **({"event_type": alarm.event_type} if alarm.event_type else {}),
                    **({"longitude": alarm.longitude, "latitude": alarm.latitude} if alarm.longitude else {}),
                },
            )
            alarm_id = write_alarm(s, self._outbox, new, now).id
        self._outbox.notify()
        log.info("GB device %s: alarm %s stored as %s (%s)", device_id, alarm_id, scene, message)
        return alarm_id

    # -------------------------------------------------------------------------- held devices (API)

    def pending(self) -> list[dict[str, Any]]:
        """Devices that tried to register without a configured password, waiting for approval."""
        if self.upper is None:
            return []
        return [
            {"device_id": device_id, "address": f"{addr.host}:{addr.port}", "transport": addr.transport}
            for device_id, addr in sorted(self.upper.pending.items())
        ]

    async def approve(self, device_id: str, password: str, actor: str = "") -> None:
        """Admit a held device with this password; KeyError if not held. Stored as HA1 (the realm is
        our domain), so the approval survives a restart and the password is kept nowhere."""
        if self.upper is None or device_id not in self.upper.pending:
            raise KeyError(device_id)
        realm = self.upper.config.domain
        secret = Ha1(ha1_of(device_id, realm, password), realm)
        await asyncio.to_thread(self._decide, device_id, "approved", secret, actor)
        self.upper.approve(device_id, secret)
        log.info("GB device %s approved by %s; it is admitted on its next REGISTER", device_id, actor or "?")

    async def refuse(self, device_id: str, actor: str = "") -> None:
        """Refuse a held device (403 from now on, also after a restart); KeyError if not held."""
        if self.upper is None or device_id not in self.upper.pending:
            raise KeyError(device_id)
        await asyncio.to_thread(self._decide, device_id, "refused", None, actor)
        self.upper.refuse(device_id)
        log.info("GB device %s refused by %s", device_id, actor or "?")

    def _decide(self, device_id: str, status: str, secret: Ha1 | None, actor: str) -> None:
        with self._db.session() as s:
            row = s.get(GbDeviceApproval, device_id) or GbDeviceApproval(device_id=device_id)
            row.status, row.decided_by, row.decided_at = status, actor[:100], utcnow()
            row.realm = secret.realm if secret is not None else ""
            row.ha1 = secret.value if secret is not None else None
            s.add(row)

    def _decisions(self, realm: str) -> list[tuple[str, Ha1 | None]]:
        """Stored approvals (as Ha1) and refusals (None), blocking. An approval for another realm (the
        server domain changed) cannot be checked: that device is held again."""
        out: list[tuple[str, Ha1 | None]] = []
        with self._db.session() as s:
            for row in s.scalars(select(GbDeviceApproval)):
                if row.status == "refused":
                    out.append((row.device_id, None))
                elif row.ha1 and row.realm == realm:
                    out.append((row.device_id, Ha1(row.ha1, realm)))
                else:
                    log.warning(
                        "GB device %s was approved for realm %s, not %s: approve it again when it is held",
                        row.device_id,
                        row.realm,
                        realm,
                    )
        return out

    # ------------------------------------------------------------------------- PTZ and recordings

    def _channel(self, camera_id: str) -> tuple[str, str]:
        """(registered device, channel id) of a GB channel camera; LookupError / ValueError say why not."""
        with self._db.session() as s:
            row = s.get(Camera, camera_id)
            if row is None or row.status == "removed":
                raise LookupError(f"no camera {camera_id}")
            url, source, channel = row.stream_url or "", row.source_id, row.gb_channel_id
            src = s.get(Source, source) if source is not None else None
            kind = src.kind if src is not None else None
        if not is_gb_camera(url, kind, channel):
            raise ValueError(f"camera {camera_id} is not a GB/T 28181 channel")
        probe = CameraConfig.model_construct(id=channel or camera_id, name=camera_id, url=url, source=source)
        device, chan = self.device_of(probe)
        chan = channel or chan
        dev = self.upper.devices.get(device) if self.upper is not None and device else None
        if dev is None or not dev.online:
            raise ValueError(
                f"camera {camera_id}: its GB/T 28181 device is not registered or offline; try later"
            )
        return dev.device_id, chan

    async def ptz(self, camera_id: str, action: str, speed: int, zoom_speed: int, preset: int) -> str:
        """Send a PTZ command (GB/T 28181 A.3 PTZCmd) to a GB channel camera; returns the PTZCmd sent."""
        command = ptz_cmd(action, speed, zoom_speed, preset)  # ValueError for a bad action or value
        device, channel = await asyncio.to_thread(self._channel, camera_id)
        assert self.upper is not None
        await self.upper.ptz(device, channel, command)
        return command

    async def presets(self, camera_id: str) -> list[dict[str, Any]]:
        """The presets of a GB channel camera (PresetQuery): ``{preset, token, name}``."""
        device, channel = await asyncio.to_thread(self._channel, camera_id)
        assert self.upper is not None
        items = await self.upper.query_presets(device, channel)
        return [
            {
                "preset": int(p.preset_id) if p.preset_id.isdigit() else None,
                "token": p.preset_id,
                "name": p.name,
            }
            for p in items
        ]

    async def records(self, camera_id: str, start: dt.datetime, end: dt.datetime) -> list[RecordItem]:
        """The device's recordings of a GB channel camera between two times (RecordInfo query)."""
        device, channel = await asyncio.to_thread(self._channel, camera_id)
        assert self.upper is not None
        zone = ZoneInfo(self._site.timezone)

        def local(when: dt.datetime) -> str:
            when = when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)
            return gb_time(when.astimezone(zone).replace(tzinfo=None))

        return await self.upper.query_records(device, channel, local(start), local(end))

    # ------------------------------------------------------------------------------- live streams

    def device_of(self, camera: CameraConfig) -> tuple[str | None, str]:
        """(registered device holding the channel, channel id) for a GB channel camera."""
        device, channel = parse_channel_url(camera.url)
        channel = channel or camera.id
        if self.upper is None:
            return None, channel
        if device is not None and device in self.upper.devices:
            return device, channel
        for dev in self.upper.devices.values():
            if channel in dev.channels:
                return dev.device_id, channel
        if camera.source is not None and camera.source in self.upper.devices:
            return camera.source, channel
        return None, channel

    async def open_channel(self, device_id: str, channel_id: str) -> tuple[PlaySession, GbMediaSource]:
        """Live INVITE of a channel; the returned source yields its frames: ``source.run(on_frame)``
        in a thread. ``close_channel(session)`` sends BYE."""
        if self.upper is None:
            raise GbError("the GB/T 28181 upper platform is not configured")
        server = self.config.server
        transport = server.media_transport if server is not None else "udp"
        session = await self.upper.play(device_id, channel_id, transport)
        return session, cast(ReceiveSession, session.receiver).source

    async def close_channel(self, session: PlaySession) -> None:
        if self.upper is not None:
            await self.upper.stop(session)

    def add_camera(self, camera: CameraConfig, scene_ids: dict[str, int]) -> None:
        """A GB channel camera added through the API: INVITEd and analysed like a configured one.
        Safe from any thread (the API adds cameras off the loop)."""
        if self.upper is None or self._loop is None:
            raise ValueError(
                f"camera {camera.id}: a GB/T 28181 channel needs the upper platform; "
                "enable gb28181.server in the gateway configuration and restart"
            )
        if not camera.scenes:  # like configured channels: nothing to analyse, nothing to play
            return
        self._cameras.append((camera, scene_ids))
        self._loop.call_soon_threadsafe(self.analyse, camera, scene_ids)

    async def stop_playing(self, camera_id: str) -> None:
        """Stop keeping a GB channel camera played (its task ends the session); no-op for others."""
        player = self._players.pop(camera_id, None)
        if player is not None:
            player.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await player

    def analyse(self, camera: CameraConfig, scene_ids: dict[str, int]) -> None:
        """Keep a GB channel camera played and analysed until ``stop()`` (re-INVITE after a loss)."""
        self._pulled.discard(camera.id)  # analysed now: played also when no superior watches
        old = self._players.pop(camera.id, None)
        if old is not None:
            old.cancel()
        self._players[camera.id] = asyncio.create_task(
            self._keep_playing(camera, scene_ids), name=f"gb28181-play-{camera.id}"
        )

    async def _keep_playing(self, camera: CameraConfig, scene_ids: dict[str, int]) -> None:
        server = self.config.server
        retry = server.retry_s if server is not None else 10.0
        while True:
            device, channel = self.device_of(camera)
            dev = self.upper.devices.get(device) if self.upper is not None and device else None
            if dev is None or not dev.online:
                await self._wait_retry(device, POLL_S)
                continue
            comebacks = self._comebacks.get(dev.device_id, 0)
            try:
                session, source = await self.open_channel(dev.device_id, channel)
            except (GbError, OSError, MediaError) as exc:  # refused, timed out, or no media port
                log.warning("camera %s: live INVITE failed: %s; again in %s s", camera.id, exc, retry)
                await self._wait_retry(dev.device_id, retry, since=comebacks)
                continue
            runner: CameraRunner | None = None
            try:
                runner = await self._start_runner(camera, scene_ids, source)
                while True:  # polled: the end has several causes, some on other threads
                    if self._ended(session, source, runner):
                        break
                    await asyncio.sleep(POLL_S)
                log.info("camera %s: live session ended (%s)", camera.id, source.health.last_error)
            except Exception:
                log.exception("camera %s: analysis of the GB channel failed", camera.id)
            finally:
                if self.sources.pop(camera.id, None) is not None:
                    self.feed_changed(camera.id)
                if runner is not None:
                    await asyncio.to_thread(self._stop_runner, camera.id, runner)
                with contextlib.suppress(Exception):
                    await self.close_channel(session)  # BYE
                back = self.upper.devices.get(session.device_id) if self.upper is not None else None
                if back is None or not back.online:  # the runner's last health said online
                    await asyncio.to_thread(self._camera_offline, camera.id)
            await self._wait_retry(session.device_id, retry)

    async def _start_runner(
        self, camera: CameraConfig, scene_ids: dict[str, int], source: GbMediaSource
    ) -> CameraRunner:
        def factory(_camera: CameraConfig, rate: float) -> GbMediaSource:
            source.sample_fps = rate
            return source

        open_keys = await asyncio.to_thread(self._recorder.open_event_keys)
        self.sources[camera.id] = source  # start_camera's listener moves relays of this camera to it
        return await asyncio.to_thread(
            self._analytics.start_camera, camera, scene_ids, open_keys, None, factory
        )

    def _stop_runner(self, camera_id: str, runner: CameraRunner) -> None:
        runner.stop()
        analytics = self._analytics
        if analytics.runners.get(camera_id) is runner:
            analytics.runners.pop(camera_id, None)

    def _ended(self, session: PlaySession, source: GbMediaSource, runner: CameraRunner) -> bool:
        dev = self.upper.devices.get(session.device_id) if self.upper is not None else None
        return (
            session.closed  # the device sent BYE
            or dev is None
            or not dev.online
            or not runner.alive()  # the media session ended (TCP closed)
            or source.health.stalls > 0  # no media for the stall timeout
        )

    def _feed(self, channel_id: str) -> CameraFeed:
        """The access units of a channel shared upwards: an analysed GB channel's live source, or the
        packet feed of a running RTSP camera (remuxed as they are, never transcoded). The relay follows
        the camera when its runner restarts (an edited camera): see :class:`CameraFeed`."""
        for shares in self._shares.values():
            camera_id = shares.get(channel_id)
            if camera_id is None:
                continue
            if self.current_feed(camera_id) is None and camera_id not in self._players:
                self._pull(camera_id, channel_id)  # StreamUnavailable (480) when it cannot be
            return CameraFeed(self, camera_id)  # follows the stream as soon as it is there
        raise LookupError(f"no live stream for {channel_id}: it is not shared to this superior")

    def _pull(self, camera_id: str, channel_id: str) -> None:
        """A superior asks for a shared camera that has no stream: a GB channel of a registered device
        is INVITEd now (played until the last superior hangs up, see ``release_pull``); otherwise
        StreamUnavailable says why (a short read of the camera's row, on the loop)."""
        where = f"camera {camera_id} (shared as {channel_id})"
        with self._db.session() as s:
            row = s.get(Camera, camera_id)
            if row is None or row.status == "removed":
                raise StreamUnavailable(f"{where} does not exist; remove it from the shares")
            state, enabled = row.status, row.enabled
            gb = is_gb_camera(row.stream_url or "", None, row.gb_channel_id)
            camera = camera_config(row) if gb else None
        if not enabled:
            raise StreamUnavailable(f"{where} is disabled; enable it to relay it")
        if camera is None:  # an RTSP camera that is not running (its last error may name the
            # stream's address: not repeated here)
            raise StreamUnavailable(f"{where} has no live stream now ({state}); try again later")
        device, _ = self.device_of(camera)
        dev = self.upper.devices.get(device) if self.upper is not None and device else None
        if dev is None or not dev.online:
            raise StreamUnavailable(f"{where}: its GB/T 28181 device is not registered or offline; try later")
        log.info("%s: played for a superior", where)
        self.analyse(camera.model_copy(update={"scenes": []}), {})
        self._pulled.add(camera_id)

    def release_pull(self, camera_id: str) -> None:
        """The last relay of a camera played for superiors ended: stop playing it (BYE). Any thread."""
        if camera_id not in self._pulled or self._loop is None:
            return

        def release() -> None:
            with self._followers_lock:
                if self._followers.get(camera_id):
                    return  # another superior still watches
            if camera_id in self._pulled:
                self._pulled.discard(camera_id)
                self._spawn(self.stop_playing(camera_id), f"gb28181-release-{camera_id}")
                log.info("camera %s: no superior watches it any more; stopped", camera_id)

        self._loop.call_soon_threadsafe(release)

    def current_feed(self, camera_id: str) -> UnitFeed | None:
        source = self.sources.get(camera_id)
        return source if source is not None else self.packet_feed(camera_id)

    def feed_changed(self, camera_id: str) -> None:
        """Move the relays of a camera to its current feed (any thread)."""
        with self._followers_lock:
            followers = list(self._followers.get(camera_id, ()))
        if followers:
            feed = self.current_feed(camera_id)
            for follower in followers:
                follower.attach(feed)

    def _on_runner(self, camera_id: str, runner: CameraRunner) -> None:
        """``Analytics.start_camera`` (a worker thread): a camera got a new runner, and a new feed."""
        self.feed_changed(camera_id)

    def packet_feed(self, camera_id: str) -> PacketFeed | None:
        """The live packet feed of a running RTSP camera (attached by ``Analytics.start_camera``)."""
        runner = self._analytics.runners.get(camera_id)
        tap = getattr(runner.source, "tap", None) if runner is not None else None
        return tap if isinstance(tap, PacketFeed) else None

    # ------------------------------------------------------------------------------------ cascade

    def link(self, platform: str) -> CascadeLink | None:
        if self.cascade is None:
            return None
        return self.cascade.links.get(platform)

    async def send_alarm(self, platform: str, record: dict[str, Any], key: str) -> tuple[bool, str]:
        """The ``gb28181`` uplink target's sender: one alarm revision to a superior (MESSAGE Alarm),
        delivered only on the superior's Response."""
        link = self.link(platform)
        if link is None or not link.registered:
            return False, f"unavailable: no GB/T 28181 cascade registration to platform {platform!r}"
        kind = record.get("type") or {}
        camera_id = str((record.get("camera") or {}).get("id") or "")
        # The id this tier assigned to the camera; an unshared camera alarms as our platform itself.
        channel = self._camera_ids.get(platform, {}).get(camera_id, link.config.local_id)
        gb_type = kind.get("gb_alarm_type")
        result = await link.send_alarm(
            channel,
            # None leaves <Info><AlarmType> out (the codec accepts it; the annotation says int).
            alarm_type=cast(int, None if gb_type is None else int(gb_type)),
            method=int(kind.get("gb_alarm_method") or 5),
            priority=gb_priority(int(record.get("priority") or 0)),
            description=alarm_description(record),
            # when it happened (a device's AlarmTime, the first frame of the event), not when stored
            time=local_gb_time(record.get("occurred_at") or record.get("raised_at"), self._site.timezone),
        )
        log.info("alarm %s to %s: %s", key, platform, result.reason)
        return result.delivered, result.reason
