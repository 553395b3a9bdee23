"""A small ONVIF device on loopback for the adapter tests: SOAP 1.2 on aiohttp plus a WS-Discovery responder.

It answers what ``adapters.onvif`` asks (device management, Media ver10, PTZ ver20) with envelopes shaped
like the examples in the ONVIF Core/Media/PTZ specifications, checks WS-UsernameToken PasswordDigest
against its own clock (``clock_offset`` ahead of the host, 3 hours by default), and records every SOAP
action it receives. ``mode`` makes it misbehave like real devices: ``"html"`` answers with a camera web UI
page, ``"html_404"`` with a web server's error page, ``"garbage"`` with bytes that are not XML. With
``events`` it offers the Events service (PullPoint subscriptions: Create, PullMessages, Renew,
Unsubscribe); ``emit_motion`` queues a CellMotionDetector event and ``set_ptz`` moves the PTZ head.
PTZ control (ContinuousMove, Stop, GetPresets, SetPreset, GotoPreset, RemovePreset) is recorded in
``moves`` and moves the head. ``advertise`` (``http://host:port``) is the address it writes into its
XAddrs and snapshot URI instead of its own, like a camera behind NAT or port forwarding.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass, field
from typing import Literal, cast

from aiohttp import web
from lxml import etree

SOAP_ENV = "http://www.w3.org/2003/05/soap-envelope"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
WSA = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
WSD = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
DIGEST_TYPE = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
)
NS_DECL = (
    f'xmlns:env="{SOAP_ENV}" xmlns:tt="http://www.onvif.org/ver10/schema" '
    'xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:trt="http://www.onvif.org/ver10/media/wsdl" '
    'xmlns:tptz="http://www.onvif.org/ver20/ptz/wsdl" xmlns:ter="http://www.onvif.org/ver10/error" '
    'xmlns:tev="http://www.onvif.org/ver10/events/wsdl" xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2" '
    'xmlns:wsa5="http://www.w3.org/2005/08/addressing" xmlns:tns1="http://www.onvif.org/ver10/topics"'
)
WSNT = "http://docs.oasis-open.org/wsn/b-2"
EVENTS_NS = "http://www.onvif.org/ver10/events/wsdl"
MOTION_TOPIC = "tns1:RuleEngine/CellMotionDetector/Motion"
MAX_PULL_WAIT = dt.timedelta(seconds=5)
# ONVIF Core 5.9.4: these may be called before authentication (the clock is needed to authenticate).
PRE_AUTH = {"GetSystemDateAndTime"}
SUBSCRIPTION_CALLS = {"Renew", "Unsubscribe"}
MAX_SKEW = dt.timedelta(seconds=5)
DEVICE_UUID = "urn:uuid:2419d68a-2dd2-21b2-a205-ec1b2c3d4e5f"
SCOPES = (
    "onvif://www.onvif.org/type/video_encoder onvif://www.onvif.org/Profile/Streaming "
    "onvif://www.onvif.org/name/Tank%20Farm%20East onvif://www.onvif.org/location/Plant-A/Tank-Farm "
    "onvif://www.onvif.org/hardware/DS-2DE4425IW onvif://www.onvif.org/MAC/ec:1b:2c:3d:4e:5f"
)
HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Network Camera</title></head>"
    b"<body><div id='login'>Please log in</div><script src='/doc/js/login.js'></script></body></html>\n"
)
HTML_404 = b"<html><head><title>404 Not Found</title></head><body><h1>Not Found<br></h1><hr></body></html>"
GARBAGE = b"\x00\x17\xfe garbage \xff\x01 not xml at all \x8f\x00"

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


def _xml(text: bytes) -> etree._Element:
    return etree.fromstring(text, _PARSER)


def envelope(body: str, header: str = "") -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<env:Envelope {NS_DECL}>'
        f"<env:Header>{header}</env:Header><env:Body>{body}</env:Body></env:Envelope>"
    )


def fault(code: str, subcode: str, reason: str) -> str:
    return envelope(
        "<env:Fault><env:Code>"
        f"<env:Value>{code}</env:Value><env:Subcode><env:Value>{subcode}</env:Value></env:Subcode>"
        f'</env:Code><env:Reason><env:Text xml:lang="en">{reason}</env:Text></env:Reason></env:Fault>'
    )


@dataclass(frozen=True)
class Profile:
    token: str
    name: str
    width: int
    height: int
    fps: int
    bitrate_kbps: int


PROFILES = (
    Profile("Profile_1", "mainStream", 1920, 1080, 25, 4096),
    Profile("Profile_2", "subStream", 640, 360, 15, 512),
)


class NoPreset(Exception):
    """A PTZ call named a preset token the device does not have (ter:NoToken)."""


@dataclass
class OnvifDevice:
    """The device: ``await start()``, then ``port`` / ``discovery_port``; ``await stop()``."""

    user: str = "admin"
    password: str = "Fl4re-Stack!"
    clock_offset: dt.timedelta = dt.timedelta(hours=3)
    mode: Literal["onvif", "html", "html_404", "garbage"] = "onvif"
    ptz: bool = True
    get_services: bool = True
    clock_needs_auth: bool = False  # some firmwares demand auth even for GetSystemDateAndTime
    events: bool = True
    ptz_position: tuple[float, float, float] = (0.25, -0.5, 0.1)
    ptz_moving: bool = False
    advertise: str | None = None
    presets: dict[str, tuple[str, tuple[float, float, float]]] = field(default_factory=dict)
    moves: list[tuple[str, ...]] = field(default_factory=list)
    # subscription id -> termination time (device clock); removed on Unsubscribe
    subscriptions: dict[str, dt.datetime] = field(default_factory=dict)
    _queues: dict[str, list[str]] = field(default_factory=dict)
    _wakeup: asyncio.Event | None = None
    _next_subscription: int = 0
    actions: list[str] = field(default_factory=list)
    port: int = 0
    discovery_port: int = 0
    _runner: web.AppRunner | None = None
    _udp: asyncio.DatagramTransport | None = None

    @property
    def address(self) -> str:
        return self.advertise or f"http://127.0.0.1:{self.port}"

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.clock_offset

    def set_ptz(self, pan: float, tilt: float, zoom: float, moving: bool = False) -> None:
        self.ptz_position = (pan, tilt, zoom)
        self.ptz_moving = moving

    def emit_motion(self, is_motion: bool, source: str = "VideoSourceConfig_1") -> None:
        """Queue a CellMotionDetector event (ONVIF Core, Motion detection) for every live subscription."""
        stamp = self.now().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        message = (
            "<wsnt:NotificationMessage><wsnt:Topic "
            'Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet">'
            f"{MOTION_TOPIC}</wsnt:Topic><wsnt:Message>"
            f'<tt:Message UtcTime="{stamp}" PropertyOperation="Changed"><tt:Source>'
            f'<tt:SimpleItem Name="VideoSourceConfigurationToken" Value="{source}"/>'
            '<tt:SimpleItem Name="VideoAnalyticsConfigurationToken" Value="VideoAnalyticsToken"/>'
            '<tt:SimpleItem Name="Rule" Value="MyMotionDetectorRule"/></tt:Source>'
            f'<tt:Data><tt:SimpleItem Name="IsMotion" Value="{str(is_motion).lower()}"/></tt:Data>'
            "</tt:Message></wsnt:Message></wsnt:NotificationMessage>"
        )
        for queue in self._queues.values():
            queue.append(message)
        if self._wakeup is not None:
            self._wakeup.set()

    async def start(self) -> None:
        app = web.Application()
        self._wakeup = asyncio.Event()
        app.router.add_post("/onvif/{service}", self._handle)
        app.router.add_get("/", self._web_ui)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = cast(asyncio.Server | None, site._server)
        assert server is not None and server.sockets
        self.port = server.sockets[0].getsockname()[1]
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _DiscoveryResponder(self), local_addr=("127.0.0.1", 0)
        )
        self._udp = transport
        self.discovery_port = transport.get_extra_info("sockname")[1]

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- HTTP ------------------------------------------------------------------------------------------

    async def _web_ui(self, request: web.Request) -> web.Response:
        return web.Response(body=HTML_PAGE, content_type="text/html")

    async def _handle(self, request: web.Request) -> web.Response:
        if self.mode == "html":
            # A camera web UI that answers every path with its (well-formed) login page.
            return web.Response(body=HTML_PAGE, content_type="text/html")
        if self.mode == "html_404":
            # A plain web server's error page: HTML that is not even well-formed XML.
            return web.Response(body=HTML_404, status=404, content_type="text/html")
        if self.mode == "garbage":
            return web.Response(body=GARBAGE, content_type="application/octet-stream")
        try:
            doc = _xml(await request.read())
            body = doc.find(f"{{{SOAP_ENV}}}Body")
            call = body[0] if body is not None and len(body) else None
        except etree.XMLSyntaxError:
            call = None
        if call is None:
            return self._soap(fault("env:Sender", "ter:WellFormed", "Malformed SOAP message"), 400)
        action = etree.QName(call).localname
        self.actions.append(action)
        public = action in PRE_AUTH and not self.clock_needs_auth
        if not public and not self._authorized(doc):
            return self._soap(fault("env:Sender", "ter:NotAuthorized", "Sender not Authorized"), 400)
        answer = getattr(self, f"_{action}", None)
        if answer is None or (action == "GetServices" and not self.get_services):
            return self._soap(
                fault("env:Receiver", "ter:ActionNotSupported", "Optional Action Not Implemented"), 500
            )
        try:
            if action == "PullMessages":
                return self._soap(envelope(await self._PullMessages(request, call)))
            if action in SUBSCRIPTION_CALLS:
                return self._soap(answer(call, request))
            return self._soap(envelope(answer(call)))
        except NoPreset:
            return self._soap(fault("env:Sender", "ter:InvalidArgVal", "No such preset token"), 400)
        except LookupError:
            return self._soap(
                fault("env:Receiver", "wsrf-rw:ResourceUnknownFault", "Unknown subscription"), 400
            )

    @staticmethod
    def _soap(text: str, status: int = 200) -> web.Response:
        return web.Response(text=text, status=status, content_type="application/soap+xml", charset="utf-8")

    def _authorized(self, doc: etree._Element) -> bool:
        token = doc.find(f".//{{{WSSE}}}UsernameToken")
        if token is None:
            return False
        user = token.findtext(f"{{{WSSE}}}Username") or ""
        password = token.find(f"{{{WSSE}}}Password")
        nonce = token.findtext(f"{{{WSSE}}}Nonce") or ""
        created = token.findtext(f"{{{WSU}}}Created") or ""
        if password is None or password.get("Type") != DIGEST_TYPE or user != self.user:
            return False
        try:
            created_at = dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
            raw_nonce = base64.b64decode(nonce, validate=True)
        except ValueError:
            return False
        if created_at.tzinfo is None:
            created_at = created_at.replace(tzinfo=dt.UTC)
        # Replay window checked against the device's own clock, as cameras do.
        if abs(created_at - self.now()) > MAX_SKEW:
            return False
        # Digest = Base64(SHA-1(nonce + created + password)), WS-Security UsernameToken Profile 1.0 §3.1.
        digest = base64.b64encode(
            hashlib.sha1(
                raw_nonce + created.encode() + self.password.encode(), usedforsecurity=False
            ).digest()
        ).decode()
        return hmac.compare_digest(digest, password.text or "")

    # -- device management ----------------------------------------------------------------------------

    def _GetSystemDateAndTime(self, call: etree._Element) -> str:
        now = self.now()
        return (
            "<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime>"
            "<tt:DateTimeType>Manual</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings>"
            "<tt:TimeZone><tt:TZ>UTC0</tt:TZ></tt:TimeZone><tt:UTCDateTime>"
            f"<tt:Time><tt:Hour>{now.hour}</tt:Hour><tt:Minute>{now.minute}</tt:Minute>"
            f"<tt:Second>{now.second}</tt:Second></tt:Time>"
            f"<tt:Date><tt:Year>{now.year}</tt:Year><tt:Month>{now.month}</tt:Month><tt:Day>{now.day}</tt:Day>"
            "</tt:Date></tt:UTCDateTime></tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>"
        )

    def _services(self) -> list[tuple[str, str, int, int]]:
        services = [
            ("http://www.onvif.org/ver10/device/wsdl", "device_service", 2, 60),
            ("http://www.onvif.org/ver10/media/wsdl", "media_service", 2, 60),
        ]
        if self.ptz:
            services.append(("http://www.onvif.org/ver20/ptz/wsdl", "ptz_service", 2, 60))
        if self.events:
            services.append((EVENTS_NS, "event_service", 2, 60))
        return services

    def _GetServices(self, call: etree._Element) -> str:
        items = "".join(
            f"<tds:Service><tds:Namespace>{ns}</tds:Namespace>"
            f"<tds:XAddr>{self.address}/onvif/{path}</tds:XAddr>"
            f"<tds:Version><tt:Major>{major}</tt:Major><tt:Minor>{minor}</tt:Minor></tds:Version></tds:Service>"
            for ns, path, major, minor in self._services()
        )
        return f"<tds:GetServicesResponse>{items}</tds:GetServicesResponse>"

    def _GetCapabilities(self, call: etree._Element) -> str:
        ptz = f"<tt:PTZ><tt:XAddr>{self.address}/onvif/ptz_service</tt:XAddr></tt:PTZ>" if self.ptz else ""
        events = (
            f"<tt:Events><tt:XAddr>{self.address}/onvif/event_service</tt:XAddr>"
            "<tt:WSSubscriptionPolicySupport>false</tt:WSSubscriptionPolicySupport>"
            "<tt:WSPullPointSupport>true</tt:WSPullPointSupport>"
            "<tt:WSPausableSubscriptionManagerInterfaceSupport>false"
            "</tt:WSPausableSubscriptionManagerInterfaceSupport></tt:Events>"
            if self.events
            else ""
        )
        return (
            "<tds:GetCapabilitiesResponse><tds:Capabilities>"
            f"<tt:Device><tt:XAddr>{self.address}/onvif/device_service</tt:XAddr>"
            "<tt:Network><tt:IPFilter>false</tt:IPFilter><tt:ZeroConfiguration>false</tt:ZeroConfiguration>"
            "<tt:IPVersion6>false</tt:IPVersion6><tt:DynDNS>false</tt:DynDNS></tt:Network>"
            "<tt:System><tt:DiscoveryResolve>true</tt:DiscoveryResolve><tt:DiscoveryBye>true</tt:DiscoveryBye>"
            "<tt:RemoteDiscovery>false</tt:RemoteDiscovery><tt:SystemBackup>false</tt:SystemBackup>"
            "<tt:SystemLogging>false</tt:SystemLogging><tt:FirmwareUpgrade>true</tt:FirmwareUpgrade>"
            "<tt:SupportedVersions><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tt:SupportedVersions>"
            "</tt:System></tt:Device>"
            f"{events}"
            f"<tt:Media><tt:XAddr>{self.address}/onvif/media_service</tt:XAddr>"
            "<tt:StreamingCapabilities><tt:RTPMulticast>false</tt:RTPMulticast><tt:RTP_TCP>true</tt:RTP_TCP>"
            "<tt:RTP_RTSP_TCP>true</tt:RTP_RTSP_TCP></tt:StreamingCapabilities></tt:Media>"
            f"{ptz}</tds:Capabilities></tds:GetCapabilitiesResponse>"
        )

    def _GetDeviceInformation(self, call: etree._Element) -> str:
        return (
            "<tds:GetDeviceInformationResponse><tds:Manufacturer>HIKVISION</tds:Manufacturer>"
            "<tds:Model>DS-2DE4425IW-DE</tds:Model>"
            "<tds:FirmwareVersion>V5.7.3 build 220112</tds:FirmwareVersion>"
            "<tds:SerialNumber>DS-2DE4425IW-DE20220315AAWRG12345678</tds:SerialNumber>"
            "<tds:HardwareId>88</tds:HardwareId></tds:GetDeviceInformationResponse>"
        )

    # -- media ----------------------------------------------------------------------------------------

    def _profile_xml(self, p: Profile) -> str:
        ptz = (
            '<tt:PTZConfiguration token="PTZConfig_1"><tt:Name>PTZ</tt:Name><tt:UseCount>2</tt:UseCount>'
            "<tt:NodeToken>PTZNode_1</tt:NodeToken>"
            "<tt:DefaultAbsolutePantTiltPositionSpace>"
            "http://www.onvif.org/ver10/tptz/PanTiltSpaces/PositionGenericSpace"
            "</tt:DefaultAbsolutePantTiltPositionSpace>"
            "<tt:DefaultPTZTimeout>PT5S</tt:DefaultPTZTimeout></tt:PTZConfiguration>"
            if self.ptz
            else ""
        )
        return (
            f'<trt:Profiles token="{p.token}" fixed="true"><tt:Name>{p.name}</tt:Name>'
            '<tt:VideoSourceConfiguration token="VideoSourceConfig_1"><tt:Name>VideoSourceConfig</tt:Name>'
            "<tt:UseCount>2</tt:UseCount><tt:SourceToken>VideoSource_1</tt:SourceToken>"
            '<tt:Bounds x="0" y="0" width="1920" height="1080"/></tt:VideoSourceConfiguration>'
            f'<tt:VideoEncoderConfiguration token="VideoEncoder_{p.token}"><tt:Name>{p.name}</tt:Name>'
            "<tt:UseCount>1</tt:UseCount><tt:Encoding>H264</tt:Encoding>"
            f"<tt:Resolution><tt:Width>{p.width}</tt:Width><tt:Height>{p.height}</tt:Height></tt:Resolution>"
            "<tt:Quality>4</tt:Quality><tt:RateControl>"
            f"<tt:FrameRateLimit>{p.fps}</tt:FrameRateLimit><tt:EncodingInterval>1</tt:EncodingInterval>"
            f"<tt:BitrateLimit>{p.bitrate_kbps}</tt:BitrateLimit></tt:RateControl>"
            f"<tt:H264><tt:GovLength>{p.fps * 2}</tt:GovLength>"
            "<tt:H264Profile>Main</tt:H264Profile></tt:H264>"
            "<tt:Multicast><tt:Address><tt:Type>IPv4</tt:Type><tt:IPv4Address>0.0.0.0</tt:IPv4Address>"
            "</tt:Address><tt:Port>0</tt:Port><tt:TTL>0</tt:TTL><tt:AutoStart>false</tt:AutoStart>"
            "</tt:Multicast><tt:SessionTimeout>PT60S</tt:SessionTimeout></tt:VideoEncoderConfiguration>"
            f"{ptz}</trt:Profiles>"
        )

    def _GetProfiles(self, call: etree._Element) -> str:
        profiles = "".join(self._profile_xml(p) for p in PROFILES)
        return f"<trt:GetProfilesResponse>{profiles}</trt:GetProfilesResponse>"

    @staticmethod
    def _token(call: etree._Element) -> str:
        return call.findtext("{http://www.onvif.org/ver10/media/wsdl}ProfileToken") or call.findtext(
            "{http://www.onvif.org/ver20/ptz/wsdl}ProfileToken", ""
        )

    def _GetStreamUri(self, call: etree._Element) -> str:
        channel = {"Profile_1": "101", "Profile_2": "102"}.get(self._token(call), "101")
        return (
            "<trt:GetStreamUriResponse><trt:MediaUri>"
            f"<tt:Uri>rtsp://127.0.0.1:{self.port + 1}/Streaming/Channels/{channel}"
            "?transportmode=unicast</tt:Uri>"
            "<tt:InvalidAfterConnect>false</tt:InvalidAfterConnect>"
            "<tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT0S</tt:Timeout>"
            "</trt:MediaUri></trt:GetStreamUriResponse>"
        )

    def _GetSnapshotUri(self, call: etree._Element) -> str:
        channel = {"Profile_1": "101", "Profile_2": "102"}.get(self._token(call), "101")
        return (
            "<trt:GetSnapshotUriResponse><trt:MediaUri>"
            f"<tt:Uri>{self.address}/onvif-http/snapshot?Profile_{channel}</tt:Uri>"
            "<tt:InvalidAfterConnect>false</tt:InvalidAfterConnect>"
            "<tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT0S</tt:Timeout>"
            "</trt:MediaUri></trt:GetSnapshotUriResponse>"
        )

    # -- PTZ ------------------------------------------------------------------------------------------

    def _GetStatus(self, call: etree._Element) -> str:
        now = self.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        pan, tilt, zoom = self.ptz_position
        move = "MOVING" if self.ptz_moving else "IDLE"
        return (
            "<tptz:GetStatusResponse><tptz:PTZStatus><tt:Position>"
            f'<tt:PanTilt x="{pan}" y="{tilt}" '
            'space="http://www.onvif.org/ver10/tptz/PanTiltSpaces/PositionGenericSpace"/>'
            f'<tt:Zoom x="{zoom}" space="http://www.onvif.org/ver10/tptz/ZoomSpaces/PositionGenericSpace"/>'
            f"</tt:Position><tt:MoveStatus><tt:PanTilt>{move}</tt:PanTilt><tt:Zoom>{move}</tt:Zoom>"
            f"</tt:MoveStatus><tt:UtcTime>{now}</tt:UtcTime></tptz:PTZStatus></tptz:GetStatusResponse>"
        )

    def _ContinuousMove(self, call: etree._Element) -> str:
        pan_tilt = call.find(".//{http://www.onvif.org/ver10/schema}PanTilt")
        zoom = call.find(".//{http://www.onvif.org/ver10/schema}Zoom")
        x = pan_tilt.get("x", "0") if pan_tilt is not None else "0"
        y = pan_tilt.get("y", "0") if pan_tilt is not None else "0"
        z = zoom.get("x", "0") if zoom is not None else "0"
        self.moves.append(("move", self._token(call), x, y, z))
        self.ptz_moving = True
        return "<tptz:ContinuousMoveResponse/>"

    def _Stop(self, call: etree._Element) -> str:
        self.moves.append(("stop", self._token(call)))
        self.ptz_moving = False
        return "<tptz:StopResponse/>"

    def _GetPresets(self, call: etree._Element) -> str:
        items = "".join(
            f'<tptz:Preset token="{token}"><tt:Name>{name}</tt:Name></tptz:Preset>'
            for token, (name, _) in self.presets.items()
        )
        return f"<tptz:GetPresetsResponse>{items}</tptz:GetPresetsResponse>"

    def _SetPreset(self, call: etree._Element) -> str:
        ptz = "{http://www.onvif.org/ver20/ptz/wsdl}"
        token = call.findtext(f"{ptz}PresetToken") or f"preset-{len(self.presets) + 1}"
        self.presets[token] = (call.findtext(f"{ptz}PresetName") or token, self.ptz_position)
        self.moves.append(("set", token))
        answer = f"<tptz:PresetToken>{token}</tptz:PresetToken>"
        return f"<tptz:SetPresetResponse>{answer}</tptz:SetPresetResponse>"

    def _GotoPreset(self, call: etree._Element) -> str:
        token = call.findtext("{http://www.onvif.org/ver20/ptz/wsdl}PresetToken") or ""
        if token not in self.presets:
            raise NoPreset(token)
        self.ptz_position = self.presets[token][1]
        self.moves.append(("goto", token))
        return "<tptz:GotoPresetResponse/>"

    def _RemovePreset(self, call: etree._Element) -> str:
        token = call.findtext("{http://www.onvif.org/ver20/ptz/wsdl}PresetToken") or ""
        if self.presets.pop(token, None) is None:
            raise NoPreset(token)
        self.moves.append(("remove", token))
        return "<tptz:RemovePresetResponse/>"

    # -- events (ONVIF Core, Event handling: real-time pull point notification interface) ---------------

    @staticmethod
    def _stamp(at: dt.datetime) -> str:
        return at.strftime("%Y-%m-%dT%H:%M:%SZ")

    def _termination(self, text: str | None, default: dt.timedelta) -> dt.datetime:
        """Relative (PT60S) or absolute xsd:dateTime termination time, on the device clock."""
        text = (text or "").strip()
        now = self.now()
        if not text:
            return now + default
        if text.startswith("P"):
            return now + _duration(text, default)
        at = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        return at if at.tzinfo else at.replace(tzinfo=dt.UTC)

    def _GetEventProperties(self, call: etree._Element) -> str:
        return (
            "<tev:GetEventPropertiesResponse>"
            "<tev:TopicNamespaceLocation>http://www.onvif.org/onvif/ver10/topics/topicns.xml"
            "</tev:TopicNamespaceLocation><wsnt:FixedTopicSet>true</wsnt:FixedTopicSet>"
            '<wstop:TopicSet xmlns:wstop="http://docs.oasis-open.org/wsn/t-1"><tns1:RuleEngine>'
            '<CellMotionDetector><Motion wstop:topic="true"><tt:MessageDescription IsProperty="true">'
            '<tt:Source><tt:SimpleItemDescription Name="VideoSourceConfigurationToken" '
            'Type="tt:ReferenceToken"/></tt:Source><tt:Data><tt:SimpleItemDescription Name="IsMotion" '
            'Type="xs:boolean"/></tt:Data></tt:MessageDescription></Motion></CellMotionDetector>'
            "</tns1:RuleEngine></wstop:TopicSet>"
            "<wsnt:TopicExpressionDialect>http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet"
            "</wsnt:TopicExpressionDialect>"
            "<tev:MessageContentFilterDialect>http://www.onvif.org/ver10/tev/messageContentFilter/ItemFilter"
            "</tev:MessageContentFilterDialect>"
            "<tev:MessageContentSchemaLocation>http://www.onvif.org/onvif/ver10/schema/onvif.xsd"
            "</tev:MessageContentSchemaLocation></tev:GetEventPropertiesResponse>"
        )

    def _CreatePullPointSubscription(self, call: etree._Element) -> str:
        self._next_subscription += 1
        sid = str(self._next_subscription)
        until = self._termination(
            call.findtext(f"{{{EVENTS_NS}}}InitialTerminationTime"), dt.timedelta(seconds=60)
        )
        self.subscriptions[sid] = until
        self._queues[sid] = []
        return (
            "<tev:CreatePullPointSubscriptionResponse><tev:SubscriptionReference>"
            f"<wsa5:Address>{self.address}/onvif/subscription_{sid}</wsa5:Address>"
            "</tev:SubscriptionReference>"
            f"<wsnt:CurrentTime>{self._stamp(self.now())}</wsnt:CurrentTime>"
            f"<wsnt:TerminationTime>{self._stamp(until)}</wsnt:TerminationTime>"
            "</tev:CreatePullPointSubscriptionResponse>"
        )

    def _subscription(self, request: web.Request) -> str:
        sid = request.match_info["service"].removeprefix("subscription_")
        until = self.subscriptions.get(sid)
        if until is None or until < self.now():
            self.subscriptions.pop(sid, None)
            self._queues.pop(sid, None)
            raise LookupError(sid)
        return sid

    async def _PullMessages(self, request: web.Request, call: etree._Element) -> str:
        sid = self._subscription(request)
        wait = min(_duration(call.findtext(f"{{{EVENTS_NS}}}Timeout") or "", MAX_PULL_WAIT), MAX_PULL_WAIT)
        limit = int(call.findtext(f"{{{EVENTS_NS}}}MessageLimit") or "100")
        if not self._queues[sid] and self._wakeup is not None:
            self._wakeup.clear()
            try:
                async with asyncio.timeout(wait.total_seconds()):
                    await self._wakeup.wait()
            except TimeoutError:
                pass
        queue = self._queues.get(sid, [])
        messages, queue[:] = queue[:limit], queue[limit:]
        until = self.subscriptions.get(sid, self.now())
        return (
            f"<tev:PullMessagesResponse><tev:CurrentTime>{self._stamp(self.now())}</tev:CurrentTime>"
            f"<tev:TerminationTime>{self._stamp(until)}</tev:TerminationTime>"
            f"{''.join(messages)}</tev:PullMessagesResponse>"
        )

    def _Renew(self, call: etree._Element, request: web.Request) -> str:
        sid = self._subscription(request)
        until = self._termination(call.findtext(f"{{{WSNT}}}TerminationTime"), dt.timedelta(seconds=60))
        self.subscriptions[sid] = until
        return envelope(
            f"<wsnt:RenewResponse><wsnt:TerminationTime>{self._stamp(until)}</wsnt:TerminationTime>"
            f"<wsnt:CurrentTime>{self._stamp(self.now())}</wsnt:CurrentTime></wsnt:RenewResponse>"
        )

    def _Unsubscribe(self, call: etree._Element, request: web.Request) -> str:
        sid = self._subscription(request)
        del self.subscriptions[sid]
        self._queues.pop(sid, None)
        return envelope("<wsnt:UnsubscribeResponse/>")

    # -- WS-Discovery ---------------------------------------------------------------------------------

    def probe_match(self, relates_to: str) -> bytes:
        header = (
            f'<wsa:Action xmlns:wsa="{WSA}">{WSD}/ProbeMatches</wsa:Action>'
            f'<wsa:MessageID xmlns:wsa="{WSA}">urn:uuid:{uuid.uuid4()}</wsa:MessageID>'
            f'<wsa:RelatesTo xmlns:wsa="{WSA}">{relates_to}</wsa:RelatesTo>'
            f'<wsa:To xmlns:wsa="{WSA}">{WSA}/role/anonymous</wsa:To>'
        )
        body = (
            f'<d:ProbeMatches xmlns:d="{WSD}" xmlns:wsa="{WSA}" '
            'xmlns:dn="http://www.onvif.org/ver10/network/wsdl"><d:ProbeMatch>'
            f"<wsa:EndpointReference><wsa:Address>{DEVICE_UUID}</wsa:Address></wsa:EndpointReference>"
            "<d:Types>dn:NetworkVideoTransmitter tds:Device</d:Types>"
            f"<d:Scopes>{SCOPES}</d:Scopes><d:XAddrs>{self.address}/onvif/device_service</d:XAddrs>"
            "<d:MetadataVersion>10</d:MetadataVersion></d:ProbeMatch></d:ProbeMatches>"
        )
        return envelope(body, header).encode()


def _duration(text: str, default: dt.timedelta) -> dt.timedelta:
    """The xsd:duration forms cameras are sent (PT5S, PT1M, PT1M30S, PT0.5S); ``default`` otherwise."""
    match = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?", text.strip())
    if not match or not any(match.groups()):
        return default
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return dt.timedelta(hours=hours, minutes=minutes, seconds=seconds)


class _DiscoveryResponder(asyncio.DatagramProtocol):
    def __init__(self, device: OnvifDevice) -> None:
        self.device = device
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        try:
            doc = _xml(data)
        except etree.XMLSyntaxError:
            return
        if doc.find(f".//{{{WSD}}}Probe") is None or self.transport is None:
            return
        self.device.actions.append("Probe")
        message_id = doc.findtext(f".//{{{WSA}}}MessageID") or ""
        self.transport.sendto(self.device.probe_match(message_id), addr)
