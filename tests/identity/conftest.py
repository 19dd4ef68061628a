"""Fixtures of the identity tests: one real hub over https for the module, people in
known states, and a test authenticator app."""

from __future__ import annotations

import base64
import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from cleanroom.registry import Registry
from cleanroom.registry.people import People

from tests.identity.hub import REPO, IdentityHub, start_identity_hub, stop_identity_hub
from tests.people import Authenticator

PASSWORD = "identity-test-password"
# Quick back-off and a lock after three failures, so the lock-out test takes seconds.
TEST_POLICY = """\
login:
  backoff_base_seconds: 0.2
  backoff_max_seconds: 0.4
  max_failures: 3
  lock_minutes: 10
  address_max_failures: 1000
training:
  researcher: [safe-researcher]
  officer: [safe-researcher, output-checking]
  operator: [safe-researcher]
  provider: [safe-researcher]
"""


@pytest.fixture(scope="module")
def identity_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdentityHub]:
    """The product's hub (CleanroomAuthenticator, CleanroomSpawner) over https."""
    import os

    if shutil.which("configurable-http-proxy") is None:
        pytest.skip("configurable-http-proxy is not installed")
    root = tmp_path_factory.mktemp("identity-hub")
    policies = root / "policies"
    shutil.copytree(REPO / "policies", policies)
    (policies / "identity.yaml").write_text(TEST_POLICY)
    instance = os.environ.get("CLEANROOM_TEST_INSTANCE", "ident")[:8] + "id"
    hub = start_identity_hub(root, instance, {"CLEANROOM_POLICIES_DIR": str(policies)})
    try:
        yield hub
    finally:
        stop_identity_hub(hub)


@pytest.fixture(scope="module")
def hub_registry(identity_hub: IdentityHub) -> Registry:
    """The hub's own registry (the same SQLite file the hub reads)."""
    return Registry(f"sqlite:///{identity_hub.state / 'registry.sqlite'}")


@pytest.fixture(scope="module")
def hub_people(hub_registry: Registry, identity_hub: IdentityHub) -> People:
    """People on the hub's registry, with the hub's (test) identity policy."""
    from cleanroom.identity.policy import load_policy

    policy = load_policy(Path(identity_hub.env["CLEANROOM_POLICIES_DIR"]) / "identity.yaml")
    return People(hub_registry, policy)


@pytest.fixture(scope="module")
def app() -> Authenticator:
    """The tests' authenticator app."""
    return Authenticator()


def spki_hash(certificate: Path) -> str:
    """Base64 SHA-256 of a certificate's public key: what Chromium is told to trust."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_pem_x509_certificate(certificate.read_bytes())
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@pytest.fixture
def browser(identity_hub: IdentityHub, tmp_path: Path) -> Iterator[object]:
    """Headless Chromium that trusts exactly the hub's demo certificate."""
    from tests.chromium import chromium

    driver = chromium(
        profile_dir=tmp_path / "profile",
        window=(1280, 1024),
        extra_args=(
            f"--ignore-certificate-errors-spki-list={spki_hash(identity_hub.certificate)}",
        ),
    )
    try:
        yield driver
    finally:
        driver.quit()


OPERATOR = "opsy"


@pytest.fixture(scope="module")
def operator_token(hub_registry: Registry, app: Authenticator) -> str:
    """An operator in standing, signed in on the command line: their personal token."""
    from cleanroom.registry.governance import Governance

    from tests.people import personal_token

    Governance(hub_registry).add_user(OPERATOR, ["operator"], PASSWORD, actor="seed")
    return personal_token(hub_registry, OPERATOR, app, PASSWORD)


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    """An empty registry in a state folder of the test's own."""
    monkeypatch.setenv("CLEANROOM_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("CLEANROOM_REGISTRY_URL", raising=False)
    return Registry()
