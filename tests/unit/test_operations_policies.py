"""Quota tiers (storage, GPUs, concurrency) and the culling policy: load, validate,
and become the right container and service settings."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
from cleanroom.airlock import policy as airlock_policy
from cleanroom.airlock.exceptions import PolicyError as AirlockPolicyError
from cleanroom.checks.policy import DisclosurePolicy
from cleanroom.checks.policy import PolicyError as ChecksPolicyError
from cleanroom.errors import InvalidInput
from cleanroom.library import classification
from cleanroom.workspace import culling, quotas

# Each module raises its own error type for a bad policy.
CleanroomErrors = (InvalidInput, AirlockPolicyError, ChecksPolicyError)


def test_default_tiers_limit_storage_and_concurrency() -> None:
    tiers = quotas.load_tiers()
    standard = tiers["standard"]
    assert standard.storage_bytes == 10 * 1024**3
    assert standard.project_storage_bytes == 20 * 1024**3
    assert (standard.max_workspaces, standard.max_workspaces_per_user) == (10, 3)
    assert standard.gpus == 0 and tiers["gpu"].gpus == 1


def test_a_tier_without_the_new_keys_keeps_plain_folders(tmp_path: Path) -> None:
    path = tmp_path / "quotas.yaml"
    path.write_text("tiers: {a: {cpu: 1, pids: 64, memory: 1G}}")
    tier = quotas.load_tiers(path)["a"]
    assert tier.storage_bytes is None and tier.max_workspaces is None and tier.gpus == 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("storage: 1M", "too small"),
        ("storage: lots", "tiers.a.storage"),
        ("gpus: -1", "gpus"),
        ("workspaces: 0", "workspaces: 0 must be a whole number >= 1"),
        ("workspaces_per_user: yes", "workspaces_per_user"),
    ],
)
def test_bad_new_keys_name_the_problem(tmp_path: Path, extra: str, message: str) -> None:
    path = tmp_path / "quotas.yaml"
    path.write_text(f"tiers: {{a: {{cpu: 1, pids: 64, memory: 1G, {extra}}}}}")
    with pytest.raises(InvalidInput, match=message):
        quotas.load_tiers(path)


def test_culling_policy_and_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    policy = culling.load_policy()
    assert policy.server_idle_timeout == 14400 and not policy.cull_busy
    monkeypatch.setenv("CLEANROOM_CULL_IDLE_TIMEOUT", "5")
    monkeypatch.setenv("CLEANROOM_KERNEL_CULL_TIMEOUT", "0")
    policy = culling.load_policy()
    assert policy.server_idle_timeout == 5
    assert culling.kernel_args(policy) == []
    service = culling.culler_service(policy)
    # Through the lifeline (it ends with the hub): tests/unit/test_lifeline.py.
    assert service is not None and service["command"][4:7] == [
        sys.executable,
        "-m",
        "jupyterhub_idle_culler",
    ]
    assert "--timeout=5" in service["command"]
    assert set(culling.culler_role()["scopes"]) == {
        "list:users",
        "read:users:activity",
        "read:servers",
        "delete:servers",
    }
    monkeypatch.setenv("CLEANROOM_CULL_IDLE_TIMEOUT", "soon")
    with pytest.raises(InvalidInput, match="CLEANROOM_CULL_IDLE_TIMEOUT"):
        culling.load_policy()


def test_kernel_culling_arguments() -> None:
    args = culling.kernel_args(culling.CullingPolicy(kernel_idle_timeout=600))
    assert "--MappingKernelManager.cull_idle_timeout=600" in args
    assert "--MappingKernelManager.cull_busy=False" in args


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("servers: {idle_timeout: -1}", "idle_timeout"),
        ("kernels: {cull_busy: maybe}", "true or false"),
        ("servers: {timeout: 1}", "unknown key"),
        ("users: {}", "only 'servers' and 'kernels'"),
    ],
)
def test_bad_culling_policies(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "culling.yaml"
    path.write_text(body)
    with pytest.raises(InvalidInput, match=message):
        culling.load_policy(path)


def test_hub_config_adds_enforcer_culler_and_metrics(state: Path) -> None:
    from cleanroom.hub.services import configure_operations
    from cleanroom.settings import Settings
    from traitlets.config import Config

    c = Config()
    c.JupyterHub.services = [{"name": "cleanroom-cli", "api_token": "x"}]
    c.JupyterHub.load_roles = []
    configure_operations(c, Settings.from_env())
    services = {s["name"]: s for s in c.JupyterHub.services}
    assert {"cleanroom-cli", "cleanroom-enforcer", "idle-culler", "prometheus"} <= set(services)
    assert services["cleanroom-enforcer"]["command"][-3:] == ["enforce", "--every", "60"]
    assert services["cleanroom-enforcer"]["environment"]["CLEANROOM_STATE_DIR"] == str(state)
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    assert roles["prometheus"]["scopes"] == ["read:metrics"]


@pytest.mark.parametrize(
    ("load", "name", "what"),
    [
        (lambda: quotas.load_tiers(), "quotas.yaml", "quota policy"),
        (lambda: culling.load_policy(), "culling.yaml", "culling policy"),
        (lambda: airlock_policy.load_policy(), "airlock.yaml", "airlock policy"),
        (lambda: DisclosurePolicy.load(), "disclosure.yaml", "disclosure policy"),
        (lambda: classification.load_policy(), "classification.yaml", "classification policy"),
    ],
)
def test_every_policy_is_read_from_the_one_policies_folder_by_the_one_loader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, load: Any, name: str, what: str
) -> None:
    """Each policy file is found through CLEANROOM_POLICIES_DIR and refused alike when it
    is not YAML: the message names the file."""
    monkeypatch.setenv("CLEANROOM_POLICIES_DIR", str(tmp_path))
    monkeypatch.delenv("CLEANROOM_AIRLOCK_POLICY", raising=False)
    (tmp_path / name).write_text("tiers: [\n")
    with pytest.raises(CleanroomErrors, match=re.escape(f"{tmp_path / name}: not valid YAML")):
        load()
    (tmp_path / name).unlink()
    if name != "culling.yaml":  # culling's defaults are a complete policy
        with pytest.raises(
            CleanroomErrors, match=re.escape(f"cannot read {what} {tmp_path / name}")
        ):
            load()


def test_the_hub_resolves_the_registry_url_once_and_hands_it_on(
    state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cleanroom.hub.config import configure
    from cleanroom.settings import Settings
    from traitlets.config import Config

    url = f"sqlite:///{state / 'elsewhere.sqlite'}"
    monkeypatch.setenv("CLEANROOM_REGISTRY_URL", url)
    c = Config()
    configure(c, Settings.from_env(), install_firewall=False)
    (airlock,) = [s for s in c.JupyterHub.services if s["name"] == "airlock"]
    assert c.CleanroomSpawner.registry_url == url
    assert c.CleanroomAuthenticator.registry_url == url
    assert airlock["environment"]["CLEANROOM_REGISTRY_URL"] == url
    for var in ("cleanroom_projects", "cleanroom_roles"):
        assert c.JupyterHub.template_vars[var].keywords == {"registry_url": url}
