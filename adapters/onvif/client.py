"""An asyncio ONVIF client: device information, media profiles, stream/snapshot URIs and PTZ state.

A thin wrapper over onvif-zeep-async, so the library can be swapped. It always measures the camera's
clock first (``adjust_time=True``): cameras reject a WS-UsernameToken whose Created time is more than a
few seconds off their own clock, and plant cameras often drift or lose their clock on reboot. Every
library error, including those it lets escape outside ``ONVIFError`` (zeep faults, aiohttp errors, raw
parse errors), becomes one of three errors whose message names the device (never its credentials) and
what to do.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp
import zeep.exceptions
from lxml import etree
from onvif import ONVIFCamera
from onvif.exceptions import ONVIFAuthError, ONVIFError, ONVIFTimeoutError
from onvif.util import is_auth_error, stringify_onvif_error

from adapters.redact import redact_text

if TYPE_CHECKING:
    from adapters.onvif.events import PullPointSubscription

log = logging.getLogger(__name__)

PTZ_NAMESPACE = "http://www.onvif.org/ver20/ptz/wsdl"
NAT_CHECK_S = 2.0  # how long an advertised service address may take to accept a connection
EVENTS_NAMESPACE = "http://www.onvif.org/ver10/events/wsdl"
_STREAM_SETUP = {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}}


class OnvifError(Exception):
    """An ONVIF device could not be used; the message says which device and what to do."""


class OnvifAuthError(OnvifError):
    """The device refused the credentials (or the clock, beyond what clock adjustment fixes)."""


class OnvifUnreachable(OnvifError):
    """Nothing answered at the address, or it did not answer in time."""


class OnvifProtocolError(OnvifError):
    """Something answered, but not with ONVIF SOAP (a web UI page, garbage, the wrong port)."""


@dataclass(frozen=True)
class DeviceInfo:
    manufacturer: str
    model: str
    firmware: str
    serial: str
    hardware_id: str


@dataclass(frozen=True)
class MediaProfile:
    token: str
    name: str
    encoding: str | None
    width: int | None
    height: int | None
    fps: float | None
    has_ptz: bool

    @property
    def pixels(self) -> int:
        return (self.width or 0) * (self.height or 0)


@dataclass(frozen=True)
class PtzStatus:
    pan: float | None
    tilt: float | None
    zoom: float | None
    pan_tilt_move: str | None  # IDLE, MOVING or UNKNOWN
    zoom_move: str | None


@dataclass(frozen=True)
class OnvifCamera:
    """Everything ``probe`` learns about one device."""

    host: str
    port: int
    info: DeviceInfo
    profiles: list[MediaProfile]
    main: MediaProfile
    sub: MediaProfile | None  # None when the device has a single profile
    main_stream_uri: str
    sub_stream_uri: str | None
    snapshot_uri: str | None
    ptz: PtzStatus | None
    clock_offset: dt.timedelta | None  # device clock minus host clock, as measured at connect
    # The device advertised service addresses that do not answer (its LAN address behind NAT or port
    # forwarding): they were rewritten to the address that answered (``host:port``).
    behind_nat: bool = False


def insert_credentials(uri: str, user: str, password: str) -> str:
    """Put user:password into a URI's authority (replacing any there), percent-encoded."""
    parts = urlsplit(uri)
    host = parts.netloc.rpartition("@")[2]
    userinfo = f"{quote(user, safe='')}:{quote(password, safe='')}@" if user else ""
    return urlunsplit((parts.scheme, userinfo + host, parts.path, parts.query, parts.fragment))


