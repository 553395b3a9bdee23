"""`vigil serve` (API, console and analytics) and `vigil demo` (model pack, sample camera, serve)."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from adapters.rtsp.sample_camera import SampleRtspServer, SampleServerError
from gateway.api import create_app
from gateway.api.web_security import tls_context
from gateway.app import Gateway
from gateway.auth import create_user
from gateway.cli.common import open_config, open_database
from gateway.cli.models import import_models
from gateway.config.schema import GatewayConfig
from gateway.db import upgrade
from gateway.db.schema import User
from gateway.models.pack import project_models


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the gateway: API, console and analytics")
    p.add_argument("--port", type=int)
    p.add_argument("--no-analyse", action="store_true", help="serve the API only; start no camera")
    p.add_argument("--stop-after", type=float, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("demo", help="import the model pack, start the sample camera and serve")
    p.add_argument("--video", help="sample video (default: $VIGIL_MEDIA_DIR/vtest.avi)")
    p.add_argument("--models", help="model pack folder (default: $VIGIL_MODELS_DIR, then models.pack_dir)")
    p.add_argument("--stop-after", type=float, help="stop after this many seconds (for timing runs)")
    p.set_defaults(func=cmd_demo)


def _serve(config: GatewayConfig, path: Path, analyse: bool = True, stop_after: float | None = None) -> int:
    try:
        ssl_context = tls_context(config.server)  # before anything starts: a bad certificate stops here
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    gateway = Gateway(config, path, analyse=analyse)
    try:
        gateway.db.ensure_current()
    except RuntimeError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    app = create_app(gateway)
    scheme = "https" if ssl_context is not None else "http"
    url = f"{scheme}://{config.server.host}:{config.server.port}/"

    async def announce(_app: web.Application) -> None:
        print(f"vigil console and API: {url}  (OpenAPI: {url}api/openapi.json)", flush=True)
        if stop_after:
            asyncio.get_running_loop().call_later(stop_after, _stop_signal)

    app.on_startup.append(announce)
    try:
        web.run_app(
            app,
            host=config.server.host,
            port=config.server.port,
            ssl_context=ssl_context,
            print=None,
            shutdown_timeout=10.0,
            handle_signals=True,
        )
    except OSError as exc:
        print(
            f"cannot listen on {config.server.host}:{config.server.port}: {exc.strerror}; "
            "stop what uses the port or set VIGIL_SERVER__PORT",
            file=sys.stderr,
        )
        return 1
    return 0


def _stop_signal() -> None:
    os.kill(os.getpid(), signal.SIGINT)


def cmd_serve(args: argparse.Namespace) -> int:
    config, path = open_config(args)
    if args.port:
        config.server.port = args.port
    return _serve(config, path, analyse=not args.no_analyse, stop_after=args.stop_after)


def cmd_demo(args: argparse.Namespace) -> int:
    config, path = open_config(args)
    media = os.environ.get("VIGIL_MEDIA_DIR")
    if args.video is None and media is None:
        print(
            "no sample video given: set VIGIL_MEDIA_DIR to the folder with vtest.avi, or pass --video FILE",
            file=sys.stderr,
        )
        return 2
    video = Path(args.video) if args.video else Path(str(media)) / "vtest.avi"
    if not video.is_file():
        print(
            f"sample video not found: {video}\n  put vtest.avi there, or run "
            "VIGIL_MEDIA_DIR=<folder that has vtest.avi> make demo\n"
            "  (vtest.avi is OpenCV's sample data; Debian's package opencv-doc ships it too)",
            file=sys.stderr,
        )
        return 2
    pack_env = args.models or os.environ.get("VIGIL_MODELS_DIR")
    pack = Path(pack_env) if pack_env else config.models.pack_dir
    if pack is None:
        print(
            "no model pack given: set VIGIL_MODELS_DIR to the folder with yolox_nano/, or pass --models DIR",
            file=sys.stderr,
        )
        return 2
    if not (pack / "yolox_nano").is_dir():
        print(
            f"model pack not found: {pack}\n  run VIGIL_MODELS_DIR=<folder that has yolox_nano/> make demo,\n"
            "  or `vigil models import DIR` once the pack is copied to this machine",
            file=sys.stderr,
        )
        return 2
    db = open_database(config)
    upgrade(db.engine)
    print(f"database ready: {db.engine.url.render_as_string(hide_password=True)}")
    if import_models(config, path, pack, None) != 0:
        return 1
    # The project's own trained classifiers (helmet, workwear, fire, smoking) ship in config/models.
    own = path.parent / "models"
    if project_models(own) and import_models(config, path, own, own) != 0:
        return 1
    creds = config.storage.root.parent / "demo-admin.txt"
    with db.session() as s:
        if s.query(User).count() == 0:
            password = os.environ.get("VIGIL_DEMO_PASSWORD") or secrets.token_urlsafe(12)
            create_user(s, "admin", password, "admin")
            creds.parent.mkdir(parents=True, exist_ok=True)
            creds.write_text(f"admin\n{password}\n", encoding="utf-8")
            creds.chmod(0o600)
    print(f"console login: user admin, password in {creds}")
    cameras = [c for c in config.cameras if c.url.startswith("rtsp://127.0.0.1")]
    if not cameras:
        print(
            "the demo config has no camera on rtsp://127.0.0.1:PORT/MOUNT to serve the sample video",
            file=sys.stderr,
        )
        return 2
    url = urlsplit(cameras[0].url)
    mount = url.path.strip("/")
    try:
        with SampleRtspServer({mount: video}, port=url.port or 8554) as server:
            print(f"sample camera: {server.url(mount)} plays {video.name} in a loop")
            return _serve(config, path, stop_after=args.stop_after)
    except SampleServerError as exc:
        print(f"sample RTSP camera failed: {exc}", file=sys.stderr)
        return 1
