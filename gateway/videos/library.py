"""The video library and its analysis jobs (uploads and history replays), kept in the database.

Uploaded and imported videos are stored once under ``<storage>/videos/`` by their SHA-256 and listed
in ``videos`` with what PyAV reads of them (start, duration, size, codec). They follow the evidence
retention (``storage.evidence_retention_days``): the retention sweep removes them with the evidence.

Jobs are ``analysis_jobs`` rows with one ``analysis_job_videos`` row per video they analyse. They run
on the worker of gateway/videos/importer.py (one at a time); this module's StoredJobs writes their state
as it changes. A job that was queued or running when the gateway stopped is failed as "interrupted by
a restart" when the next one serves the API (recover_once), never by a command-line run beside it.

History replay runs a chosen model version (or each scene's own) over the library videos of some
cameras that overlap a time range, only the overlapping part of each, as offline analysis does: the
alarms carry video times and are not pushed upstream.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import mimetypes
import os
import re
import shutil
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from analyzers import SceneConfig
from analyzers.runtime.families import family_names
from gateway.cameras.registry import camera_is_gb
from gateway.db import Database
from gateway.db.files import ContentStore
from gateway.db.schema import (
    Alarm,
    AnalysisJob,
    AnalysisJobVideo,
    Camera,
    Video,
    utcnow,
)
from gateway.ids import new_ulid
from gateway.models.pack import ModelPackError, active_model_dir, sha256_file
from gateway.times import as_utc, iso
from gateway.videos.importer import (
    INTERRUPTED,
    CancelledError,
    Host,
    VideoImportError,
    VideoJob,
    VideoJobResult,
    VideoJobs,
    analyse_video,
    find_camera,
    open_video,
)

if TYPE_CHECKING:
    from gateway.config.schema import CameraConfig

log = logging.getLogger(__name__)

MAX_ALARM_IDS = 500  # alarm ids a job answer lists (the count is always exact)
MAX_REPLAY_DAYS = 31
MAX_REPLAY_CAMERAS = 50
ORPHAN_AGE_S = 86400.0  # a file under videos/ that no row names, older than this, is a crash's leftover
ACTIVE = ("queued", "running")
SCENE_FAMILIES = family_names("detector", "classifier")  # what the scenes can read
EXT = re.compile(r"^[a-z0-9]{1,5}$")


class LibraryError(Exception):
    """A request the library refuses; ``status`` is the HTTP status, the message says what to do."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class VideoStore(ContentStore):
    folder = "videos"

    def put_file(self, src: Path, digest: str, ext: str, move: bool) -> tuple[str, bool]:
        """Store a file under its digest (moved or copied, atomically); returns (relative path, new?)."""
        rel = Path(self.folder) / digest[:2] / digest[2:4] / f"{digest}.{ext}"
        target = self.root / rel
        if target.exists():
            if move:
                src.unlink(missing_ok=True)
            return rel.as_posix(), False
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        os.close(fd)
        try:
            if move:
                shutil.move(src, tmp)
            else:
                shutil.copyfile(src, tmp)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return rel.as_posix(), True


@dataclass
class Probe:
    duration_s: float
    frames: int | None
    width: int | None
    height: int | None
    codec: str
    format: str


def probe(path: Path) -> Probe:
    """What PyAV reads of a video (headers only); VideoImportError when it is not one."""
    container = open_video(path)
    try:
        stream = container.streams.video[0]
        rate = float(stream.average_rate or 0)
        if stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        elif container.duration:
            duration = container.duration / 1_000_000
        elif stream.frames and rate:
            duration = stream.frames / rate
        else:
            duration = 0.0
        frames = stream.frames or (math.ceil(duration * rate) if rate and duration else None)
        if duration <= 0:
            raise VideoImportError(f"{path.name}: the video has no duration; remux it (ffmpeg -c copy)")
        return Probe(
            round(duration, 3),
            frames,
            stream.codec_context.width or None,
            stream.codec_context.height or None,
            stream.codec_context.name or "",
            container.format.name,
        )
    finally:
        container.close()


def _ext(filename: str, fmt: str) -> str:
    ext = Path(filename).suffix.lower().lstrip(".")
    if EXT.match(ext):
        return ext
    first = fmt.split(",")[0]
    return first if EXT.match(first) else "bin"


