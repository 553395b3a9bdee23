"""A real `vigil serve` child process for the security tests (plain HTTP or TLS with a throw-away
certificate), with an admin user and an admin machine token."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import write_config
from tests.peers.ports import free_port

ADMIN_PASSWORD = "security tests admin 1"


@dataclass
class Served:
    url: str
    token: str  # an admin machine token
    verify: ssl.SSLContext | bool  # trusts the throw-away certificate under TLS
    root: Path
    log: Path


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1/localhost and its key (PEM), valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vigil test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "server.crt", folder / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


def cli(config: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "--config", str(config), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def prepare_database(config: Path) -> str:
    """Migrate the config's database (in this process: no second interpreter start) and make an
    admin machine token; returns its secret."""
    from gateway.auth import issue_token
    from gateway.config.schema import load_config
    from gateway.db import Database, upgrade

    db = Database(load_config(config, environ={}).database.url)
    try:
        upgrade(db.engine)
        with db.session() as s:
            secret, _ = issue_token(s, "fuzz", "machine", "admin")
    finally:
        db.dispose()
    return secret


def trust(verify: str | bool) -> ssl.SSLContext | bool:
    return ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify


@contextlib.contextmanager
def serve(tmp: Path, tls: bool = False, **server: object) -> Iterator[Served]:
    port = free_port()
    settings: dict[str, object] = {"host": "127.0.0.1", "port": port, **server}
    verify: str | bool = True
    if tls:
        cert, key = self_signed(tmp)
        settings |= {"tls_cert": str(cert), "tls_key": str(key)}
        verify = str(cert)
    users = [{"username": "admin", "role": "admin", "password_env": "VIGIL_SECURITY_ADMIN_PASSWORD"}]
    config = write_config(tmp, server=settings, users=users)
    env = {**os.environ, "VIGIL_SECURITY_ADMIN_PASSWORD": ADMIN_PASSWORD}
    env.pop("VIGIL_SECRET_KEY", None)
    token = prepare_database(config)
    log = tmp / "serve.log"
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "--config", str(config), "serve"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"vigil serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=2, verify=trust(verify)).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"vigil serve did not answer /healthz:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield Served(url, token, trust(verify), tmp / "storage", log)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
