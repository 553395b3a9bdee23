"""A bounded queue on local disk: what an analysis node could not deliver yet, replayed in order.

One file per entry, named by a growing sequence number, written atomically (temporary file, fsync,
rename), so a node that dies keeps what it had accepted and a torn write never looks like an entry.
Entries leave only when the receiver acknowledged them (``ack``). Past ``max_bytes`` the oldest entries
go first (counted in ``dropped`` and logged): the disk of an analysis node must never fill up.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SUFFIX = ".evt"


@dataclass
class SpoolStats:
    appended: int = 0
    acked: int = 0
    dropped: int = 0  # oldest entries given up because the spool was full


class EventSpool:
    """A FIFO of byte strings in ``folder``; thread-safe within one process (one writer process)."""

    def __init__(self, folder: Path, max_bytes: int) -> None:
        if max_bytes <= 0:
            raise ValueError("the spool needs a positive size limit")
        self.folder = folder
        self.max_bytes = max_bytes
        self.stats = SpoolStats()
        self._cond = threading.Condition()
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.tmp"):  # a write torn by a crash
            stale.unlink(missing_ok=True)
        self._entries: list[tuple[int, int]] = sorted(  # (sequence, size), oldest first
            (int(p.stem), p.stat().st_size) for p in folder.glob(f"*{SUFFIX}") if p.stem.isdigit()
        )
        self._bytes = sum(size for _, size in self._entries)
        self._next = self._entries[-1][0] + 1 if self._entries else 1

    def _path(self, seq: int) -> Path:
        return self.folder / f"{seq:016d}{SUFFIX}"

    def append(self, data: bytes) -> int:
        """Add one entry at the end; returns its sequence number. An entry larger than the whole
        spool is refused with ValueError."""
        if len(data) > self.max_bytes:
            raise ValueError(
                f"an entry of {len(data)} bytes is larger than the spool ({self.max_bytes} bytes)"
            )
        with self._cond:
            seq = self._next
            self._next += 1
            path = self._path(seq)
            tmp = path.with_suffix(".tmp")
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            tmp.replace(path)
            self._entries.append((seq, len(data)))
            self._bytes += len(data)
            self.stats.appended += 1
            while self._bytes > self.max_bytes and len(self._entries) > 1:
                old_seq, old_size = self._entries.pop(0)
                self._path(old_seq).unlink(missing_ok=True)
                self._bytes -= old_size
                self.stats.dropped += 1
                log.warning("event spool %s full: oldest entry %d dropped", self.folder, old_seq)
            self._cond.notify_all()
            return seq

    def peek(self, timeout: float | None = None) -> tuple[int, bytes] | None:
        """The oldest entry (waiting up to ``timeout`` seconds for one), or None."""
        with self._cond:
            if not self._entries and timeout:
                self._cond.wait(timeout)
            while self._entries:
                seq = self._entries[0][0]
                try:
                    return seq, self._path(seq).read_bytes()
                except FileNotFoundError:  # removed behind our back: skip it
                    _, size = self._entries.pop(0)
                    self._bytes -= size
            return None

    def ack(self, seq: int) -> None:
        """The receiver has the entry ``seq``: remove it (a no-op when it was dropped meanwhile)."""
        with self._cond:
            for i, (s, size) in enumerate(self._entries):
                if s == seq:
                    del self._entries[i]
                    self._bytes -= size
                    self._path(seq).unlink(missing_ok=True)
                    self.stats.acked += 1
                    return

    def wake(self) -> None:
        """Wake a ``peek`` that waits (e.g. to stop)."""
        with self._cond:
            self._cond.notify_all()

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._entries)

    @property
    def size_bytes(self) -> int:
        with self._cond:
            return self._bytes