# --- JSON shapes ----------------------------------------------------------------------------------


def video_json(v: Video, camera: Camera | None = None) -> dict[str, Any]:
    return {
        "id": v.id,
        "camera_id": v.camera_id,
        "camera_name": camera.name if camera is not None else None,
        "location": camera.location if camera is not None else None,
        "started_at": iso(v.started_at),
        "ended_at": iso(v.ended_at),
        "duration_s": v.duration_s,
        "frames": v.frames,
        "width": v.width,
        "height": v.height,
        "codec": v.codec,
        "size_bytes": v.size_bytes,
        "sha256": v.sha256,
        "filename": v.filename,
        "uploaded_by": v.uploaded_by,
        "created_at": iso(v.created_at),
        "retain_until": iso(v.retain_until),
        "url": f"/api/videos/{v.id}/file",
    }


def _progress(status: str, done: int, total: int | None) -> float:
    if status == "done":
        return 1.0
    return round(min(1.0, done / total), 4) if total else 0.0


def job_json(row: AnalysisJob, live: VideoJob | None = None) -> dict[str, Any]:
    """A job as the API shows it; a job running in this process has its live progress."""
    status, done, total = row.status, row.frames_done, row.frames_total
    alarm_count = row.alarm_count
    if live is not None:
        status, done, total, alarm_count = live.status, live.frames, live.total, len(live.alarm_ids)
    alarms: list[str] = []
    for part in row.videos:
        alarms.extend(part.alarm_ids or [])
    return {
        "id": row.id,
        "kind": row.kind,
        "status": status,
        "camera_ids": list(row.camera_ids or []),
        "since": iso(row.since),
        "until": iso(row.until),
        "scenes": row.scenes,
        "model": row.model,
        "model_version_id": row.model_version_id,
        "progress": _progress(status, done, total),
        "frames_done": done,
        "frames_total": total,
        "alarm_count": alarm_count,
        "alarms": alarms[:MAX_ALARM_IDS],
        "notes": list(row.notes or []),
        "videos": [
            {
                "video_id": p.video_id,
                "camera_id": p.camera_id,
                "from_s": p.from_s,
                "to_s": p.to_s,
                "status": p.status,
                "frames": p.frames,
                "total_frames": p.total,
                "alarm_count": p.alarm_count,
                "model_versions": p.model_versions,
                "error": p.error,
            }
            for p in row.videos
        ],
        "error": row.error,
        "created_by": row.created_by,
        "created_at": iso(row.created_at),
        "started_at": iso(row.started_at),
        "finished_at": iso(row.finished_at),
        "url": f"/api/replay/{row.id}" if row.kind == "replay" else f"/api/jobs/{row.id}",
    }


def _ts(value: dt.datetime | None) -> float | None:
    return as_utc(value).timestamp() if value is not None else None


