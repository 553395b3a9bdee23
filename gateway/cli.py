"""The `vigil` command line."""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import logging
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from gateway import cli_samples, cli_train, cli_uplink, cli_video
from gateway.config import ConfigError, GatewayConfig, default_config_path, load_config
from gateway.db.engine import SchemaOutdated
from gateway.discovery import add_discover_parser
from gateway.evaluate import add_eval_parser
from gateway.seed import add_seed_parser
from gateway.times import as_utc

log = logging.getLogger("vigil")


def _config(args: argparse.Namespace) -> tuple[GatewayConfig, Path]:
    path = Path(args.config) if args.config else default_config_path()
    return load_config(path), path


def _database(config: GatewayConfig) -> Any:
    from gateway.db import Database

    return Database(config.database.url, config.database.echo)


# --- config -------------------------------------------------------------------------------------


def cmd_config_check(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(f"{path}: {len(exc.problems)} problem(s):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    scenes = sum(len(c.scenes) for c in config.cameras)
    print(
        f"{path}: OK ({len(config.cameras)} camera(s), {scenes} scene task(s), "
        f"{len(config.uplink)} uplink target(s))"
    )
    return 0


def cmd_config_schema(args: argparse.Namespace) -> int:
    schema = GatewayConfig.model_json_schema()
    text = json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    return 0


# --- database -----------------------------------------------------------------------------------


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from gateway.db import current_revision, upgrade

    config, _ = _config(args)
    db = _database(config)
    before = current_revision(db.engine)
    upgrade(db.engine)
    after = current_revision(db.engine)
    print(f"database {db.engine.url.render_as_string(hide_password=True)}: {before or 'empty'} -> {after}")
    return 0


def cmd_db_current(args: argparse.Namespace) -> int:
    from gateway.db import current_revision, head_revision

    config, _ = _config(args)
    db = _database(config)
    print(f"current {current_revision(db.engine) or 'empty'}, head {head_revision(db.engine)}")
    return 0


# --- users and tokens ---------------------------------------------------------------------------


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise SystemExit("the passwords differ; nothing was changed")
    return first


def cmd_users_add(args: argparse.Namespace) -> int:
    from gateway.auth import create_user

    config, _ = _config(args)
    db = _database(config)
    db.ensure_current()
    password = _read_password(args)
    try:
        with db.session() as s:
            create_user(s, args.username, password, args.role)
    except ValueError as exc:
        print(f"not added: {exc}", file=sys.stderr)
        return 1
    print(f"user {args.username} added with role {args.role}")
    return 0


def cmd_tokens_create(args: argparse.Namespace) -> int:
    from gateway.auth import issue_token

    config, _ = _config(args)
    db = _database(config)
    db.ensure_current()
    ttl = dt.timedelta(days=args.ttl_days) if args.ttl_days else None
    try:
        with db.session() as s:
            secret, _row = issue_token(
                s, args.name, args.kind, args.role, set(args.scope) if args.scope else None, ttl=ttl
            )
    except ValueError as exc:
        print(f"not created: {exc}", file=sys.stderr)
        return 1
    print(secret)
    print("(shown once: store it now)", file=sys.stderr)
    return 0


# --- alarms -------------------------------------------------------------------------------------


def cmd_alarms_list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from gateway.db.schema import Alarm, Evidence

    config, path = _config(args)
    db = _database(config)
    db.ensure_current()
    stmt = select(Alarm).order_by(Alarm.id.desc()).limit(args.limit)
    if args.camera:
        stmt = stmt.where(Alarm.camera_id == args.camera)
    if args.scene:
        stmt = stmt.where(Alarm.scene == args.scene)
    if args.status:
        stmt = stmt.where(Alarm.status == args.status)
    with db.session() as s:
        rows = []
        for a in s.scalars(stmt):
            snap = s.scalar(
                select(Evidence.path).where(Evidence.alarm_id == a.id, Evidence.kind == "snapshot")
            )
            rows.append(
                {
                    "id": a.id,
                    "occurred_at": as_utc(a.occurred_at).isoformat(timespec="seconds"),
                    "camera_id": a.camera_id,
                    "scene": a.scene,
                    "region": a.region,
                    "status": a.status,
                    "score": a.score,
                    "message": a.message,
                    "snapshot": str(config.storage.root / snap) if snap else None,
                }
            )
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    if not rows:
        print(f"no alarms in {db.engine.url.render_as_string(hide_password=True)} (config {path})")
        return 0
    print(
        f"{'id':26}  {'occurred (UTC)':25}  {'camera':14}  {'scene':10}  {'region':12}  "
        f"{'status':9}  snapshot"
    )
    for r in rows:
        print(
            f"{r['id']:26}  {r['occurred_at']:25}  {r['camera_id']:14}  {r['scene']:10}  {r['region']:12}  "
            f"{r['status']:9}  {r['snapshot']}"
        )
    return 0


# --- models -------------------------------------------------------------------------------------


def _import_models(config: GatewayConfig, config_path: Path, pack: Path, cards: Path | None) -> int:
    from tqdm import tqdm

    from gateway.modelpack import ModelPackError, import_pack

    db = _database(config)
    db.ensure_current()
    cards = cards or config_path.parent / "models"
    bars: dict[str, tqdm] = {}

    def progress(name: str, done: int, total: int) -> None:
        bar = bars.get(name)
        if bar is None:
            bar = bars[name] = tqdm(
                total=total, desc=f"checking {name}", unit="B", unit_scale=True, leave=False
            )
        bar.update(done - bar.n)

    try:
        results = import_pack(db, config.storage.root, pack, cards, progress)
    except ModelPackError as exc:
        print(f"model import failed: {exc}", file=sys.stderr)
        return 1
    finally:
        for bar in bars.values():
            bar.close()
    for r in results:
        if r.status == "skipped":
            print(f"  {r.name}: skipped ({r.detail})")
        else:
            detail = f"; {r.detail}" if r.detail else ""
            print(f"  {r.name} {r.version}: {r.status} (version id {r.version_id}){detail}")
    return 0


def cmd_models_import(args: argparse.Namespace) -> int:
    config, path = _config(args)
    return _import_models(config, path, Path(args.dir), Path(args.cards) if args.cards else None)


def cmd_models_list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from gateway.db.schema import Model

    config, _ = _config(args)
    db = _database(config)
    db.ensure_current()
    with db.session() as s:
        for m in s.scalars(select(Model).order_by(Model.name)):
            for v in m.versions:
                print(f"{m.name:20} {v.version:16} {v.id}  {v.status:8} {m.family:10} {m.licence}")
    return 0


def cmd_scenes(_args: argparse.Namespace) -> int:
    from analyzers.scenes import CATALOGUE, IMPLEMENTED

    print(f"{'scene':20} {'fps':>6}  {'model':12} {'pose':4}  name")
    for info in CATALOGUE.values():
        cls = IMPLEMENTED[info.key]
        model = cls.default_model or "(configured)"
        pose = "yes" if cls.uses_pose else ""
        print(f"{info.key:20} {info.sample_fps:6.3f}  {model:12} {pose:4}  {info.name_en} / {info.name_zh}")
    return 0


# --- offline video -------------------------------------------------------------------------------


def _parse_start(raw: str) -> dt.datetime:
    return as_utc(dt.datetime.fromisoformat(raw))


def _video_time(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes, secs = divmod(seconds, 60)
    return f"{int(minutes // 60)}:{int(minutes % 60):02}:{secs:04.1f}"


def cmd_video_import(args: argparse.Namespace) -> int:
    from sqlalchemy import select
    from tqdm import tqdm

    from gateway.db.schema import Alarm
    from gateway.service import Gateway
    from gateway.video_import import VideoImportError, find_camera
    from gateway.video_library import import_video

    video = Path(args.file)
    if not video.is_file():
        print(f"video file not found: {video}", file=sys.stderr)
        return 2
    try:
        start = _parse_start(args.start)
    except ValueError:
        print(
            f"--start {args.start!r} is not an ISO 8601 time; e.g. 2026-11-21T08:00:00+08:00 "
            "(a time without zone is UTC)",
            file=sys.stderr,
        )
        return 2
    config, path = _config(args)
    gateway = Gateway(config, path, analyse=False)
    try:
        gateway.db.ensure_current()
        camera = find_camera(gateway, args.camera)
        if camera is None:
            print(
                f"unknown camera {args.camera!r}: configure it in {path} or add it (POST /api/cameras)",
                file=sys.stderr,
            )
            return 2
        scenes = None
        if args.scene:
            by_key = {s.scene: s for s in camera.scenes}
            missing = [k for k in args.scene if k not in by_key]
            if missing:
                print(
                    f"camera {camera.id} has no scene {', '.join(missing)}; "
                    f"it has: {', '.join(by_key) or 'none'}",
                    file=sys.stderr,
                )
                return 2
            scenes = [by_key[k].model_copy(update={"enabled": True}) for k in dict.fromkeys(args.scene)]
        if args.model:
            # Every chosen scene reads this model version (history replay with an older or newer one).
            scenes = [s.model_copy(update={"model": args.model}) for s in (scenes or camera.scenes)]
        bar = tqdm(desc=video.name, unit="frame", file=sys.stderr, disable=args.no_progress)

        def progress(done: int, total: int | None) -> None:
            if total and bar.total != total:
                bar.total = total
            bar.update(done - bar.n)

        try:
            result, kept = import_video(  # kept in the video library, analysed as a stored job
                gateway,
                video,
                camera.id,
                start,
                scenes,
                progress=progress,
                max_seconds=args.max_seconds,
                capture_interval_s=args.capture_interval,
            )
        except VideoImportError as exc:
            print(f"video import failed: {exc}", file=sys.stderr)
            return 1
        finally:
            bar.close()
        with gateway.db.session() as s:
            alarms = list(
                s.scalars(select(Alarm).where(Alarm.id.in_(result.alarm_ids)).order_by(Alarm.occurred_at))
            )
            rows = [(a.id, a.video_ts, a.occurred_at, a.scene, a.region) for a in alarms]
    finally:
        gateway.stop()
    print(
        f"{video.name} on camera {camera.id}: {result.frames} frames ({result.duration_s:.1f} s of video) "
        f"in {result.elapsed_s:.1f} s ({result.fps:.0f} frames/s), {len(rows)} alarm(s); "
        f"kept in the video library as {kept.id}"
    )
    if result.errors:
        print(f"  {result.errors} frame(s) could not be analysed", file=sys.stderr)
    for scene, status in result.scene_status.items():
        if not status.startswith("running"):
            print(f"  scene {scene}: {status}", file=sys.stderr)
    if rows:
        print(f"{'id':26}  {'video time':10}  {'occurred (UTC)':25}  {'scene':12}  region")
        for alarm_id, video_ts, occurred, scene, region in rows:
            when = as_utc(occurred).astimezone(dt.UTC)
            print(
                f"{alarm_id:26}  {_video_time(video_ts):10}  {when.isoformat(timespec='seconds'):25}  "
                f"{scene:12}  {region}"
            )
    return 0


# --- serve and demo -----------------------------------------------------------------------------


def _serve(config: GatewayConfig, path: Path, analyse: bool = True, stop_after: float | None = None) -> int:
    import asyncio

    from aiohttp import web

    from gateway.api import create_app
    from gateway.service import Gateway

    gateway = Gateway(config, path, analyse=analyse)
    try:
        gateway.db.ensure_current()
    except RuntimeError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    app = create_app(gateway)
    url = f"http://{config.server.host}:{config.server.port}/"

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
    import signal

    os.kill(os.getpid(), signal.SIGINT)


def cmd_serve(args: argparse.Namespace) -> int:
    config, path = _config(args)
    if args.port:
        config.server.port = args.port
    return _serve(config, path, analyse=not args.no_analyse, stop_after=args.stop_after)


def cmd_demo(args: argparse.Namespace) -> int:
    from urllib.parse import urlsplit

    from adapters.rtsp.sample_camera import SampleRtspServer, SampleServerError
    from gateway.auth import create_user
    from gateway.db import upgrade
    from gateway.db.schema import User
    from gateway.modelpack import project_models

    config, path = _config(args)
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
    db = _database(config)
    upgrade(db.engine)
    print(f"database ready: {db.engine.url.render_as_string(hide_password=True)}")
    if _import_models(config, path, pack, None) != 0:
        return 1
    # The project's own trained classifiers (helmet, workwear, fire, smoking) ship in config/models.
    own = path.parent / "models"
    if project_models(own) and _import_models(config, path, own, own) != 0:
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


# --- parser -------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vigil", description="vigil video-analytics gateway")
    parser.add_argument("--config", help="gateway YAML (default: $VIGIL_CONFIG or config/demo.yaml)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

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

    cfg = sub.add_parser("config", help="check a configuration or write its JSON schema").add_subparsers(
        dest="config_command", required=True
    )
    p = cfg.add_parser("check", help="report every error in a YAML config with its line")
    p.add_argument("file")
    p.set_defaults(func=cmd_config_check)
    p = cfg.add_parser("schema", help="print (or --out FILE) the JSON schema of the configuration")
    p.add_argument("--out")
    p.set_defaults(func=cmd_config_schema)

    dbp = sub.add_parser("db", help="database migrations").add_subparsers(dest="db_command", required=True)
    dbp.add_parser("upgrade", help="migrate the database to the current schema").set_defaults(
        func=cmd_db_upgrade
    )
    dbp.add_parser("current", help="show the database's schema revision").set_defaults(func=cmd_db_current)

    users = sub.add_parser("users", help="people who log in").add_subparsers(
        dest="users_command", required=True
    )
    p = users.add_parser("add", help="add a user (password from a prompt or stdin)")
    p.add_argument("username")
    p.add_argument("--role", choices=["admin", "operator", "viewer"], required=True)
    p.add_argument("--password-stdin", action="store_true")
    p.set_defaults(func=cmd_users_add)

    tokens = sub.add_parser("tokens", help="machine API tokens").add_subparsers(
        dest="tokens_command", required=True
    )
    p = tokens.add_parser("create", help="create a scoped token and print it once")
    p.add_argument("name")
    p.add_argument("--role", choices=["admin", "operator", "viewer"], default="viewer")
    p.add_argument("--kind", choices=["machine", "callback"], default="machine")
    p.add_argument("--scope", action="append", help="repeat for each scope; default: all the role allows")
    p.add_argument("--ttl-days", type=float)
    p.set_defaults(func=cmd_tokens_create)

    alarms = sub.add_parser("alarms", help="stored alarms").add_subparsers(
        dest="alarms_command", required=True
    )
    p = alarms.add_parser("list", help="list alarms, newest first")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--camera")
    p.add_argument("--scene")
    p.add_argument("--status")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_alarms_list)

    models = sub.add_parser("models", help="model pack").add_subparsers(dest="models_command", required=True)
    p = models.add_parser("import", help="import a model pack folder (offline)")
    p.add_argument("dir")
    p.add_argument("--cards", help="folder of model cards (default: models/ beside the config file)")
    p.set_defaults(func=cmd_models_import)
    models.add_parser("list", help="imported models and versions").set_defaults(func=cmd_models_list)
    cli_samples.register_models(models)  # show / activate / rollback / retire / test / audit

    videos = sub.add_parser("video", help="offline video").add_subparsers(dest="video_command", required=True)
    p = videos.add_parser(
        "import", help="analyse a video file with a camera's scenes; alarms get video times"
    )
    p.add_argument("file")
    p.add_argument("--camera", required=True, help="camera whose scenes and models analyse the video")
    p.add_argument("--start", required=True, help="ISO 8601 time of the first frame (without zone: UTC)")
    p.add_argument(
        "--scene", action="append", help="only this scene of the camera (repeat for several); default: all"
    )
    p.add_argument(
        "--model", help="model the scenes read instead of their own: NAME, VERSION_ID or NAME@VERSION_ID"
    )
    p.add_argument("--max-seconds", type=float, help="analyse only this many seconds of the video")
    p.add_argument(
        "--capture-interval", type=float, metavar="S", help="also save a frame every S s of video as a sample"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_video_import)

    sub.add_parser("scenes", help="the scene catalogue").set_defaults(func=cmd_scenes)
    cli_uplink.register(sub)
    cli_samples.register(sub)  # `samples` and `tasks`
    cli_train.register(sub)  # `train TASK` (needs the `train` extra: PyTorch CPU)
    add_eval_parser(sub)
    add_discover_parser(sub)
    add_seed_parser(sub)  # `seed`: realistic cameras and alarms for load tests
    cli_video.register(sub)  # `replay`: history replay over the video library
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"configuration error in {exc.path}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    except SchemaOutdated as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
