"""ONVIF cameras: WS-Discovery, device information, profiles, stream/snapshot URIs, PTZ state, events."""

from adapters.onvif.client import (
    DeviceInfo,
    MediaProfile,
    OnvifAuthError,
    OnvifCamera,
    OnvifClient,
    OnvifError,
    OnvifProtocolError,
    OnvifUnreachable,
    PtzStatus,
    device_info,
    insert_credentials,
    probe,
    profiles,
)
from adapters.onvif.discovery import DiscoveredDevice, discover
from adapters.onvif.events import OnvifEvent, PullPointSubscription

__all__ = [
    "DeviceInfo",
    "DiscoveredDevice",
    "MediaProfile",
    "OnvifAuthError",
    "OnvifCamera",
    "OnvifClient",
    "OnvifError",
    "OnvifEvent",
    "OnvifProtocolError",
    "OnvifUnreachable",
    "PtzStatus",
    "PullPointSubscription",
    "device_info",
    "discover",
    "insert_credentials",
    "probe",
    "profiles",
]
