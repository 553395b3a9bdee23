"""Issue 19 item 17: the API and console over TLS (server.tls_cert/tls_key), HSTS and Secure cookies
then; a certificate the gateway cannot load stops `vigil serve` with a clear message."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from gateway.config.schema import ConfigError, load_config
from tests.conftest import write_config
from tests.security.served import ADMIN_PASSWORD, cli, serve


def test_serve_over_tls_with_hsts_and_secure_cookies(tmp_path: Path) -> None:
    with serve(tmp_path, tls=True) as served:
        assert served.url.startswith("https://")
        r = httpx.get(f"{served.url}/", verify=served.verify)
        assert r.status_code == 200
        assert r.headers["Strict-Transport-Security"].startswith("max-age=31536000")
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
        assert r.headers["Server"] == "vigil"
        r = httpx.post(
            f"{served.url}/api/auth/login",
            json={"username": "admin", "password": ADMIN_PASSWORD},
            verify=served.verify,
        )
        assert r.status_code == 200
        cookie = r.headers["Set-Cookie"]
        assert "vigil_session=" in cookie and "Secure" in cookie and "HttpOnly" in cookie
        with pytest.raises(httpx.HTTPError):  # plain HTTP on the TLS port gets no answer
            httpx.get(served.url.replace("https://", "http://") + "/healthz", timeout=5)
        with pytest.raises(httpx.HTTPError):  # and a client that does not trust the certificate stops
            httpx.get(f"{served.url}/healthz", timeout=5)


def test_a_certificate_that_does_not_load_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.crt"
    config = write_config(tmp_path, server={"port": 18443, "tls_cert": str(missing), "tls_key": str(missing)})
    run = cli(config, dict(os.environ), "serve")
    assert run.returncode == 1
    assert "cannot load server.tls_cert" in run.stderr and "PEM" in run.stderr
    config = write_config(tmp_path, server={"port": 18443, "tls_cert": str(missing)})
    with pytest.raises(ConfigError) as refused:
        load_config(config, environ={})
    assert "tls_cert and tls_key go together" in str(refused.value.problems)
