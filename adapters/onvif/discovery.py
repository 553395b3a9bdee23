"""WS-Discovery for ONVIF devices: one asyncio UDP Probe, ProbeMatches collected until a deadline.

onvif-zeep-async has no discovery, and the ``wsdiscovery`` package binds UDP 3702 itself (clashing with
anything else on the host that does). A Probe only needs an ephemeral port: devices answer unicast to
the sender. Answers are parsed with a hardened lxml parser (no entities, no network), since any host on
the LAN can send us a datagram.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast
from urllib.parse import unquote, urlsplit

from lxml import etree

MULTICAST_GROUP = "239.255.255.250"
DISCOVERY_PORT = 3702
SOAP_ENV = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
WSD = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
ONVIF_SCOPE = "onvif://www.onvif.org/"
MAX_DATAGRAM = 65_535
REPEAT_DELAY = 0.1

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, remove_comments=True)


@dataclass(frozen=True)
class DiscoveredDevice:
    """One device that answered the Probe; ``xaddrs`` are its device-service URLs."""

    endpoint: str  # wsa:EndpointReference address, usually urn:uuid:..., stable across IP changes
    xaddrs: tuple[str, ...]
    types: tuple[str, ...]
    scopes: tuple[str, ...]
    name: str | None
    location: str | None
    hardware: str | None
    mac: str | None
    source: str  # IP address the answer came from

    @property
    def host(self) -> str | None:
        """Host of the first device-service URL (what ``OnvifClient`` needs with ``port``)."""
        return urlsplit(self.xaddrs[0]).hostname if self.xaddrs else None

    @property
    def port(self) -> int:
        if not self.xaddrs:
            return 80
        parts = urlsplit(self.xaddrs[0])
        return parts.port or (443 if parts.scheme == "https" else 80)


def probe_message(message_id: str, types: str = "dn:NetworkVideoTransmitter") -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="{SOAP_ENV}" xmlns:a="{WSA}" '
        f'xmlns:d="{WSD}" xmlns:dn="http://www.onvif.org/ver10/network/wsdl"><s:Header>'
        f'<a:Action s:mustUnderstand="1">{WSD}/Probe</a:Action><a:MessageID>{message_id}</a:MessageID>'
        f"<a:ReplyTo><a:Address>{WSA}/role/anonymous</a:Address></a:ReplyTo>"
        '<a:To s:mustUnderstand="1">urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To></s:Header>'
        f"<s:Body><d:Probe><d:Types>{types}</d:Types></d:Probe></s:Body></s:Envelope>"
    ).encode()


def parse_scopes(scopes: Iterable[str]) -> dict[str, str]:
    """name / location / hardware / mac from onvif://www.onvif.org/<key>/<value> scope URIs.

    Several location scopes (country, city, building) are joined with ", "; values are percent-decoded.
    """
    found: dict[str, list[str]] = {}
    for scope in scopes:
        if not scope.lower().startswith(ONVIF_SCOPE):
            continue
        key, _, value = scope[len(ONVIF_SCOPE) :].partition("/")
        key = key.lower()
        if key in ("name", "location", "hardware", "mac") and value:
            found.setdefault(key, []).append(unquote(value))
    return {key: ", ".join(values) for key, values in found.items()}


def parse_probe_matches(data: bytes, source: str, relates_to: str | None = None) -> list[DiscoveredDevice]:
    """Devices in one ProbeMatches datagram; [] for anything else (other traffic, malformed XML)."""
    try:
        doc = etree.fromstring(data, _PARSER)
    except (etree.XMLSyntaxError, ValueError):
        return []
    if relates_to is not None:
        # Answers to someone else's Probe on the same network are not ours to report.
        related = doc.findtext(f"{{{SOAP_ENV}}}Header/{{{WSA}}}RelatesTo")
        if related is not None and related.strip() != relates_to:
            return []
    devices = []
    for match in doc.iterfind(f".//{{{WSD}}}ProbeMatch"):
        scopes = tuple((match.findtext(f"{{{WSD}}}Scopes") or "").split())
        meta = parse_scopes(scopes)
        devices.append(
            DiscoveredDevice(
                endpoint=(match.findtext(f"{{{WSA}}}EndpointReference/{{{WSA}}}Address") or "").strip(),
                xaddrs=tuple((match.findtext(f"{{{WSD}}}XAddrs") or "").split()),
                types=tuple((match.findtext(f"{{{WSD}}}Types") or "").split()),
                scopes=scopes,
                name=meta.get("name"),
                location=meta.get("location"),
                hardware=meta.get("hardware"),
                mac=meta.get("mac"),
                source=source,
            )
        )
    return devices


class _ProbeProtocol(asyncio.DatagramProtocol):
    def __init__(self, message_id: str) -> None:
        self.message_id = message_id
        self.devices: dict[str, DiscoveredDevice] = {}

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        for device in parse_probe_matches(data[:MAX_DATAGRAM], str(addr[0]), self.message_id):
            # Devices answer once per interface and sometimes twice; keep the first answer per endpoint.
            self.devices.setdefault(device.endpoint or ",".join(device.xaddrs), device)

    def error_received(self, exc: Exception) -> None:
        # ICMP port-unreachable from a unicast target shows up here; the deadline still applies.
        pass


async def discover(
    wait_s: float = 3.0,
    *,
    multicast: bool = True,
    targets: Iterable[tuple[str, int]] = (),
    interface: str = "0.0.0.0",  # noqa: S104 - the local address to send from; any by default
    ttl: int = 1,
) -> list[DiscoveredDevice]:
    """Send a WS-Discovery Probe (multicast and/or unicast ``targets``); collect answers for ``wait_s``.

    Multicast stays on the local segment (``ttl=1``): plant networks route cameras through VLANs where a
    unicast ``targets`` list per subnet is the way to reach them.
    """
    loop = asyncio.get_running_loop()
    message_id = f"urn:uuid:{uuid.uuid4()}"
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
        sock.bind((interface, 0))
        sock.setblocking(False)
        transport, protocol = await loop.create_datagram_endpoint(
            lambda: _ProbeProtocol(message_id), sock=sock
        )
    except BaseException:
        sock.close()
        raise
    udp = cast(asyncio.DatagramTransport, transport)
    try:
        message = probe_message(message_id)
        destinations = [(MULTICAST_GROUP, DISCOVERY_PORT)] if multicast else []
        destinations += list(targets)
        # SOAP-over-UDP repeats a multicast message once: one lost datagram should not hide a camera.
        for attempt in range(2):
            for destination in destinations:
                udp.sendto(message, destination)
            if attempt == 0:
                await asyncio.sleep(min(REPEAT_DELAY, wait_s))
        await asyncio.sleep(max(0.0, wait_s - REPEAT_DELAY))
    finally:
        udp.close()
    return list(protocol.devices.values())
