"""A private Mosquitto broker for MQTT target tests: free loopback port, generated config, temp dir.

Never the system broker: tests must not depend on (or disturb) whatever runs on 1883. ``stop()``
then ``start()`` again brings it back on the same port, which is how tests simulate an outage.
With ``username``/``password`` the broker refuses anonymous clients (``mosquitto_passwd`` makes the
password file); with ``tls`` the listener speaks TLS only.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.peers.ports import free_port

MOSQUITTO_CANDIDATES = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")


class MosquittoError(RuntimeError):
    """The broker could not be started."""


def find_mosquitto() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    return next((p for p in MOSQUITTO_CANDIDATES if os.access(p, os.X_OK)), None)


class MosquittoBroker:
    def __init__(
        self,
        *,
        username: str | None = None,
        password: str | None = None,
        tls: tuple[Path, Path, Path] | None = None,  # (CA, server certificate, server key) PEM files
    ) -> None:
        binary = find_mosquitto()
        if binary is None:
            raise MosquittoError("mosquitto not found: install the Debian package `mosquitto`")
        self.binary = binary
        self.host = "127.0.0.1"
        self.port = free_port()
        self.username = username
        self.password = password
        self.tls = tls
        self._dir = Path(tempfile.mkdtemp(prefix="vigil-mosquitto-"))
        self._proc: subprocess.Popen[bytes] | None = None
        self._write_config()

    @property
    def log_path(self) -> Path:
        return self._dir / "mosquitto.log"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _write_config(self) -> None:
        lines = [
            f"listener {self.port} {self.host}",
            "persistence false",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            # As root, mosquitto would switch to a `mosquitto` user that cannot read our temp dir.
            f"user {pwd.getpwuid(os.getuid()).pw_name}",
        ]
        if self.tls is not None:
            ca, cert, key = self.tls
            lines += [f"cafile {ca}", f"certfile {cert}", f"keyfile {key}"]
        if self.username is not None:
            passwd = self._dir / "passwd"
            subprocess.run(
                ["mosquitto_passwd", "-b", "-c", str(passwd), self.username, self.password or ""],
                check=True,
                capture_output=True,
            )
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        else:
            lines.append("allow_anonymous true")
        (self._dir / "mosquitto.conf").write_text("\n".join(lines) + "\n")

    def start(self, timeout: float = 10.0) -> None:
        if self.running:
            return
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [self.binary, "-c", str(self._dir / "mosquitto.conf")],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise MosquittoError(f"mosquitto exited: {self.log_path.read_text(errors='replace')}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise MosquittoError(f"mosquitto did not listen on {self.port} within {timeout}s")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)