class OnvifClient:
    """One connection to one ONVIF device; use as ``async with OnvifClient(...) as client``.

    ``nat``: a device behind NAT or port forwarding advertises service addresses (XAddrs, snapshot and
    stream URIs) on its own network that cannot be reached from here. ``None`` (auto) checks whether the
    advertised addresses other than ``host:port`` accept a connection and, if not, uses ``host:port`` for
    every service (and ``host`` for the RTSP streams); ``True`` always does, ``False`` never."""

    def __init__(
        self,
        host: str,
        port: int,
        user: str,
        password: str,
        *,
        timeout_s: float = 10.0,
        nat: bool | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self._user = user
        self._password = password
        self.timeout_s = timeout_s  # per ONVIF call
        self.nat = nat
        self.behind_nat = False
        self._camera: ONVIFCamera | None = None
        self._subscriptions: set[PullPointSubscription] = set()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def clock_offset(self) -> dt.timedelta | None:
        return self._camera.dt_diff if self._camera is not None else None

    async def connect(self) -> None:
        """Measure the device clock and learn its service addresses (GetSystemDateAndTime, GetServices)."""
        if self._camera is not None:
            return
        camera = ONVIFCamera(
            self.host,
            self.port,
            self._user,
            self._password,
            no_cache=True,
            adjust_time=True,
            nat_override=bool(self.nat),
        )
        self._camera = camera  # set first so an auth error can report the measured clock offset
        try:
            await self._call("connect", camera.update_xaddrs())
            if self.nat is None and await self._advertised_unreachable(camera):
                camera.nat_override = True
                camera.xaddrs = {ns: camera.rewrite_url(url) for ns, url in camera.xaddrs.items()}
        except BaseException:
            self._camera = None
            await camera.close()
            raise
        self.behind_nat = bool(camera.nat_override)

    async def _advertised_unreachable(self, camera: ONVIFCamera) -> bool:
        """Whether a service address the device advertised (other than the one we reached it at)
        refuses or ignores a TCP connection: then it sits behind NAT or port forwarding."""
        others = set()
        for url in camera.xaddrs.values():
            parts = urlsplit(url or "")
            default = 443 if parts.scheme == "https" else 80
            if parts.hostname and (parts.hostname, parts.port or default) != (self.host, self.port):
                others.add((parts.hostname, parts.port or default))
        for host, port in sorted(others):
            try:
                async with asyncio.timeout(NAT_CHECK_S):
                    _, writer = await asyncio.open_connection(host, port)
                writer.close()
            except (OSError, TimeoutError):
                log.info(
                    "ONVIF device at %s advertises %s:%s, which does not answer here (NAT or port "
                    "forwarding): its services are used through %s",
                    self.address,
                    host,
                    port,
                    self.address,
                )
                return True
        return False

    def _reachable(self, uri: str, *, keep_port: bool = False) -> str:
        """An address the device gave, as reachable from here: behind NAT, through ``host`` (and
        ``port``, except for RTSP whose port is forwarded on its own)."""
        if not self.behind_nat:
            return uri
        parts = urlsplit(uri)
        if not parts.hostname:
            return uri
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = parts.port if keep_port else self.port
        netloc = f"{host}:{port}" if port else host
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))

    async def close(self) -> None:
        """Unsubscribe what is still subscribed (best effort), then close the connections."""
        for subscription in list(self._subscriptions):
            await subscription.close()
        if self._camera is not None:
            camera, self._camera = self._camera, None
            await camera.close()

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def device_info(self) -> DeviceInfo:
        device = await self._service("devicemgmt")
        info = await self._call("GetDeviceInformation", device.GetDeviceInformation())
        return DeviceInfo(
            manufacturer=_text(info, "Manufacturer"),
            model=_text(info, "Model"),
            firmware=_text(info, "FirmwareVersion"),
            serial=_text(info, "SerialNumber"),
            hardware_id=_text(info, "HardwareId"),
        )

    async def profiles(self) -> list[MediaProfile]:
        media = await self._service("media")
        return [_profile(p) for p in await self._call("GetProfiles", media.GetProfiles()) or []]

    async def stream_uri(self, profile_token: str, *, with_credentials: bool = False) -> str:
        """The RTSP URI of a profile, as the camera gave it unless ``with_credentials``."""
        media = await self._service("media")
        answer = await self._call(
            "GetStreamUri", media.GetStreamUri({"StreamSetup": _STREAM_SETUP, "ProfileToken": profile_token})
        )
        uri = getattr(answer, "Uri", None)
        if not uri:
            raise OnvifProtocolError(f"the device at {self.address} answered GetStreamUri without a URI")
        return self._credentials(self._reachable(str(uri), keep_port=True), with_credentials)

    async def snapshot_uri(self, profile_token: str, *, with_credentials: bool = False) -> str | None:
        """The JPEG snapshot URI of a profile, or None when the device offers none."""
        media = await self._service("media")
        try:
            answer = await self._call("GetSnapshotUri", media.GetSnapshotUri({"ProfileToken": profile_token}))
        except OnvifError as exc:
            # Snapshots are optional (ActionNotSupported); only a credentials problem is worth raising.
            if isinstance(exc, OnvifAuthError | OnvifUnreachable):
                raise
            return None
        uri = getattr(answer, "Uri", None)
        return self._credentials(self._reachable(str(uri)), with_credentials) if uri else None

    async def ptz_status(self, profile_token: str) -> PtzStatus | None:
        """Current pan/tilt/zoom of a profile, or None when the device (or the profile) has no PTZ."""
        camera = await self._connected()
        if PTZ_NAMESPACE not in camera.xaddrs:
            return None
        ptz = await self._service("ptz")
        try:
            status = await self._call("GetStatus", ptz.GetStatus({"ProfileToken": profile_token}))
        except OnvifError as exc:
            # A profile without a PTZ configuration faults (ter:NoPTZProfile): that means "no PTZ".
            if isinstance(exc, OnvifAuthError | OnvifUnreachable):
                raise
            return None
        position = getattr(status, "Position", None)
        pan_tilt = getattr(position, "PanTilt", None)
        zoom = getattr(position, "Zoom", None)
        moving = getattr(status, "MoveStatus", None)
        return PtzStatus(
            pan=_float(getattr(pan_tilt, "x", None)),
            tilt=_float(getattr(pan_tilt, "y", None)),
            zoom=_float(getattr(zoom, "x", None)),
            pan_tilt_move=_opt_text(getattr(moving, "PanTilt", None)),
            zoom_move=_opt_text(getattr(moving, "Zoom", None)),
        )

    async def _ptz(self) -> Any:
        camera = await self._connected()
        if PTZ_NAMESPACE not in camera.xaddrs:
            raise OnvifProtocolError(
                f"the device at {self.address} has no PTZ service: it cannot pan or tilt"
            )
        return await self._service("ptz")

    async def continuous_move(self, profile_token: str, pan: float, tilt: float, zoom: float) -> None:
        """Start moving at these velocities (-1..1, ONVIF generic velocity spaces) until ``stop``."""
        ptz = await self._ptz()
        velocity: dict[str, Any] = {}
        if pan or tilt:
            velocity["PanTilt"] = {"x": _unit(pan), "y": _unit(tilt)}
        if zoom:
            velocity["Zoom"] = {"x": _unit(zoom)}
        await self._call(
            "ContinuousMove", ptz.ContinuousMove({"ProfileToken": profile_token, "Velocity": velocity})
        )

    async def stop(self, profile_token: str) -> None:
        ptz = await self._ptz()
        await self._call("Stop", ptz.Stop({"ProfileToken": profile_token, "PanTilt": True, "Zoom": True}))

    async def presets(self, profile_token: str) -> list[tuple[str, str]]:
        """The device's presets as (token, name)."""
        ptz = await self._ptz()
        answer = await self._call("GetPresets", ptz.GetPresets({"ProfileToken": profile_token}))
        return [(str(p.token), _text(p, "Name")) for p in answer or [] if getattr(p, "token", None)]

    async def set_preset(self, profile_token: str, name: str, token: str | None = None) -> str:
        """Store the current position as a preset (a new one, or ``token`` overwritten); its token."""
        ptz = await self._ptz()
        request: dict[str, Any] = {"ProfileToken": profile_token, "PresetName": name}
        if token:
            request["PresetToken"] = token
        answer = await self._call("SetPreset", ptz.SetPreset(request))
        return str(answer)

    async def goto_preset(self, profile_token: str, token: str) -> None:
        ptz = await self._ptz()
        await self._call("GotoPreset", ptz.GotoPreset({"ProfileToken": profile_token, "PresetToken": token}))

    async def remove_preset(self, profile_token: str, token: str) -> None:
        ptz = await self._ptz()
        await self._call(
            "RemovePreset", ptz.RemovePreset({"ProfileToken": profile_token, "PresetToken": token})
        )

    async def events_supported(self) -> bool:
        """Whether the device advertises the ONVIF Events service (GetServices or GetCapabilities)."""
        camera = await self._connected()
        return EVENTS_NAMESPACE in camera.xaddrs

    def pullpoint(
        self,
        *,
        ttl: dt.timedelta = dt.timedelta(seconds=60),
        pull_timeout: dt.timedelta = dt.timedelta(seconds=5),
        message_limit: int = 50,
    ) -> PullPointSubscription:
        """A PullPoint event subscription (not yet created): ``async with client.pullpoint() as events``.

        It is renewed before it terminates and unsubscribed on close, or when this client closes.
        """
        from adapters.onvif.events import PullPointSubscription

        return PullPointSubscription(self, ttl=ttl, pull_timeout=pull_timeout, message_limit=message_limit)

    async def probe(self, *, with_credentials: bool = False) -> OnvifCamera:
        """Gather device info, profiles, main (highest resolution) and sub (lowest) streams, snapshot, PTZ."""
        info = await self.device_info()
        profiles = await self.profiles()
        if not profiles:
            raise OnvifProtocolError(
                f"the device at {self.address} reports no media profiles; configure a stream on the camera"
            )
        ranked = sorted(profiles, key=lambda p: p.pixels)
        main, sub = ranked[-1], (ranked[0] if len(ranked) > 1 else None)
        return OnvifCamera(
            host=self.host,
            port=self.port,
            info=info,
            profiles=profiles,
            main=main,
            sub=sub,
            main_stream_uri=await self.stream_uri(main.token, with_credentials=with_credentials),
            sub_stream_uri=(
                await self.stream_uri(sub.token, with_credentials=with_credentials) if sub else None
            ),
            snapshot_uri=await self.snapshot_uri(main.token, with_credentials=with_credentials),
            ptz=await self.ptz_status(main.token) if main.has_ptz else None,
            clock_offset=self.clock_offset,
            behind_nat=self.behind_nat,
        )

    # -- internals ------------------------------------------------------------------------------------

    async def _connected(self) -> ONVIFCamera:
        await self.connect()
        assert self._camera is not None
        return self._camera

    async def _service(self, name: str) -> Any:
        camera = await self._connected()
        return await self._call(f"the {name} service", camera.create_onvif_service(name))

    def _credentials(self, uri: str, wanted: bool) -> str:
        return insert_credentials(uri, self._user, self._password) if wanted else uri

    async def _call(self, what: str, call: Any, timeout_s: float | None = None) -> Any:
        """Await one library call within the timeout, turning whatever it raises into an OnvifError."""
        try:
            async with asyncio.timeout(timeout_s or self.timeout_s):
                return await call
        except OnvifError:
            raise
        except Exception as exc:  # the library raises far outside ONVIFError; classify all of it
            raise self._classify(what, exc) from exc

    def _classify(self, what: str, exc: BaseException) -> OnvifError:
        where = f"the device at {self.address}"
        root = exc
        # safe_func wraps synchronous failures in ONVIFError; the cause is what tells them apart.
        while type(root) is ONVIFError and root.__cause__ is not None:
            root = root.__cause__
        if isinstance(root, ONVIFAuthError) or (
            isinstance(root, zeep.exceptions.Fault) and is_auth_error(root)
        ):
            offset = self.clock_offset
            if offset is not None:
                clock = (
                    f"if it is right, the camera clock may be jumping while we connect (it is "
                    f"{_format_offset(offset)} ours, already compensated): set NTP on the camera and retry"
                )
            else:
                # The clock could not be read before authenticating, so its offset cannot be compensated.
                clock = (
                    "if it is right, the camera clock may be off: it would not tell its time without "
                    "authentication, so the offset cannot be compensated; set NTP or the clock on the camera"
                )
            return OnvifAuthError(
                f"{where} rejected the user name or password ({what}): check the ONVIF user on the camera, "
                f"which is often separate from the web UI user; {clock}"
            )
        if isinstance(root, TimeoutError | ONVIFTimeoutError):
            return OnvifUnreachable(
                f"{where} did not answer {what} within {self.timeout_s:g} s: "
                "check that it is on and reachable"
            )
        if isinstance(root, aiohttp.ClientConnectionError | OSError):
            detail = self._safe(str(root) or type(root).__name__)
            return OnvifUnreachable(
                f"nothing answered at {self.address} ({what}: {detail}): "
                "check the address and the ONVIF port (often 80, 8000 or 8080), and that ONVIF is enabled"
            )
        if isinstance(root, zeep.exceptions.TransportError):
            if root.status_code == 401:
                return OnvifAuthError(
                    f"{where} asked for HTTP authentication ({what}): check the user name and password, "
                    "and whether the camera needs HTTP digest instead of WS-Security"
                )
            body = root.content if isinstance(root.content, bytes) else b""
            return self._not_soap(what, body, root.status_code)
        # zeep parsed well-formed (X)HTML and complains that the root element is html, not an Envelope.
        if isinstance(root, zeep.exceptions.XMLSyntaxError) and str(root).rstrip().lower().endswith("html"):
            return self._not_soap(what, b"<html", 200)
        if isinstance(
            root,
            zeep.exceptions.XMLSyntaxError
            | zeep.exceptions.XMLParseError
            | zeep.exceptions.ValidationError
            | etree.XMLSyntaxError
            | AttributeError
            | ValueError,
        ):
            # onvif-zeep-async lets empty or malformed bodies escape as AttributeError from the XML loader.
            return OnvifProtocolError(
                f"{where} answered {what} with something that is not valid ONVIF SOAP "
                f"({self._safe(str(root))[:200]}): check that the port is the camera's ONVIF port"
            )
        if isinstance(root, zeep.exceptions.Fault) and root.code is None:
            # zeep turns a non-200 answer that lxml could recover but holds no SOAP Fault (a web server's
            # HTML error page) into a code-less "Unknown fault" quoting the body.
            return self._not_soap(what, stringify_onvif_error(root).encode(), None, "XML that is not SOAP")
        if isinstance(root, zeep.exceptions.Fault):
            return OnvifError(f"{where} refused {what}: {self._safe(stringify_onvif_error(root))}")
        return OnvifError(f"{where} failed {what}: {type(root).__name__}: {self._safe(str(root))[:200]}")

    def _not_soap(
        self, what: str, body: bytes, status: int | None, other: str = "bytes that are not XML"
    ) -> OnvifProtocolError:
        head = body[:512].lstrip().lower()
        if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
            kind = "HTML"
        elif not head:
            kind = f"an empty HTTP {status} response"
        else:
            kind = other
        return OnvifProtocolError(
            f"the device at {self.address} answered with {kind}, not ONVIF SOAP ({what}): this is probably "
            "the web UI port or another service; use the camera's ONVIF port and check that ONVIF is enabled"
        )

    def _safe(self, text: str) -> str:
        text = redact_text(text)
        return text.replace(self._password, "***") if self._password else text


