"""`vigil video import` and `vigil replay`: offline video from the command line, with a progress bar.

`video import` keeps a file in the video library and analyses it with a camera's scenes (alarms get
video times). `replay` is the same job as POST /api/replay (gateway/videos/library.py), run in this
process and stored with the others; the command waits for it and lists what it found.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select
from tqdm import tqdm

from analyzers.scenes import SceneConfig
from gateway.app import Gateway
from gateway.cli.common import open_config, parse_time
from gateway.config.schema import CameraConfig
from gateway.db.schema import Alarm, AnalysisJob
from gateway.times import as_utc
from gateway.videos.importer import VideoImportError, VideoJobResult, find_camera
from gateway.videos.library import (
    ACTIVE,
    LibraryError,
    StoredJobs,
    import_video,
    job_json,
    jobs_for,
    submit_replay,
)


def register(sub: Any) -> None:
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

    p = sub.add_parser(
        "replay", help="history replay: run a model version over the library videos of cameras in a range"
    )
    p.add_argument("--camera", action="append", required=True, help="camera id (repeat for several)")
    p.add_argument("--since", required=True, help="ISO 8601 start of the range (without zone: UTC)")
    p.add_argument("--until", required=True, help="ISO 8601 end of the range (at most 31 days later)")
    p.add_argument("--model", help="NAME, VERSION_ID or NAME@VERSION_ID; default: each scene's own model")
    p.add_argument("--scene", action="append", help="only this scene (repeat for several); default: all")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_replay)


def _time(raw: str, name: str) -> dt.datetime:
    try:
        return parse_time(raw)
    except ValueError:
        raise SystemExit(
            f"--{name} {raw!r} is not an ISO 8601 time; e.g. 2026-11-21T08:00:00+08:00 (without zone: UTC)"
        ) from None


def cmd_replay(args: argparse.Namespace) -> int:
    try:
        since, until = _time(args.since, "since"), _time(args.until, "until")
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 2
    config, path = open_config(args)
    gateway = Gateway(config, path, analyse=False)
    try:
        gateway.db.ensure_current()
        jobs = jobs_for(gateway)  # not serving(): jobs of a running gateway are not this command's
        assert isinstance(jobs, StoredJobs)
        try:
            job = submit_replay(gateway, args.camera, since, until, args.model, args.scene, "cli", jobs=jobs)
        except LibraryError as exc:
            print(f"replay refused: {exc.message}", file=sys.stderr)
            return 2
        bar = tqdm(desc=f"replay {job.id}", unit="frame", file=sys.stderr, disable=args.no_progress)
        try:
            while job.status in ACTIVE:
                if job.total and bar.total != job.total:
                    bar.total = job.total
                bar.update(job.frames - bar.n)
                time.sleep(0.2)
            bar.update(job.frames - bar.n)
        except KeyboardInterrupt:
            jobs.cancel(job.id)
            while job.status in ACTIVE:
                time.sleep(0.1)
        finally:
            bar.close()
        with gateway.db.session() as s:
            row = s.get(AnalysisJob, job.id)
            assert row is not None
            out = job_json(row)
    finally:
        gateway.stop()
    return _report(out)


def _report(out: dict[str, Any]) -> int:
    version = out["model_version_id"] or "each scene's own"
    print(
        f"replay {out['id']} {out['status']}: {len(out['videos'])} video part(s), {out['frames_done']} "
        f"frames, {out['alarm_count']} alarm(s); model {out['model'] or '-'} (version {version})"
    )
    for note in out["notes"]:
        print(f"  {note['message']}", file=sys.stderr)
    for part in out["videos"]:
        end = f"{part['to_s']:.1f}" if part["to_s"] is not None else "end"
        line = f"  video {part['video_id']} ({part['camera_id']}) {part['from_s']:.1f} s..{end}: "
        line += f"{part['status']}, {part['frames']} frames, {part['alarm_count']} alarm(s)"
        print(line + (f": {part['error']}" if part["error"] else ""))
    if out["alarms"]:
        print("alarms: " + " ".join(out["alarms"]))
    if out["error"]:
        print(f"replay failed: {out['error']}", file=sys.stderr)
    return 0 if out["status"] == "done" else 1


def _video_time(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes, secs = divmod(seconds, 60)
    return f"{int(minutes // 60)}:{int(minutes % 60):02}:{secs:04.1f}"


def cmd_video_import(args: argparse.Namespace) -> int:
    video = Path(args.file)
    if not video.is_file():
        print(f"video file not found: {video}", file=sys.stderr)
        return 2
    try:
        start = parse_time(args.start)
    except ValueError:
        print(
            f"--start {args.start!r} is not an ISO 8601 time; e.g. 2026-11-21T08:00:00+08:00 "
            "(a time without zone is UTC)",
            file=sys.stderr,
        )
        return 2
    config, path = open_config(args)
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
        try:
            scenes = _chosen_scenes(camera, args.scene, args.model)
        except ValueError as exc:
            print(str(exc), file=sys.stderr)
            return 2
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
    _report_import(video, camera.id, kept.id, result, rows)
    return 0


def _chosen_scenes(
    camera: CameraConfig, keys: list[str] | None, model: str | None
) -> list[SceneConfig] | None:
    """The camera's scenes named by --scene (all when None), each reading --model when given.
    ValueError names the scenes the camera lacks."""
    scenes = None
    if keys:
        by_key = {s.scene: s for s in camera.scenes}
        missing = [k for k in keys if k not in by_key]
        if missing:
            raise ValueError(
                f"camera {camera.id} has no scene {', '.join(missing)}; it has: {', '.join(by_key) or 'none'}"
            )
        scenes = [by_key[k].model_copy(update={"enabled": True}) for k in dict.fromkeys(keys)]
    if model:
        # Every chosen scene reads this model version (history replay with an older or newer one).
        scenes = [s.model_copy(update={"model": model}) for s in (scenes or camera.scenes)]
    return scenes


def _report_import(
    video: Path, camera_id: str, kept_id: str, result: VideoJobResult, rows: list[tuple[Any, ...]]
) -> None:
    print(
        f"{video.name} on camera {camera_id}: {result.frames} frames ({result.duration_s:.1f} s of video) "
        f"in {result.elapsed_s:.1f} s ({result.fps:.0f} frames/s), {len(rows)} alarm(s); "
        f"kept in the video library as {kept_id}"
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
