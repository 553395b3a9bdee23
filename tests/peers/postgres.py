"""A real PostgreSQL for tests, found or made, with the standard library only.

``PostgresServer().start()`` returns a SQLAlchemy URL (``postgresql+psycopg://...``), trying in order:

1. ``$VIGIL_TEST_PG_URL``, used as given;
2. a server that already accepts trusted connections as ``postgres`` on 127.0.0.1:5432: a fresh uniquely
   named database is created there, and dropped again by ``stop()``;
3. a throw-away cluster: ``initdb`` in a temp dir, started on a free loopback port with its unix socket in
   that dir and trust auth; ``stop()`` shuts it down and deletes it. initdb refuses to run as root, so as
   root the server binaries run as the ``postgres`` system user (``runuser``, else ``setpriv``).
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType

from tests.peers.ports import free_port

ENV_URL = "VIGIL_TEST_PG_URL"
INSTALL_HINT = "install the Debian package `postgresql` (or run `make system-deps`), or set " + ENV_URL


class PostgresError(RuntimeError):
    """No PostgreSQL could be found or started."""


class PostgresServer:
    """One PostgreSQL database for a test session: ``start()`` -> ``url``, then ``stop()``.

    ``use_env=False`` ignores ``$VIGIL_TEST_PG_URL``; ``probe_existing=False`` skips the server on
    ``host:port`` and always builds a temp cluster (so that branch can be tested where a server runs).
    """

    def __init__(
        self,
        *,
        use_env: bool = True,
        probe_existing: bool = True,
        host: str = "127.0.0.1",
        port: int = 5432,
        user: str = "postgres",
        ready_timeout: float = 60.0,
    ) -> None:
        self.use_env = use_env
        self.probe_existing = probe_existing
        self.host = host
        self.probe_port = port
        self.port = port  # the port of the server in use, once started
        self.user = user
        self.ready_timeout = ready_timeout
        self.mode: str | None = None  # "env" | "existing" | "temp" once started
        self.database: str | None = None
        self._url: str | None = None
        self._tmpdir: Path | None = None
        self._bindir: Path | None = None

    # --- public ------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._url is None:
            raise PostgresError("PostgresServer.start() has not been called")
        return self._url

    def start(self) -> str:
        if self._url is not None:
            return self._url
        env_url = os.environ.get(ENV_URL) if self.use_env else None
        if env_url:
            self.mode, self._url = "env", _with_psycopg_driver(env_url)
        elif self.probe_existing and self._existing_accepts(self.probe_port):
            self._create_database()
        else:
            self._start_temp_cluster()
        return self.url

    def stop(self) -> None:
        try:
            if self.mode == "existing" and self.database:
                # FORCE (PostgreSQL 13+) ends sessions a test forgot to close; older servers reject it.
                drop = f'DROP DATABASE IF EXISTS "{self.database}"'
                if self._psql(self.port, f"{drop} WITH (FORCE)", check=False).returncode != 0:
                    self._psql(self.port, drop, check=False)
            elif self.mode == "temp" and self._tmpdir is not None:
                self._stop_temp_cluster()
        finally:
            self.mode, self._url, self.database = None, None, None

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- an existing server ------------------------------------------------------------------------

    def _existing_accepts(self, port: int) -> bool:
        try:
            with socket.create_connection((self.host, port), timeout=1.0):
                pass
        except OSError:
            return False
        # Something listens; it is usable only if psql gets in as a trusted superuser.
        try:
            return self._psql(port, "select 1", check=False).returncode == 0
        except PostgresError:  # no psql
            return False

    def _create_database(self) -> None:
        name = f"vigil_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        self._psql(self.probe_port, f'CREATE DATABASE "{name}"')
        self.mode, self.database, self.port = "existing", name, self.probe_port
        self._url = f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{name}"

    def _psql(self, port: int, sql: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        psql = shutil.which("psql") or (str(self._bindir / "psql") if self._bindir else None)
        if psql is None or not os.access(psql, os.X_OK):
            raise PostgresError(f"psql not found: {INSTALL_HINT}")
        cmd = [psql, "-X", "-w", "-At", "-v", "ON_ERROR_STOP=1"]
        cmd += ["-h", self.host, "-p", str(port), "-U", self.user, "-d", "postgres", "-c", sql]
        # -w and no password: a server that wants one fails fast instead of prompting.
        env = {**os.environ, "PGCONNECT_TIMEOUT": "5"}
        env.pop("PGPASSWORD", None)
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60, check=False)
        if check and proc.returncode != 0:
            raise PostgresError(f"psql {sql!r} on {self.host}:{port} failed: {proc.stderr.strip()}")
        return proc

    # --- a throw-away cluster ----------------------------------------------------------------------

    def _start_temp_cluster(self) -> None:
        self._bindir = find_server_bindir()
        tmp = Path(tempfile.mkdtemp(prefix="vigil-pg-"))
        self._tmpdir = tmp
        atexit.register(self._atexit)
        try:
            if os.geteuid() == 0:
                # initdb refuses root; the cluster's files must belong to the user that runs it.
                pw = _postgres_user()
                os.chown(tmp, pw.pw_uid, pw.pw_gid)
            data = str(tmp / "data")
            initdb = [str(self._bindir / "initdb"), "-D", data, "-U", self.user]
            self._as_owner([*initdb, *"-A trust -E UTF8 --locale=C --no-sync".split()], timeout=120)
            pg_ctl = [str(self._bindir / "pg_ctl"), "-D", data, "-l", str(tmp / "server.log")]
            # A free port can be taken between probing and binding it: try a few.
            for attempt in range(3):
                port = free_port(self.host)
                # fsync off and friends: a test cluster trades durability for speed.
                opts = (
                    f"-c listen_addresses={self.host} -p {port} -k {tmp} "
                    "-F -c full_page_writes=off -c synchronous_commit=off"
                )
                wait = ["-w", "-t", str(int(self.ready_timeout))]
                proc = self._as_owner(
                    [*pg_ctl, *wait, "-o", opts, "start"], check=False, timeout=self.ready_timeout + 10
                )
                if proc.returncode == 0:
                    break
                if attempt == 2 or "already in use" not in self._server_log():
                    raise PostgresError(
                        f"pg_ctl start failed ({proc.stdout.strip()} {proc.stderr.strip()}); "
                        f"server log:\n{self._server_log()}"
                    )
            self._wait_ready(port)
        except BaseException:
            self._stop_temp_cluster()
            raise
        self.mode, self.port, self.database = "temp", port, "postgres"
        self._url = f"postgresql+psycopg://{self.user}@{self.host}:{port}/postgres"

    def _wait_ready(self, port: int) -> None:
        # pg_ctl -w already waited; this confirms a TCP client gets in (what the tests will do).
        deadline = time.monotonic() + self.ready_timeout
        while True:
            proc = self._psql(port, "select 1", check=False)
            if proc.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise PostgresError(f"temp cluster on port {port} not ready: {proc.stderr.strip()}")
            time.sleep(0.2)

    def _stop_temp_cluster(self) -> None:
        tmp, self._tmpdir = self._tmpdir, None
        if tmp is None:
            return
        atexit.unregister(self._atexit)
        try:
            if (tmp / "data" / "postmaster.pid").exists() and self._bindir is not None:
                pg_ctl = [str(self._bindir / "pg_ctl"), "-D", str(tmp / "data")]
                self._as_owner([*pg_ctl, *"-m fast -w -t 30 stop".split()], check=False, timeout=40)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _atexit(self) -> None:
        self._stop_temp_cluster()  # a session that never called stop() leaves no server behind

    def _as_owner(
        self, cmd: list[str], *, check: bool = True, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        """Run a server binary as the cluster owner: ourselves, or `postgres` when we are root."""
        if os.geteuid() == 0:
            if shutil.which("runuser"):
                cmd = ["runuser", "-u", "postgres", "--", *cmd]
            elif shutil.which("setpriv"):
                cmd = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", *cmd]
            else:
                raise PostgresError(
                    "running as root, but neither runuser nor setpriv is there to drop to "
                    "the postgres user (Debian package util-linux)"
                )
        # cwd "/": the postgres user may not be allowed into ours.
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd="/", timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise PostgresError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc

    def _server_log(self) -> str:
        try:
            return (self._tmpdir / "server.log").read_text(errors="replace")[-4000:] if self._tmpdir else ""
        except OSError:
            return ""


def find_server_bindir() -> Path:
    """The newest installed PostgreSQL server bin dir (Debian: /usr/lib/postgresql/N/bin)."""

    def version(p: str) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", Path(p).parent.name))

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
    on_path = shutil.which("initdb")  # other distributions put them on PATH
    if on_path:
        candidates.append(str(Path(on_path).parent))
    for d in candidates:
        if all(os.access(Path(d) / b, os.X_OK) for b in ("initdb", "pg_ctl", "postgres")):
            return Path(d)
    raise PostgresError(f"no PostgreSQL server binaries (initdb, pg_ctl) found: {INSTALL_HINT}")


def _postgres_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresError(
            f"running as root, but there is no `postgres` system user to run initdb as: {INSTALL_HINT}"
        ) from None


def _with_psycopg_driver(url: str) -> str:
    # Accept libpq-style URLs too; the project talks to PostgreSQL through psycopg 3.
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url