def _from_ts(value: float | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(value, dt.UTC) if value is not None else None


# --- jobs in the database -------------------------------------------------------------------------


class StoredJobs(VideoJobs):
    """The gateway's jobs (gateway/videos/importer.py), written to ``analysis_jobs`` as they change."""

    def __init__(self, gateway: Host) -> None:
        super().__init__(gateway)
        self.db: Database = gateway.db
        self._recovered = False
        self._recover_lock = threading.Lock()

    def recover_once(self) -> None:
        """Fail the jobs a stopped gateway left queued or running (once, when this one serves)."""
        with self._recover_lock:
            if self._recovered:
                return
            self._recovered = True
            mine = set(self._jobs)
            with self.db.session() as s:
                stale = [
                    j
                    for j in s.scalars(select(AnalysisJob).where(AnalysisJob.status.in_(ACTIVE)))
                    if j.id not in mine
                ]
                for job in stale:
                    job.status, job.error, job.finished_at = "failed", INTERRUPTED, utcnow()
                    for part in job.videos:
                        if part.status in ACTIVE:
                            part.status, part.error = "failed", INTERRUPTED
            if stale:
                log.warning("%d analysis job(s) interrupted by a restart marked failed", len(stale))

    def saved(self, job: VideoJob) -> None:
        with self.db.session() as s:
            row = s.get(AnalysisJob, job.id)
            if row is None:
                row = AnalysisJob(
                    id=job.id,
                    kind=job.kind,
                    camera_ids=[job.camera_id],
                    model=job.model,
                    created_by=job.created_by,
                    created_at=_from_ts(job.created_at),
                    scenes=[c.scene for c in job.scenes] if job.scenes is not None else None,
                )
                s.add(row)
                if job.video_id is not None:
                    row.videos.append(AnalysisJobVideo(video_id=job.video_id, camera_id=job.camera_id))
            row.status, row.error = job.status, job.error
            row.frames_done, row.frames_total = job.frames, job.total
            row.alarm_count = len(job.alarm_ids)
            row.started_at, row.finished_at = _from_ts(job.started_at), _from_ts(job.finished_at)
            if job.status not in ACTIVE:  # parts a cancel or a shutdown left behind end with the job
                for left in row.videos:
                    if left.status in ACTIVE:
                        left.status = "cancelled" if job.status == "cancelled" else "failed"
                        left.error = left.error or job.error
            if job.kind == "upload" and row.videos:
                part = row.videos[0]
                part.status, part.frames, part.total, part.error = (
                    job.status,
                    job.frames,
                    job.total,
                    job.error,
                )
                part.alarm_count, part.alarm_ids = len(job.alarm_ids), job.alarm_ids[:MAX_ALARM_IDS]
                if job.result is not None:
                    part.model_versions = job.result.model_versions
                    row.model_version_id = _single(job.result.model_versions)
                    stamp_versions(s, job.result.alarm_ids, job.result.model_versions)

    def load(self, job_id: str) -> VideoJob | None:
        with self.db.session() as s:
            row = s.get(AnalysisJob, job_id)
            if row is None:
                return None
            video = s.get(Video, row.videos[0].video_id) if row.videos and row.videos[0].video_id else None
            start = row.since or (video.started_at if video is not None else row.created_at)
            alarms = [a for p in row.videos for a in (p.alarm_ids or [])]
            return VideoJob(
                row.id,
                (row.camera_ids or [""])[0],
                None,
                as_utc(start),
                status=row.status,
                frames=row.frames_done,
                total=row.frames_total,
                alarm_ids=alarms,
                error=row.error,
                created_at=_ts(row.created_at) or 0.0,
                started_at=_ts(row.started_at),
                finished_at=_ts(row.finished_at),
                kind=row.kind,
                model=row.model,
                video_id=row.videos[0].video_id if row.kind == "upload" and row.videos else None,
                created_by=row.created_by,
            )


def _single(versions: dict[str, str]) -> str | None:
    """The one model version every scene read, or None when they read different ones."""
    distinct = set(versions.values())
    return distinct.pop() if len(distinct) == 1 else None


def stamp_versions(s: Session, alarm_ids: list[str], versions: dict[str, str]) -> None:
    """Record on each alarm the model version its scene read."""
    for scene, version_id in versions.items():
        for chunk in range(0, len(alarm_ids), 500):
            s.execute(
                update(Alarm)
                .where(Alarm.id.in_(alarm_ids[chunk : chunk + 500]), Alarm.scene == scene)
                .values(model_version_id=version_id)
            )


def serving(gateway: Host) -> StoredJobs:
    """The job registry as the API uses it: jobs a stopped gateway left running are failed first."""
    jobs = jobs_for(gateway)
    assert isinstance(jobs, StoredJobs)
    jobs.recover_once()
    return jobs


# --- the library ----------------------------------------------------------------------------------


def add_video(
    gateway: Host,
    path: Path,
    camera_id: str,
    start: dt.datetime,
    filename: str = "",
    uploaded_by: str = "",
    move: bool = False,
) -> tuple[Video, bool]:
    """Keep a video in the library; returns (row, whether it is new).

    The same bytes for the same camera and start are the row there is already. Raises
    VideoImportError (nothing kept; a moved file is removed) for a file that is not a video.
    """
    try:
        info = probe(path)
        digest = sha256_file(path)
    except BaseException:
        if move:
            path.unlink(missing_ok=True)
        raise
    start = as_utc(start)
    db = gateway.db
    with db.session() as s:
        existing = s.scalar(
            select(Video).where(
                Video.sha256 == digest, Video.camera_id == camera_id, Video.started_at == start
            )
        )
        if existing is not None:
            if move:
                path.unlink(missing_ok=True)
            s.expunge(existing)
            return existing, False
    store = VideoStore(gateway.config.storage.root)
    size = path.stat().st_size
    rel, _ = store.put_file(path, digest, _ext(filename or path.name, info.format), move)
    now = utcnow()
    row = Video(
        id=new_ulid(),
        camera_id=camera_id,
        started_at=start,
        ended_at=start + dt.timedelta(seconds=info.duration_s),
        duration_s=info.duration_s,
        frames=info.frames,
        width=info.width,
        height=info.height,
        codec=info.codec[:32],
        size_bytes=size,
        sha256=digest,
        path=rel,
        filename=(filename or path.name)[:255],
        uploaded_by=uploaded_by[:100],
        created_at=now,
        retain_until=now + dt.timedelta(days=gateway.config.storage.evidence_retention_days),
    )
    with db.session() as s:
        s.add(row)
        s.flush()
        s.expunge(row)
    return row, True


def submit_upload(
    gateway: Host,
    path: Path,
    camera_id: str,
    start: dt.datetime,
    model: str | None,
    filename: str,
    uploaded_by: str,
) -> VideoJob:
    """An uploaded file into the library and an analysis job for it. A file that is not a video is
    removed and its job fails at once, saying why (the upload was accepted before it could be read)."""
    jobs = serving(gateway)
    try:
        video, _ = add_video(gateway, path, camera_id, start, filename, uploaded_by, move=True)
    except VideoImportError as exc:
        now = time.time()
        failed = VideoJob(
            new_ulid(),
            camera_id,
            None,
            as_utc(start),
            status="failed",
            error=str(exc),
            started_at=now,
            finished_at=now,
            model=model,
            created_by=uploaded_by,
        )
        return jobs.enqueue(failed)
    return jobs.submit(
        gateway.config.storage.root / video.path,
        camera_id,
        start,
        model=model,
        video_id=video.id,
        created_by=uploaded_by,
    )


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def search_videos(
    db: Database,
    camera_id: str | None = None,
    location: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int = 50,
    before: str | None = None,
) -> dict[str, Any]:
    """Library videos, newest first: of a camera, of cameras whose location (or name) contains the
    text, overlapping [since, until]; each with its jobs and the alarms they raised on it."""
    stmt = select(Video)
    if camera_id:
        stmt = stmt.where(Video.camera_id == camera_id)
    if location:
        like = _like(location)
        placed = select(Camera.id).where(
            or_(Camera.location.ilike(like, escape="\\"), Camera.name.ilike(like, escape="\\"))
        )
        stmt = stmt.where(Video.camera_id.in_(placed))
    if since is not None:
        stmt = stmt.where(Video.ended_at > since)
    if until is not None:
        stmt = stmt.where(Video.started_at < until)
    with db.session() as s:
        total = s.scalar(stmt.with_only_columns(func.count(), maintain_column_froms=True))
        if before:
            stmt = stmt.where(Video.id < before)
        rows = list(s.scalars(stmt.order_by(Video.id.desc()).limit(limit)))
        ids = [v.id for v in rows]
        cams = {c.id: c for c in s.scalars(select(Camera).where(Camera.id.in_({v.camera_id for v in rows})))}
        parts: dict[str, list[tuple[AnalysisJobVideo, AnalysisJob]]] = {}
        if ids:
            for part, job in s.execute(
                select(AnalysisJobVideo, AnalysisJob)
                .join(AnalysisJob, AnalysisJob.id == AnalysisJobVideo.job_id)
                .where(AnalysisJobVideo.video_id.in_(ids))
                .order_by(AnalysisJob.id.desc())
            ):
                parts.setdefault(part.video_id or "", []).append((part, job))
        items = []
        for v in rows:
            out = video_json(v, cams.get(v.camera_id))
            jobs = parts.get(v.id, [])
            out["jobs"] = [
                {
                    "id": job.id,
                    "kind": job.kind,
                    "status": part.status,
                    "progress": _progress(part.status, part.frames, part.total),
                    "alarm_count": part.alarm_count,
                    "model": job.model,
                    "created_at": iso(job.created_at),
                    "finished_at": iso(job.finished_at),
                    "url": f"/api/replay/{job.id}" if job.kind == "replay" else f"/api/jobs/{job.id}",
                }
                for part, job in jobs
            ]
            out["alarm_count"] = sum(part.alarm_count for part, _ in jobs)
            items.append(out)
    return {"items": items, "total": total, "next": ids[-1] if len(ids) == limit else None}


def get_video(db: Database, video_id: str) -> Video:
    with db.session() as s:
        row = s.get(Video, video_id)
        if row is None:
            raise LibraryError(404, f"no video {video_id} in the library (GET /api/videos lists them)")
        s.expunge(row)
        return row


def video_file(gateway: Host, video_id: str) -> tuple[Path, str]:
    """The stored file of a video and its media type."""
    row = get_video(gateway.db, video_id)
    path = VideoStore(gateway.config.storage.root).path(row.path)
    if not path.is_file():
        raise LibraryError(410, f"the file of video {video_id} is missing from storage")
    media = mimetypes.guess_type(f"x{path.suffix}")[0] or "application/octet-stream"
    return path, media


def delete_video(gateway: Host, video_id: str) -> dict[str, Any]:
    """Remove a video (its file when no other row names it); refused while a job uses it."""
    with gateway.db.session() as s:
        row = s.get(Video, video_id)
        if row is None:
            raise LibraryError(404, f"no video {video_id} in the library")
        busy = s.scalar(
            select(AnalysisJob.id)
            .join(AnalysisJobVideo, AnalysisJobVideo.job_id == AnalysisJob.id)
            .where(AnalysisJobVideo.video_id == video_id, AnalysisJob.status.in_(ACTIVE))
            .limit(1)
        )
        if busy is not None:
            raise LibraryError(
                409, f"video {video_id} is used by job {busy}; cancel it (or wait for it to end) first"
            )
        doomed = _forget(s, [row])
    removed = _remove_files(gateway.config.storage.root, doomed)
    return {"id": video_id, "deleted": True, "file_removed": bool(removed[0])}


def _forget(s: Session, rows: list[Video]) -> set[str]:
    """Delete video rows (their job results stay, without the video); the paths no row names now."""
    ids = [v.id for v in rows]
    paths = {v.path for v in rows}
    s.execute(update(AnalysisJobVideo).where(AnalysisJobVideo.video_id.in_(ids)).values(video_id=None))
    for v in rows:
        s.delete(v)
    s.flush()
    named = set(s.scalars(select(Video.path).where(Video.path.in_(paths))))
    return paths - named


def _remove_files(root: Path, rels: set[str]) -> tuple[int, int]:
    store = VideoStore(root)
    files = size = 0
    for rel in rels:
        path = store.path(rel)
        if path.is_file():
            size += path.stat().st_size
            path.unlink()
            files += 1
    return files, size


# --- retention ------------------------------------------------------------------------------------


def sweep_videos(db: Database, root: Path, now: dt.datetime) -> tuple[int, int, int]:
    """Remove videos past their retention (not while a job uses them) and crash leftovers under
    videos/; returns (rows, files, bytes) removed. Files go after the commit, as evidence does."""
    with db.session() as s:
        busy = (
            select(AnalysisJobVideo.video_id)
            .join(AnalysisJob, AnalysisJob.id == AnalysisJobVideo.job_id)
            .where(AnalysisJob.status.in_(ACTIVE), AnalysisJobVideo.video_id.is_not(None))
        )
        expired = list(s.scalars(select(Video).where(Video.retain_until < now, Video.id.not_in(busy))))
        doomed = _forget(s, expired) if expired else set()
    files, size = _remove_files(root, doomed)
    folder = root / VideoStore.folder
    if folder.is_dir():
        cutoff = time.time() - ORPHAN_AGE_S
        old = [p for p in folder.rglob("*") if p.is_file() and p.stat().st_mtime < cutoff]
        if old:
            with db.session() as s:
                named = set(s.scalars(select(Video.sha256).where(Video.sha256.in_({p.stem for p in old}))))
            for p in old:
                if p.stem not in named:
                    p.unlink(missing_ok=True)
    if expired:
        log.info("video retention: %d video(s), %d file(s), %d bytes removed", len(expired), files, size)
    return len(expired), files, size


def videos_usage_bytes(root: Path) -> int:
    folder = root / VideoStore.folder
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


def videos_usage(db: Database) -> dict[str, Any]:
    with db.session() as s:
        count, size, oldest = s.execute(
            select(func.count(), func.sum(Video.size_bytes), func.min(Video.created_at))
        ).one()
    return {"count": int(count), "bytes": int(size or 0), "oldest": iso(oldest)}


# --- history replay -------------------------------------------------------------------------------


def check_model(gateway: Host, ref: str) -> str:
    """The version id a model reference resolves to; LibraryError 422 when it cannot drive scenes."""
    try:
        _path, card, version_id = active_model_dir(gateway.db, gateway.config.storage.root, ref)
    except ModelPackError as exc:
        raise LibraryError(422, f"model: {exc}") from exc
    if card.family not in SCENE_FAMILIES:
        raise LibraryError(
            422,
            f"model: {card.name} is a {card.family} model; the scenes read a detector or a classifier "
            f"({', '.join(SCENE_FAMILIES)})",
        )
    return version_id


def submit_replay(
    gateway: Host,
    camera_ids: list[str],
    since: dt.datetime,
    until: dt.datetime,
    model: str | None = None,
    scenes: list[str] | None = None,
    created_by: str = "",
    jobs: StoredJobs | None = None,
) -> VideoJob:
    """Check a history replay, store its job with the part of each video inside the range, and queue it.

    Raises LibraryError (nothing stored) for an unknown camera or scene, a bad range or an unknown model.
    """
    since, until = as_utc(since), as_utc(until)
    camera_ids = list(dict.fromkeys(camera_ids))
    if not 1 <= len(camera_ids) <= MAX_REPLAY_CAMERAS:
        raise LibraryError(422, f"camera_ids: name 1 to {MAX_REPLAY_CAMERAS} cameras")
    if until <= since:
        raise LibraryError(422, "until must be after since")
    if until - since > dt.timedelta(days=MAX_REPLAY_DAYS):
        raise LibraryError(422, f"the range may span at most {MAX_REPLAY_DAYS} days; split the replay")
    cameras: list[CameraConfig] = []
    for cid in camera_ids:
        cam = find_camera(gateway, cid)
        if cam is None:
            raise LibraryError(
                422,
                f"unknown camera {cid!r}: GET /api/cameras lists them (add one with POST /api/cameras)",
            )
        cameras.append(cam)
    if scenes:
        for cam in cameras:
            have = [c.scene for c in cam.scenes]
            missing = [k for k in scenes if k not in have]
            if missing:
                raise LibraryError(
                    422,
                    f"camera {cam.id} has no scene {', '.join(missing)}; it has: {', '.join(have) or 'none'}",
                )
    version_id = check_model(gateway, model) if model else None
    job_id = new_ulid()
    notes: list[dict[str, Any]] = []
    parts: list[AnalysisJobVideo] = []
    with gateway.db.session() as s:
        for cam in cameras:
            videos = list(
                s.scalars(
                    select(Video)
                    .where(Video.camera_id == cam.id, Video.started_at < until, Video.ended_at > since)
                    .order_by(Video.started_at)
                )
            )
            if not videos:
                note = f"camera {cam.id} has no library video between {iso(since)} and {iso(until)}"
                if camera_is_gb(s, cam):
                    note += (
                        f"; the device's own recordings are listed by GET /api/cameras/{cam.id}/records "
                        "(pulling them into the library is not part of a replay)"
                    )
                notes.append({"camera_id": cam.id, "message": note})
                continue
            for v in videos:
                start = as_utc(v.started_at)
                from_s = max(0.0, (since - start).total_seconds())
                to_s: float | None = (until - start).total_seconds()
                if to_s is not None and to_s >= v.duration_s:
                    to_s = None  # to its end
                span = (to_s if to_s is not None else v.duration_s) - from_s
                total = math.ceil(v.frames * span / v.duration_s) if v.frames and v.duration_s else None
                parts.append(
                    AnalysisJobVideo(
                        video_id=v.id, camera_id=cam.id, from_s=round(from_s, 3), to_s=to_s, total=total
                    )
                )
        done = not parts
        now = utcnow()
        s.add(
            AnalysisJob(
                id=job_id,
                kind="replay",
                status="done" if done else "queued",
                camera_ids=camera_ids,
                since=since,
                until=until,
                scenes=scenes or None,
                model=model,
                model_version_id=version_id,
                frames_total=sum(p.total or 0 for p in parts),
                notes=notes,
                created_by=created_by[:100],
                created_at=now,
                started_at=now if done else None,
                finished_at=now if done else None,
                videos=parts,
            )
        )
    jobs = jobs or serving(gateway)
    job = VideoJob(
        job_id,
        camera_ids[0],
        None,
        since,
        kind="replay",
        model=model,
        created_by=created_by,
        status="done" if done else "queued",
        total=sum(p.total or 0 for p in parts),
    )
    job.work = lambda j: _run_replay(jobs, j, scenes)
    return jobs.enqueue(job)


def _run_replay(jobs: StoredJobs, job: VideoJob, scenes: list[str] | None) -> None:
    """Each planned video part in turn; a video that fails is recorded and the others still run."""
    gateway, db = jobs.gateway, jobs.db
    with db.session() as s:
        plan = [
            (p.id, p.video_id, p.camera_id, p.from_s, p.to_s, p.total)
            for p in s.scalars(
                select(AnalysisJobVideo)
                .where(AnalysisJobVideo.job_id == job.id)
                .order_by(AnalysisJobVideo.id)
            )
        ]
        paths = {
            v.id: (v.path, as_utc(v.started_at))
            for v in s.scalars(select(Video).where(Video.id.in_({p[1] for p in plan if p[1]})))
        }
    job.total = sum(p[5] or 0 for p in plan) or None
    failures: list[str] = []
    last_save = time.monotonic()
    for index, (part_id, video_id, camera_id, from_s, to_s, _total) in enumerate(plan):
        base = job.frames

        def progress(done: int, total: int | None, base: int = base) -> None:
            nonlocal last_save
            job.frames = base + done
            if time.monotonic() - last_save >= 2.0:
                last_save = time.monotonic()
                jobs.saved(job)

        def finish(status: str, part_id: int = part_id, **values: Any) -> None:
            with db.session() as s:
                part = s.get(AnalysisJobVideo, part_id)
                if part is not None:
                    part.status = status
                    for key, value in values.items():
                        setattr(part, key, value)

        if video_id is None or video_id not in paths:
            failures.append(f"video {video_id}: removed from the library")
            finish("failed", error="the video was removed from the library before it was analysed")
            continue
        rel, start = paths[video_id]
        finish("running")
        cam = find_camera(gateway, camera_id)
        chosen: list[SceneConfig] | None = None
        if scenes and cam is not None:
            by_key = {c.scene: c for c in cam.scenes}
            chosen = [by_key[k].model_copy(update={"enabled": True}) for k in scenes if k in by_key]
        try:
            result = analyse_video(
                gateway,
                VideoStore(gateway.config.storage.root).path(rel),
                camera_id,
                start,
                chosen,
                progress=progress,
                max_seconds=to_s,
                offset_s=from_s,
                job_id=f"{job.id}.{index}",  # each video's events are its own (event keys)
                stop=job.cancel,
                model=job.model,
            )
        except CancelledError:
            finish("failed" if jobs.stopping else "cancelled")
            raise
        except VideoImportError as exc:
            failures.append(f"video {video_id}: {exc}")
            finish("failed", error=str(exc))
            continue
        job.alarm_ids.extend(result.alarm_ids)
        job.frames = base + result.frames
        with db.session() as s:
            stamp_versions(s, result.alarm_ids, result.model_versions)
            part = s.get(AnalysisJobVideo, part_id)
            if part is not None:
                part.status, part.frames = "done", result.frames
                part.total = part.total or result.frames
                part.alarm_count, part.alarm_ids = len(result.alarm_ids), result.alarm_ids[:MAX_ALARM_IDS]
                part.model_versions = result.model_versions
        jobs.saved(job)
    if plan and len(failures) == len(plan):
        raise VideoImportError("no video could be analysed: " + "; ".join(failures[:5]))


def replay_list(gateway: Host, status: str | None, limit: int) -> list[dict[str, Any]]:
    """History replay jobs, newest first (optionally only those in ``status``); running ones live."""
    jobs = serving(gateway)
    stmt = select(AnalysisJob).where(AnalysisJob.kind == "replay")
    if status:
        stmt = stmt.where(AnalysisJob.status == status)
    with gateway.db.session() as s:
        items = []
        for row in s.scalars(stmt.order_by(AnalysisJob.id.desc()).limit(limit)):
            live = jobs.live(row.id)
            items.append(job_json(row, live if live is not None and live.status in ACTIVE else None))
    return items


def replay_json(gateway: Host, job_id: str) -> dict[str, Any]:
    jobs = serving(gateway)
    with gateway.db.session() as s:
        row = s.get(AnalysisJob, job_id)
        if row is None:
            raise LibraryError(404, f"no job {job_id}")
        live = jobs.live(job_id)
        return job_json(row, live if live is not None and live.status in ACTIVE else None)


def cancel_job(gateway: Host, job_id: str) -> dict[str, Any]:
    jobs = serving(gateway)
    with gateway.db.session() as s:
        row = s.get(AnalysisJob, job_id)
        if row is None:
            raise LibraryError(404, f"no job {job_id}")
        status = row.status
    if status not in ACTIVE:
        raise LibraryError(
            409, f"job {job_id} is {status} already; only a queued or running job can be cancelled"
        )
    if jobs.cancel(job_id) is None:
        raise LibraryError(
            409, f"job {job_id} does not run in this gateway process; it cannot be cancelled here"
        )
    return replay_json(gateway, job_id)


def import_video(
    gateway: Host,
    path: Path,
    camera_id: str,
    start: dt.datetime,
    scenes: list[SceneConfig] | None = None,
    created_by: str = "cli",
    **analyse: Any,
) -> tuple[VideoJobResult, Video]:
    """`vigil video import`: keep the file in the library (a copy) and analyse it now, as a stored job.

    Raises VideoImportError (nothing kept) for a file that is not a video, like analyse_video."""
    video, _ = add_video(gateway, path, camera_id, start, path.name, created_by)
    jobs = jobs_for(gateway)
    job = VideoJob(
        new_ulid(), camera_id, path, as_utc(start), scenes, video_id=video.id, created_by=created_by
    )
    job.status, job.started_at = "running", time.time()
    jobs.saved(job)
    try:
        result = analyse_video(gateway, path, camera_id, start, scenes, job_id=job.id, **analyse)
        job.result, job.frames, job.total, job.alarm_ids = (
            result,
            result.frames,
            result.total,
            result.alarm_ids,
        )
        job.status = "done"
    except VideoImportError as exc:
        job.status, job.error = "failed", str(exc)
        raise
    except BaseException:
        job.status, job.error = "failed", "interrupted"
        raise
    finally:
        job.finished_at = time.time()
        jobs.saved(job)
    return result, video


class LibraryShelf:
    """The video library as the evidence retention sees it (gateway/alarms/retention.py's VideoShelf)."""

    def __init__(self, db: Database, root: Path) -> None:
        self.db, self.root = db, root

    def sweep(self, now: dt.datetime) -> tuple[int, int, int]:
        return sweep_videos(self.db, self.root, now)

    def usage_bytes(self) -> int:
        return videos_usage_bytes(self.root)

    def usage(self) -> dict[str, Any]:
        return videos_usage(self.db)


_REGISTRY: weakref.WeakKeyDictionary[Host, VideoJobs] = weakref.WeakKeyDictionary()


_REGISTRY_LOCK = threading.Lock()


def jobs_for(gateway: Host) -> VideoJobs:
    """The gateway's job registry (created on first use), stored in the database by the video library."""
    with _REGISTRY_LOCK:
        jobs = _REGISTRY.get(gateway)
        if jobs is None:
            jobs = _REGISTRY[gateway] = StoredJobs(gateway)
        return jobs
