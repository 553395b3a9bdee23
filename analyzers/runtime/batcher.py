"""Inference workers per model, shared by every camera: N cameras do not cost N sessions.

Cameras submit inputs and get futures. A pool of threads (one per core by default) drains the
model's queue, each taking whatever is waiting (up to the model's batch size) as one batch and
running it on the one shared session. Sessions run single-threaded: on a few cores, several
one-thread runs side by side give more frames per second than one run spread over every core.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

log = logging.getLogger(__name__)

BatchFn = Callable[[Sequence[Any]], list[Any]]
_STOP = object()


class InferenceWorker:
    def __init__(self, name: str, detect: BatchFn, max_batch: int, threads: int | None = None) -> None:
        self.name = name
        self._detect = detect
        self._max_batch = max(1, max_batch)
        self._queue: queue.Queue[object] = queue.Queue()
        self._lock = threading.Lock()
        self.frames = 0
        self.batches = 0
        self.busy_s = 0.0
        count = threads if threads is not None else (os.cpu_count() or 1)
        self._threads = [
            threading.Thread(target=self._run, name=f"infer-{name}-{i}", daemon=True)
            for i in range(max(1, count))
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, item: Any) -> Future[Any]:
        """Queue one input (a frame, or a frame with boxes); the future gets the model's answer."""
        future: Future[Any] = Future()
        self._queue.put((item, future))
        return future

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(_STOP)
        for thread in self._threads:
            thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            batch = [item]
            while len(batch) < self._max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    self._queue.put(_STOP)
                    break
                batch.append(more)
            items = [b[0] for b in batch]  # type: ignore[index]
            futures: list[Future[Any]] = [b[1] for b in batch]  # type: ignore[index]
            start = time.perf_counter()
            try:
                results = self._detect(items)
            except Exception:
                # One camera's bad frame must not fail the others batched with it: run them alone.
                self._one_by_one(items, futures)
            else:
                for f, r in zip(futures, results, strict=True):
                    f.set_result(r)
            with self._lock:
                self.busy_s += time.perf_counter() - start
                self.frames += len(items)
                self.batches += 1

    def _one_by_one(self, items: list[Any], futures: list[Future[Any]]) -> None:
        for item, future in zip(items, futures, strict=True):
            try:
                future.set_result(self._detect([item])[0])
            except Exception as exc:
                log.warning("model %s could not analyse an input: %s", self.name, exc)
                future.set_exception(exc)