async def probe(
    host: str,
    port: int,
    user: str,
    password: str,
    *,
    timeout_s: float = 10.0,
    with_credentials: bool = False,
) -> OnvifCamera:
    """Connect, gather everything about the device, disconnect."""
    async with OnvifClient(host, port, user, password, timeout_s=timeout_s) as client:
        return await client.probe(with_credentials=with_credentials)


async def device_info(
    host: str, port: int, user: str, password: str, *, timeout_s: float = 10.0
) -> DeviceInfo:
    async with OnvifClient(host, port, user, password, timeout_s=timeout_s) as client:
        return await client.device_info()


async def profiles(
    host: str, port: int, user: str, password: str, *, timeout_s: float = 10.0
) -> list[MediaProfile]:
    async with OnvifClient(host, port, user, password, timeout_s=timeout_s) as client:
        return await client.profiles()


def _text(obj: Any, name: str) -> str:
    value = getattr(obj, name, None)
    return "" if value is None else str(value).strip()


def _opt_text(value: Any) -> str | None:
    return None if value is None else str(value)


def _unit(value: float) -> float:
    return max(-1.0, min(1.0, float(value)))


def _float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _profile(raw: Any) -> MediaProfile:
    encoder = getattr(raw, "VideoEncoderConfiguration", None)
    resolution = getattr(encoder, "Resolution", None)
    rate = getattr(encoder, "RateControl", None)
    width, height = getattr(resolution, "Width", None), getattr(resolution, "Height", None)
    fps = _float(getattr(rate, "FrameRateLimit", None))
    return MediaProfile(
        token=str(raw.token),
        name=_text(raw, "Name"),
        encoding=_opt_text(getattr(encoder, "Encoding", None)),
        width=int(width) if width is not None else None,
        height=int(height) if height is not None else None,
        fps=fps or None,
        has_ptz=getattr(raw, "PTZConfiguration", None) is not None,
    )


def _format_offset(offset: dt.timedelta) -> str:
    seconds = round(offset.total_seconds())
    sign = "ahead of" if seconds >= 0 else "behind"
    hours, rest = divmod(abs(seconds), 3600)
    return f"{hours}h{rest // 60:02d}m{rest % 60:02d}s {sign}"
