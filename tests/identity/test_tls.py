"""Encryption in transit: the public URL rule (http only on loopback), the generated demo
certificate, an operator's own certificate, and a hub that refuses to start on plain http
over the network."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest
from cleanroom.errors import InvalidInput
from cleanroom.hub.config import configure_tls
from cleanroom.identity import tls
from cleanroom.settings import Settings
from traitlets.config import Config

from tests.identity.hub import REPO, VENV_BIN, free_port


@pytest.mark.parametrize(
    "url",
    [
        "https://cleanroom.example.org",
        "https://10.0.0.5:8000",
        "http://127.0.0.1:8000",
        "http://localhost:8000",
        "http://[::1]:8000",
        "http://127.8.0.1",
    ],
)
def test_https_anywhere_and_http_on_loopback_are_allowed(url: str) -> None:
    tls.check_public_url(url)


@pytest.mark.parametrize(
    "url", ["http://10.0.0.5:8000", "http://cleanroom.example.org", "http://0.0.0.0:8000"]
)
def test_plain_http_over_the_network_is_refused(url: str) -> None:
    with pytest.raises(InvalidInput, match="unencrypted over the network: use https://"):
        tls.check_public_url(url)


def test_not_a_web_url_is_refused() -> None:
    with pytest.raises(InvalidInput, match="is not an http"):
        tls.check_public_url("ftp://127.0.0.1")


def test_the_demo_certificate_is_made_once_for_its_host(tmp_path: Path) -> None:
    from cryptography import x509

    cert, key = tls.demo_certificate("127.0.0.1", tmp_path)
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    first = cert.read_bytes()
    assert tls.demo_certificate("127.0.0.1", tmp_path)[0].read_bytes() == first
    loaded = x509.load_pem_x509_certificate(first)
    names = loaded.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    # Another host gets a new certificate that names it.
    tls.demo_certificate("cleanroom.lab.internal", tmp_path)
    assert cert.read_bytes() != first
    assert "cleanroom.lab.internal" in tls._certificate_names(cert)


def test_an_operators_certificate_needs_both_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLEANROOM_TLS_CERT", str(tmp_path / "site.crt"))
    monkeypatch.delenv("CLEANROOM_TLS_KEY", raising=False)
    with pytest.raises(InvalidInput, match="both CLEANROOM_TLS_CERT and CLEANROOM_TLS_KEY"):
        tls.certificate_pair("https://cleanroom.example.org")
    monkeypatch.setenv("CLEANROOM_TLS_KEY", str(tmp_path / "site.key"))
    with pytest.raises(InvalidInput, match="is not a file"):
        tls.certificate_pair("https://cleanroom.example.org")
    cert, key = tls.demo_certificate("cleanroom.example.org", tmp_path / "own")
    monkeypatch.setenv("CLEANROOM_TLS_CERT", str(cert))
    monkeypatch.setenv("CLEANROOM_TLS_KEY", str(key))
    assert tls.certificate_pair("https://cleanroom.example.org") == (cert, key)
    assert tls.certificate_pair("http://127.0.0.1:8000") is None


def test_hub_config_serves_tls_with_hsts_and_secure_cookies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLEANROOM_STATE_DIR", str(tmp_path / "state"))
    for name in ("CLEANROOM_PUBLIC_URL", "CLEANROOM_TLS_CERT", "CLEANROOM_TLS_KEY"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings.from_env()
    assert settings.public_url == "https://127.0.0.1:8000" and settings.public_url_is_https()
    c = Config()
    configure_tls(c, settings)
    assert Path(c.JupyterHub.ssl_cert).name == tls.DEMO_CERT
    assert c.JupyterHub.tornado_settings["headers"]["Strict-Transport-Security"] == tls.HSTS
    assert c.JupyterHub.tornado_settings["cookie_options"] == {"samesite": "Lax", "secure": True}
    plain = Config()
    configure_tls(plain, dataclasses.replace(settings, public_url="http://127.0.0.1:8000"))
    assert "ssl_cert" not in plain.JupyterHub
    assert plain.JupyterHub.tornado_settings["cookie_options"] == {"samesite": "Lax"}


def test_the_hub_refuses_to_start_on_plain_http_over_the_network(tmp_path: Path) -> None:
    config = tmp_path / "jupyterhub_config.py"
    config.write_text(
        "from cleanroom.hub.config import configure\nconfigure(c, install_firewall=False)\n"
    )
    env = {
        "PATH": f"{VENV_BIN}:/usr/bin:/bin",
        "CLEANROOM_ROOT": str(REPO),
        "CLEANROOM_STATE_DIR": str(tmp_path / "state"),
        "CLEANROOM_PUBLIC_URL": f"http://10.255.255.1:{free_port()}",
    }
    done = subprocess.run(
        [str(VENV_BIN / "jupyterhub"), "-f", str(config)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert "would send passwords and data unencrypted over the network" in done.stderr + done.stdout
