"""Run SIPp as an independent GB28181 peer on loopback (Debian package sip-tester)."""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

SCENARIOS = Path(__file__).resolve().parent / "scenarios"


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = int(u.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port")


def bound(port: int, tcp: bool) -> bool:
    """Whether something listens on ``port`` of 127.0.0.1 (read from /proc: probing by binding the port
    ourselves could take it from SIPp). True where /proc is not there: nothing to wait for then."""
    table = Path("/proc/net/tcp" if tcp else "/proc/net/udp")
    try:
        lines = table.read_text().splitlines()[1:]
    except OSError:
        return True
    for line in lines:
        fields = line.split()
        # local address, then for TCP the state: 0A is LISTEN
        if len(fields) > 3 and fields[1].endswith(f":{port:04X}") and (not tcp or fields[3] == "0A"):
            return True
    return False


def need_sipp() -> str:
    path = shutil.which("sipp")
    if path is None:
        pytest.fail("sipp not found: apt-get install sip-tester")
    return path


@dataclass
class SippResult:
    returncode: int
    stdout: str
    errors: str

    @property
    def error_events(self) -> list[str]:
        """Events from the -trace_err log other than the routine out-of-call notices. Failures inside
        out-of-call scenarios (e.g. a ``check_it`` regexp) land here but do not change SIPp's exit code. The
        minor watchdog's overload warning (SIPp's own timer ran late on a busy machine) is not a failure."""
        events = re.split(r"(?=\d{4}-\d{2}-\d{2}\t)", self.errors)
        routine = ("using the out-of-call scenario", "Overload warning: the minor watchdog timer")
        return [e for e in events[1:] if not any(r in e for r in routine)]

    def check(self) -> None:
        assert self.returncode == 0, (
            f"sipp exit {self.returncode}\n{self.stdout[-3000:]}\n{self.errors[-3000:]}"
        )
        assert not self.error_events, "sipp reported:\n" + "\n".join(e[:800] for e in self.error_events)


class Sipp:
    """``sipp`` with ``-m``, ``-timeout``, ``-trace_err`` on 127.0.0.1, started as an asyncio subprocess so
    the code under test keeps running in the same event loop."""

    def __init__(
        self,
        scenario: str,
        tmp: Path,
        *,
        remote_port: int | None = None,
        ooc: str | None = None,
        inf: str | None = None,
        calls: int = 1,
        limit: int | None = None,
        rate: int | None = None,
        timeout_s: int = 20,
        auth: tuple[str, str] | None = None,
        transport: str = "u1",
        extra: list[str] | None = None,
    ) -> None:
        self.port = free_port()
        self.media_port = free_port()
        self.tmp = tmp
        self.error_file = tmp / f"{Path(scenario).stem}_errors.log"
        self.transport = transport
        args = [need_sipp()]
        if remote_port is not None:
            args.append(f"127.0.0.1:{remote_port}")
        args += ["-sf", str(SCENARIOS / scenario)]
        if ooc:
            args += ["-oocsf", str(SCENARIOS / ooc)]
        if inf:
            args += ["-inf", str(SCENARIOS / inf)]
        if auth:
            args += ["-au", auth[0], "-ap", auth[1]]
        args += [
            "-i",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-mp",
            str(self.media_port),
            "-t",
            transport,
            "-m",
            str(calls),
        ]
        args += ["-l", str(limit or calls)]
        if rate:
            args += ["-r", str(rate)]
        args += [
            "-timeout",
            f"{timeout_s}s",
            "-timeout_error",
            "-trace_err",
            "-error_file",
            str(self.error_file),
        ]
        args += ["-nostdin", "-nd", "-max_retrans", "5"]
        args += extra or []
        self.args = args
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, within: float = 30.0) -> Sipp:
        """Start SIPp and return once its SIP port is bound (or it has already finished): a request sent
        to it before that is lost, and on a busy machine SIPp can take longer to start than our SIP
        transaction timeout."""
        self.proc = await asyncio.create_subprocess_exec(
            *self.args,
            cwd=self.tmp,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
        )
        tcp = self.transport.startswith("t")
        deadline = time.monotonic() + within
        while self.proc.returncode is None and not bound(self.port, tcp):
            if time.monotonic() > deadline:
                raise AssertionError(f"sipp did not bind 127.0.0.1:{self.port} within {within} s")
            await asyncio.sleep(0.02)  # polling the state above, not a delay that makes anything work
        return self

    async def wait(self, within: float = 40.0) -> SippResult:
        assert self.proc is not None
        try:
            out, _ = await asyncio.wait_for(self.proc.communicate(), within)
        except TimeoutError:
            self.proc.kill()
            out, _ = await self.proc.communicate()
        errors = self.error_file.read_text(errors="replace") if self.error_file.exists() else ""
        rc = self.proc.returncode if self.proc.returncode is not None else -1
        return SippResult(rc, out.decode(errors="replace"), errors)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
