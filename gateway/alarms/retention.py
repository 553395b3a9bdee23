"""Evidence retention and the disk quota.

Alarm evidence is kept at least ``evidence_retention_days`` (183 by default, the regulation's six
months); a sweep removes what has expired. The quota never deletes evidence younger than its
retention: when usage passes ``quota_alarm_percent`` of the quota the gateway raises a storage alarm
(routed upstream like any alarm) and stops keeping clips, which are the bulk of the bytes, until
usage falls back below the mark; pictures are always kept.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import func, select

from gateway.alarms.clips import ClipRecorder
from gateway.alarms.recorder import OPEN_STATUSES
from gateway.alarms.writer import NewAlarm, write_alarm
from gateway.config.schema import StorageConfig
from gateway.db import Database
from gateway.db.files import EvidenceStore
from gateway.db.schema import Alarm, Evidence, utcnow
from gateway.delivery.outbox import Outbox
from gateway.times import iso

log = logging.getLogger(__name__)

STORAGE_EVENT = "gateway/storage/quota"
ORPHAN_AGE_S = 86400.0  # a file no row names, older than this, is a leftover of a crash
HYSTERESIS_PERCENT = 5.0  # clips come back only this far below the alarm mark
USAGE_MAX_AGE_S = 60.0  # walking the evidence tree is slow: scrapes and API calls share a reading


@dataclass
class SweepReport:
    expired_rows: int = 0
    files_removed: int = 0
    bytes_removed: int = 0
    orphans_removed: int = 0
    usage_bytes: int = 0
    quota_bytes: int | None = None
    over_mark: bool = False
    alarm_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class VideoShelf(Protocol):
    """Stored videos that follow the evidence retention (the video library, gateway/videos/library.py)."""

    def sweep(self, now: dt.datetime) -> tuple[int, int, int]:
        """Remove videos past their retention; (rows, files, bytes) removed."""
        ...

    def usage_bytes(self) -> int: ...

    def usage(self) -> dict[str, Any]: ...


class RetentionPolicy:
    def __init__(
        self,
        db: Database,
        store: EvidenceStore,
        config: StorageConfig,
        outbox: Outbox,
        clips: ClipRecorder | None = None,
        videos: VideoShelf | None = None,
    ) -> None:
        self.db, self.store, self.config, self.outbox = db, store, config, outbox
        self.clips = clips  # switched off over the quota mark
        self.videos = videos
        self.clips_allowed = True
        self.last: SweepReport | None = None
        self._usage: tuple[float, int] | None = None  # (monotonic time read, bytes)

    @property
    def quota_bytes(self) -> int | None:
        return int(self.config.quota_gb * 1024**3) if self.config.quota_gb else None

    def sweep(self, now: dt.datetime | None = None) -> SweepReport:
        now = now or utcnow()
        report = SweepReport(quota_bytes=self.quota_bytes)
        self._expire(now, report)
        self._expire_videos(now, report)
        self._orphans(report)
        report.usage_bytes = self.usage_bytes(fresh=True)
        self._quota(report)
        if self.clips is not None:
            self.clips.enabled = self.clips_allowed
        self.last = report
        log.info(
            "retention sweep: %d expired rows, %d files (%d bytes) removed, usage %d bytes",
            report.expired_rows,
            report.files_removed,
            report.bytes_removed,
            report.usage_bytes,
        )
        return report

    def _expire(self, now: dt.datetime, report: SweepReport) -> None:
        """Delete rows past their retention; a file goes only when no row still within retention names it."""
        with self.db.session() as s:
            expired = list(s.scalars(select(Evidence).where(Evidence.retain_until < now)))
            if not expired:
                return
            digests = {e.sha256 for e in expired}
            still_kept = set(
                s.scalars(
                    select(Evidence.sha256).where(Evidence.sha256.in_(digests), Evidence.retain_until >= now)
                )
            )
            doomed = {e.path for e in expired if e.sha256 not in still_kept}
            for e in expired:
                s.delete(e)
            report.expired_rows = len(expired)
        # Files after the commit: a crash in between leaves an orphan file, never a row without its file.
        for rel in doomed:
            path = self.store.path(rel)
            if path.is_file():
                report.bytes_removed += path.stat().st_size
                path.unlink()
                report.files_removed += 1

    def _expire_videos(self, now: dt.datetime, report: SweepReport) -> None:
        """The video library (uploads, imports) follows the evidence retention."""
        if self.videos is None:
            return
        rows, files, size = self.videos.sweep(now)
        report.expired_rows += rows
        report.files_removed += files
        report.bytes_removed += size

    def _orphans(self, report: SweepReport) -> None:
        root = self.store.root / self.store.folder
        cutoff = time.time() - ORPHAN_AGE_S
        candidates = [p for p in root.rglob("*") if p.is_file() and p.stat().st_mtime < cutoff]
        if not candidates:
            return
        with self.db.session() as s:
            named = set(
                s.scalars(select(Evidence.sha256).where(Evidence.sha256.in_({p.stem for p in candidates})))
            )
        for p in candidates:
            if p.stem not in named:  # also old ".tmp-" files of interrupted writes
                p.unlink(missing_ok=True)
                report.orphans_removed += 1

    def _quota(self, report: SweepReport) -> None:
        quota = self.quota_bytes
        if quota is None:
            self.clips_allowed = True
            return
        percent = 100.0 * report.usage_bytes / quota
        mark = self.config.quota_alarm_percent
        report.over_mark = percent >= mark
        if report.over_mark:
            if self.clips_allowed:
                log.error("evidence storage at %.1f%% of its quota: clips stop until space is freed", percent)
            self.clips_allowed = False
            report.alarm_id = self._raise_alarm(percent, report.usage_bytes, quota)
        elif percent < mark - HYSTERESIS_PERCENT:
            self.clips_allowed = True

    def _raise_alarm(self, percent: float, usage: int, quota: int) -> str:
        """One open storage alarm at a time; it stays open until a person clears it."""
        now = utcnow()
        with self.db.session() as s:
            existing = s.scalar(
                select(Alarm.id)
                .where(Alarm.event_key == STORAGE_EVENT, Alarm.status.in_(OPEN_STATUSES))
                .limit(1)
            )
            if existing is not None:
                return existing
            new = NewAlarm(
                scene="storage",
                event_key=STORAGE_EVENT,
                message=(
                    f"evidence storage at {percent:.1f}% of its {quota / 1024**3:.1f} GiB quota; clips are "
                    "no longer kept. Add disk or raise storage.quota_gb: evidence younger than its "
                    "retention is never deleted"
                ),
                actor="gateway",
                occurred_at=now,
                raised_at=now,
                priority=3,
                details={"usage_bytes": usage, "quota_bytes": quota},
            )
            alarm_id = write_alarm(s, self.outbox, new, now).id
        self.outbox.notify()
        return alarm_id

    def usage_bytes(self, fresh: bool = False) -> int:
        """Bytes of evidence and library videos on disk, read at most once a minute unless ``fresh``."""
        if fresh or self._usage is None or time.monotonic() - self._usage[0] > USAGE_MAX_AGE_S:
            on_disk = self.store.usage_bytes() + (self.videos.usage_bytes() if self.videos else 0)
            self._usage = (time.monotonic(), on_disk)
        return self._usage[1]

    def _videos(self) -> dict[str, Any]:
        return self.videos.usage() if self.videos else {}

    def usage(self) -> dict[str, Any]:
        """Storage as the API and the console show it."""
        with self.db.session() as s:
            by_kind = {
                kind: {"files": int(n), "bytes": int(b or 0)}
                for kind, n, b in s.execute(
                    select(Evidence.kind, func.count(), func.sum(Evidence.size)).group_by(Evidence.kind)
                )
            }
            oldest = s.scalar(select(func.min(Evidence.created_at)))
        usage = self.usage_bytes()
        quota = self.quota_bytes
        return {
            "usage_bytes": usage,
            "quota_bytes": quota,
            "percent": round(100.0 * usage / quota, 2) if quota else None,
            "retention_days": self.config.evidence_retention_days,
            "clips_kept": self.clips_allowed,
            "by_kind": by_kind,
            "videos": self._videos(),
            "oldest_evidence": iso(oldest),
            "last_sweep": self.last.as_dict() if self.last else None,
        }
