"""Start and stop the sample RTSP camera (``sample_server.py``) from any Python, the project venv included.

The server needs GStreamer's Python bindings, which only Debian's system interpreter has, so it runs as a
subprocess of ``/usr/bin/python3`` (override with ``VIGIL_SYSTEM_PYTHON``). This module is stdlib only.

    with SampleRtspServer({"vtest": "/path/to/vtest.avi"}) as cam:
        url = cam.url("vtest")  # rtsp://127.0.0.1:PORT/vtest, an endless 1 s GOP H.264 stream
        ...
        cam.restart()  # the "camera reboots" case: same port, new process
        cam.clients_opened  # client connections since this process started (sessions: RTSP SETUPs)
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, NoReturn

SERVER_SCRIPT = Path(__file__).with_name("sample_server.py")
DEFAULT_SYSTEM_PYTHON = "/usr/bin/python3"
SYSTEM_PYTHON_ENV = "VIGIL_SYSTEM_PYTHON"

# sample_server.py exit codes.
_EXIT_HINTS = {
    2: "the video file is missing or cannot be decoded (or an argument is wrong)",
    3: "GStreamer's Python bindings are missing: install the Debian packages with `make system-deps`",
    4: "the port is already in use",
}
_READY = "READY "
_CLIENTS = "CLIENTS "  # "CLIENTS OPENED CLOSED": connection totals since the process started
_SESSIONS = "SESSIONS "  # "SESSIONS N": RTSP sessions set up since the process started


class SampleServerError(RuntimeError):
    """The sample RTSP server did not start, or died; the message carries its stderr tail."""


class SampleRtspServer:
    """An endless RTSP camera per mount, served by a ``sample_server.py`` subprocess.

    ``mounts`` maps a mount name to a video file. ``port=0`` lets the server pick a free port; ``restart()``
    then reuses the port it picked. ``max_seconds`` > 0 encodes only the start of each file, which makes
    startup (and restart) faster: the whole 80 s vtest.avi takes about 7 s of x264 on 2 cores.
    """

    def __init__(
        self,
        mounts: Mapping[str, str | os.PathLike[str]],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        gop: int | None = None,
        codec: str = "h264",
        preset: str | None = None,
        max_seconds: float = 0.0,
        startup_timeout: float = 60.0,
        python: str | None = None,
        user: str | None = None,
    ) -> None:
        if not mounts:
            raise ValueError("SampleRtspServer needs at least one mount")
        self.mounts: dict[str, Path] = {name.strip("/"): Path(path) for name, path in mounts.items()}
        self.host = host
        self.gop = gop
        self.codec = codec
        self.preset = preset
        self.max_seconds = max_seconds
        self.startup_timeout = startup_timeout
        self.python = python or os.environ.get(SYSTEM_PYTHON_ENV) or DEFAULT_SYSTEM_PYTHON
        self._requested_port = port
        self._port: int | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=40)
        self._threads: list[threading.Thread] = []
        self._last_command: list[str] = []
        self.user = user  # "NAME:PASSWORD": the server then answers 401 to anyone else
        self.clients_opened = 0  # client connections accepted by the current process
        self.clients_closed = 0
        self.sessions = 0  # RTSP sessions set up (one per played stream of a client)

    # --- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> SampleRtspServer:
        """Start the server and wait for its READY line; raises SampleServerError on failure."""
        if self.running:
            return self
        self._spawn(self._port if self._port is not None else self._requested_port)
        return self

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds. Returns the exit code (None if not started)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        for t in self._threads:
            t.join(1.0)  # the pipes are at EOF now that the process is gone
        self._threads = []
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
        return proc.returncode

    def restart(self, down_for: float = 0.0) -> None:
        """Stop and start again on the same port (a camera reboot); ``down_for`` s of downtime between.

        Clients see their connection drop, then connection refused until the new process has encoded its
        clips and listens again.
        """
        if self._port is None:
            raise SampleServerError("restart() before the first successful start()")
        self.stop()
        if down_for > 0:
            time.sleep(down_for)
        deadline = time.monotonic() + self.startup_timeout
        while True:
            try:
                self._spawn(self._port)
                return
            except _PortBusy:
                # Rare: something took the port in the gap. Give it a moment before failing for good.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def __enter__(self) -> SampleRtspServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- addresses ---------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise SampleServerError("the sample RTSP server has not been started")
        return self._port

    @property
    def base_url(self) -> str:
        # A wildcard listen address is not something a client can connect to: use loopback.
        host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(self.host, self.host)  # noqa: S104
        if ":" in host:
            host = f"[{host}]"
        return f"rtsp://{host}:{self.port}"

    def url(self, mount: str) -> str:
        name = mount.strip("/")
        if name not in self.mounts:
            raise KeyError(f"no mount {mount!r}; mounts: {sorted(self.mounts)}")
        return f"{self.base_url}/{name}"

    def credentials_url(self, mount: str, user: str, password: str) -> str:
        """``url(mount)`` with ``user:password@`` in it."""
        return self.url(mount).replace("rtsp://", f"rtsp://{user}:{password}@", 1)

    @property
    def clients_open(self) -> int:
        """Client connections open now."""
        return self.clients_opened - self.clients_closed

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def stderr_tail(self) -> str:
        return "".join(self._stderr_tail)

    # --- internals ---------------------------------------------------------------------------------

    def command(self, port: int) -> list[str]:
        cmd = [self.python, str(SERVER_SCRIPT), "--host", self.host, "--port", str(port), "--exit-with-stdin"]
        for name, path in self.mounts.items():
            cmd += ["--mount", f"{name}={path}"]
        cmd += ["--codec", self.codec]
        if self.gop is not None:
            cmd += ["--gop", str(self.gop)]
        if self.preset is not None:
            cmd += ["--preset", self.preset]
        if self.max_seconds > 0:
            cmd += ["--max-seconds", str(self.max_seconds)]
        if self.user is not None:
            cmd += ["--user", self.user]
        return cmd

    def _spawn(self, port: int) -> None:
        # The venv's PYTHONHOME/PYTHONPATH would point the system interpreter at the wrong stdlib/packages.
        self.stop()  # a process that died on its own still has pipes and reader threads to clean up
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "PYTHONPATH")}
        env["PYTHONUNBUFFERED"] = "1"
        self._stderr_tail.clear()
        self.clients_opened = self.clients_closed = self.sessions = 0
        self._last_command = self.command(port)
        try:
            proc = subprocess.Popen(
                self._last_command,
                stdin=subprocess.PIPE,  # held open: the server exits when we die (--exit-with-stdin)
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                bufsize=1,
                env=env,
                # Ctrl-C at a terminal then reaches only us, and we stop the server in order.
                start_new_session=True,
            )
        except FileNotFoundError as exc:
            raise SampleServerError(
                f"cannot run {self.python!r} ({exc.strerror}): the sample RTSP server needs Debian's "
                f"python3 with GStreamer bindings; install them with `make system-deps`, or point "
                f"{SYSTEM_PYTHON_ENV} at a Python that can `import gi`"
            ) from exc
        self._proc = proc
        ready = threading.Event()
        found: list[str] = []
        assert proc.stdout is not None and proc.stderr is not None
        self._threads = [
            threading.Thread(target=self._read_stdout, args=(proc.stdout, ready, found), daemon=True),
            threading.Thread(target=self._read_stderr, args=(proc.stderr,), daemon=True),
        ]
        for t in self._threads:
            t.start()
        deadline = time.monotonic() + self.startup_timeout
        while not ready.wait(0.05):
            if proc.poll() is not None or time.monotonic() > deadline:
                timed_out = proc.poll() is None
                code = self.stop()
                self._fail(code, timed_out)
        self._port = int(found[0].rsplit(":", 1)[1])

    def _fail(self, code: int | None, timed_out: bool) -> NoReturn:
        if timed_out:
            what = f"gave no READY line within {self.startup_timeout:.0f} s"
            hint = "a long video takes a while to encode: pass max_seconds=, or raise startup_timeout="
        else:
            what = f"exited with code {code}"
            hint = _EXIT_HINTS.get(code or 0, "see its stderr below")
        tail = self.stderr_tail.strip() or "(no stderr)"
        cls = _PortBusy if code == 4 else SampleServerError
        raise cls(f"sample RTSP server {what}: {hint}.\n  command: {' '.join(self._last_command)}\n{tail}")

    def _read_stdout(self, stream: IO[str], ready: threading.Event, found: list[str]) -> None:
        for line in stream:
            if not ready.is_set() and line.startswith(_READY):
                found.append(line[len(_READY) :].strip())
                ready.set()
            elif line.startswith(_CLIENTS):
                opened, closed = line[len(_CLIENTS) :].split()
                self.clients_opened, self.clients_closed = int(opened), int(closed)
            elif line.startswith(_SESSIONS):
                self.sessions = int(line[len(_SESSIONS) :])

    def _read_stderr(self, stream: IO[str]) -> None:
        # Drained continuously: a full pipe would block the server. Kept: the tail, for error messages.
        for line in stream:
            self._stderr_tail.append(line)
            if os.environ.get("VIGIL_SAMPLE_SERVER_ECHO"):
                sys.stderr.write(line)


class _PortBusy(SampleServerError):
    """Exit code 4: the port could not be bound (restart() retries on this)."""
