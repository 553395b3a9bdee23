"""`vigil replay`: history replay over the video library from the command line, with a progress bar.

The same job as POST /api/replay (gateway/video_library.py), run in this process and stored with the
others; the command waits for it and lists what it found.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path
from typing import Any

from gateway.config import default_config_path, load_config
from gateway.times import as_utc


def register(sub: Any) -> None:
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
        return as_utc(dt.datetime.fromisoformat(raw))
    except ValueError:
        raise SystemExit(
            f"--{name} {raw!r} is not an ISO 8601 time; e.g. 2026-11-21T08:00:00+08:00 (without zone: UTC)"
        ) from None


def cmd_replay(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from gateway.db.schema import AnalysisJob
    from gateway.service import Gateway
    from gateway.video_import import jobs_for
    from gateway.video_library import ACTIVE, LibraryError, StoredJobs, job_json, submit_replay

    try:
        since, until = _time(args.since, "since"), _time(args.until, "until")
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 2
    path = Path(args.config) if args.config else default_config_path()
    gateway = Gateway(load_config(path), path, analyse=False)
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
