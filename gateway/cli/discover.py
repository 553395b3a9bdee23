"""`vigil discover`: find ONVIF cameras on the local network, read what they offer, add one.

WS-Discovery finds devices; with credentials each one is probed over ONVIF (profiles, stream URIs,
PTZ) by gateway/cameras/discovery.py. A found camera is added with its location and name; its stream URL keeps
the credentials in the database (the analyzers need them) and the API only ever shows it redacted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from adapters import redact_url
from gateway.cameras.discovery import camera_config, find_cameras
from gateway.cameras.registry import upsert_camera
from gateway.cli.common import open_config, open_database
from gateway.db.schema import Camera


def _parse_target(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"target must be HOST:PORT, not {text!r}")
    return host, int(port)


def cmd_discover(args: argparse.Namespace) -> int:

    password = os.environ.get(args.password_env) if args.password_env else None
    if args.password_env and password is None:
        print(f"{args.password_env} is not set: put the cameras' password in it", file=sys.stderr)
        return 2
    found = asyncio.run(find_cameras(args.wait, args.target or [], args.user, password))
    if not found:
        print(f"no ONVIF device answered within {args.wait} s (is multicast allowed on this network?)")
        return 0 if not args.add else 1
    for i, item in enumerate(found, 1):
        d = item.device
        print(f"[{i}] {d.host}:{d.port}  {d.name or '?'}  {d.location or ''}  {d.hardware or ''}")
        if item.camera is not None:
            c = item.camera
            print(
                f"    {c.info.manufacturer} {c.info.model}, firmware {c.info.firmware}, "
                f"main {c.main.width}x{c.main.height} {c.main.encoding}: {redact_url(c.main_stream_uri)}, "
                f"PTZ {'yes' if c.ptz else 'no'}"
            )
            snapshot = redact_url(c.snapshot_uri) if c.snapshot_uri else "none offered"
            nat = " (through the address above: the device advertises another, NAT)" if c.behind_nat else ""
            print(f"    snapshot {snapshot}{nat}")
        elif item.error:
            print(f"    not probed: {item.error}")
    if not args.add:
        return 0
    if not 1 <= args.pick <= len(found) or found[args.pick - 1].camera is None:
        print(f"--pick {args.pick}: choose a probed device from the list above", file=sys.stderr)
        return 2
    config, _ = open_config(args)
    db = open_database(config)
    db.ensure_current()

    chosen = found[args.pick - 1]
    cam = camera_config(chosen, args.add, args.name, args.location)
    with db.session() as s:
        if s.get(Camera, cam.id) is not None:
            print(f"camera {cam.id!r} exists already; choose another id", file=sys.stderr)
            return 1
        upsert_camera(s, cam, origin="discovered")
        row = s.get(Camera, cam.id)
        assert row is not None
        row.ptz = chosen.camera is not None and chosen.camera.ptz is not None
    print(
        f"camera {cam.id} added: {cam.name} at {cam.location or '(no location)'}; "
        "add its scenes in the console or the API"
    )
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("discover", help="find ONVIF cameras (WS-Discovery) and optionally add one")
    p.add_argument("--wait", type=float, default=3.0, help="seconds to wait for answers")
    p.add_argument(
        "--target",
        action="append",
        type=_parse_target,
        help="HOST:PORT to probe by unicast instead of multicast (repeatable)",
    )
    p.add_argument("--user", help="ONVIF user to read profiles and stream URIs with")
    p.add_argument("--password-env", help="environment variable holding that user's password")
    p.add_argument("--add", metavar="CAMERA_ID", help="add the chosen device as this camera")
    p.add_argument("--pick", type=int, default=1, help="which device of the list to add (1-based)")
    p.add_argument("--name")
    p.add_argument("--location")
    p.set_defaults(func=cmd_discover)
