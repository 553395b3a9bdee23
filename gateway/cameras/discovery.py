"""Find ONVIF cameras on the local network and read what they offer (`vigil discover`, gateway/cli).

WS-Discovery finds devices; with credentials each one is probed over ONVIF (profiles, stream URIs,
PTZ). ``camera_config`` turns a found camera into its configuration, with its location and name.
"""

from __future__ import annotations

from dataclasses import dataclass

from adapters.onvif import DiscoveredDevice, OnvifCamera, OnvifError, discover, probe
from gateway.config.schema import CameraConfig


@dataclass
class Found:
    device: DiscoveredDevice
    camera: OnvifCamera | None
    error: str | None


async def find_cameras(
    wait_s: float, targets: list[tuple[str, int]], user: str | None, password: str | None
) -> list[Found]:
    devices = await discover(wait_s, multicast=not targets, targets=targets)
    found = []
    for device in devices:
        if not user or password is None or device.host is None:
            found.append(
                Found(device, None, None if user else "no credentials given: --user, --password-env")
            )
            continue
        try:
            camera = await probe(device.host, device.port, user, password, with_credentials=True)
            found.append(Found(device, camera, None))
        except OnvifError as exc:
            found.append(Found(device, None, str(exc)))
    return found


def camera_config(found: Found, camera_id: str, name: str | None, location: str | None) -> CameraConfig:
    """The camera as the gateway configures it, from what the probe found (main stream analysed)."""
    assert found.camera is not None
    cam = found.camera
    return CameraConfig(
        id=camera_id,
        name=name or found.device.name or cam.info.model,
        location=location or found.device.location or "",
        url=cam.main_stream_uri,
        sub_url=cam.sub_stream_uri,
        quality=f"{cam.main.width}x{cam.main.height} {cam.main.encoding}",
    )
