"""Data classification: the policy is validated at load, a project needs the strictest
controls of the versions it mounts, and the spawn-time plan refuses a project that falls
short, or that mounts a quarantined version, with a message that says why."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from cleanroom import paths
from cleanroom.errors import Conflict, Forbidden, InvalidInput
from cleanroom.library import classification
from cleanroom.library.catalogue import get_card, list_cards, project_classifications
from cleanroom.registry import DatasetInfo, Registry
from cleanroom.registry.governance import Governance
from cleanroom.registry.library import NewCard

from tests.people import in_standing

DEFAULT = yaml.safe_load((paths.repo_root() / "policies" / "classification.yaml").read_text())


def _policy(**changes: Any) -> dict[str, Any]:
    raw = yaml.safe_load(yaml.safe_dump(DEFAULT))
    raw.update(changes)
    return raw


def test_the_shipped_policy_loads_with_every_category() -> None:
    policy = classification.load_policy()
    assert policy.default == "internal"
    assert set(policy.classifications) == {"public", "internal", "confidential", "trade-secret"}
    secret = policy.get("trade-secret")
    assert (secret.min_tier, secret.access, secret.co_review) == (
        "standard",
        "restricted",
        "required",
    )
    assert secret.egress_per_day == 16 * 1024**2
    assert policy.get("internal").egress_per_day is None


def _category(**spec: Any) -> dict[str, Any]:
    base = {"min_tier": "small", "access": "standard", "co_review": "none"}
    base.update(spec)
    return {"classifications": {"x": base}, "default": "x"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "must be a mapping"),
        (_policy(colour="red"), "unknown key.*colour"),
        (_policy(tier_order=[]), "tier_order must list"),
        (_policy(tier_order=["small", "small"]), "tier_order must list"),
        (_policy(tier_order=["small", "huge"]), "tier_order names huge, not tier"),
        (_policy(default="secret"), "default 'secret' must be one of"),
        (_policy(classifications={}), "classifications must map"),
        (_policy(**_category(min_tier="gpu2")), r"classifications.x.min_tier: 'gpu2'"),
        (_policy(**_category(access="pixels")), r"classifications.x.access: 'pixels'"),
        (_policy(**_category(co_review="maybe")), r"classifications.x.co_review: 'maybe'"),
        (_policy(**_category(egress_per_day="lots")), r"egress_per_day: 'lots' is not a size"),
        (_policy(**_category(egress_per_day=True)), r"egress_per_day: True is not a size"),
        (_policy(**_category(colour="red")), r"classifications.x: unknown key.*colour"),
        (_policy(classifications={"x": {"min_tier": "small"}}), "missing access, co_review"),
        (_policy(classifications={"x": "secret"}), "must be a mapping of controls"),
    ],
)
def test_every_bad_policy_is_refused_naming_the_key(raw: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        classification.parse_policy(raw, "classification.yaml")


def test_a_policy_file_that_is_not_yaml_is_refused_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "classification.yaml"
    bad.write_text("tier_order: [\n")
    with pytest.raises(InvalidInput, match=re.escape(f"{bad}: not valid YAML")):
        classification.load_policy(bad)
    with pytest.raises(InvalidInput, match="cannot read classification policy"):
        classification.load_policy(tmp_path / "missing.yaml")


def test_a_project_needs_the_strictest_controls_of_its_data() -> None:
    policy = classification.load_policy()
    controls = classification.combine(
        policy, [("a", "v1", "internal"), ("b", "v1", "confidential"), ("c", "v2", "public")]
    )
    assert controls.min_tier == "small"
    assert controls.access == "standard"
    assert controls.co_review == "notify"
    assert controls.egress_per_day == 48 * 1024**2
    both = classification.combine(
        policy, [("b", "v1", "confidential"), ("s", "v1", "trade-secret")]
    )
    assert (both.min_tier, both.access, both.co_review) == ("standard", "restricted", "required")
    assert both.egress_per_day == 16 * 1024**2
    assert classification.combine(policy, []) == classification.NO_CONTROLS
    with pytest.raises(InvalidInput, match="'secret' is not a classification"):
        classification.combine(policy, [("a", "v1", "secret")])


# -- the spawn-time plan ---------------------------------------------------------------
def _project(gov: Governance, category: str, tier: str, status: str = "verified") -> None:
    gov.add_user("alice", actor="seed")
    gov.add_user("pat", ["provider"], actor="seed")
    gov.add_user("olga", ["operator"], actor="seed")
    in_standing(gov.registry, "pat")
    in_standing(gov.registry, "olga")
    gov.add_provider_account("Acme", "pat", actor="olga")
    gov.register_dataset_version(
        DatasetInfo("gauges", "v1", "Acme", "/lib/gauges/v1", None, 1),
        NewCard(category, status, quality={"summary": {"rows": 3, "errors": 1}}),
        actor="seed",
    )
    gov.create_project("defects", "Defects", quota_tier=tier, actor="seed")
    gov.add_member("defects", "alice", actor="seed")
    gov.attach_dataset("defects", "gauges", "v1", actor="seed")
    gov.approve_dataset_use("defects", "gauges", "v1", actor="pat")


def test_a_project_below_the_tier_its_data_needs_is_refused(writer: Governance) -> None:
    _project(writer, "confidential", "tiny")
    before = len(writer.journal_entries())
    with pytest.raises(Forbidden) as refused:
        writer.registry.workspace_plan("alice", "defects")
    message = str(refused.value)
    assert "quota tier 'tiny' is below 'small'" in message
    assert "gauges version v1 is confidential" in message
    assert len(writer.journal_entries()) == before  # a refusal changes nothing


def test_a_project_on_a_high_enough_tier_starts(writer: Governance) -> None:
    _project(writer, "confidential", "small")
    plan = writer.registry.workspace_plan("alice", "defects")
    assert [d.name for d in plan.datasets] == ["gauges"]
    controls = classification.required_controls("defects", writer.registry)
    assert (controls.access, controls.co_review) == ("standard", "notify")
    assert controls.because == (("gauges", "v1", "confidential"),)


def test_trade_secrets_need_an_egress_budget_within_their_cap(
    writer: Governance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _project(writer, "trade-secret", "standard")
    with pytest.raises(Forbidden, match=r"egress budget \(48.0 MiB a day\) is above 16.0 MiB"):
        writer.registry.workspace_plan("alice", "defects")
    assert classification.required_controls("defects", writer.registry).access == "restricted"
    # The same deployment with its budget lowered to the cap: the project starts.
    policies = tmp_path / "policies"
    shutil.copytree(paths.policies_dir(), policies)
    egress = yaml.safe_load((policies / "egress.yaml").read_text())
    egress["budget"]["bytes_per_day"] = 16 * 1024**2
    egress["budget"]["bytes_per_hour"] = 4 * 1024**2
    (policies / "egress.yaml").write_text(yaml.safe_dump(egress))
    monkeypatch.setenv("CLEANROOM_POLICIES_DIR", str(policies))
    assert writer.registry.workspace_plan("alice", "defects").name == "defects"


def test_a_quarantined_version_is_refused_until_its_provider_accepts(
    writer: Governance,
) -> None:
    _project(writer, "internal", "standard", status="quarantined")
    with pytest.raises(Forbidden, match="gauges version v1: quarantined by its quality report"):
        writer.registry.workspace_plan("alice", "defects")
    writer.add_user("rita", ["provider"], actor="seed")
    in_standing(writer.registry, "rita")
    writer.add_provider_account("Bolt", "rita", actor="olga")
    before = len(writer.journal_entries())
    with pytest.raises(Forbidden, match="'rita' does not act for 'Acme'"):
        writer.accept_dataset_version("gauges", "v1", "fine", actor="rita")
    with pytest.raises(InvalidInput, match="say why"):
        writer.accept_dataset_version("gauges", "v1", "  ", actor="pat")
    with pytest.raises(Forbidden, match="does not hold the provider role"):
        writer.accept_dataset_version("gauges", "v1", "fine", actor="alice")
    assert len(writer.journal_entries()) == before
    writer.accept_dataset_version("gauges", "v1", "the gap is a known sensor fault", actor="pat")
    card = get_card(writer.registry, "gauges", "v1")
    assert (card.status, card.accepted_by) == ("accepted", "pat")
    assert writer.registry.workspace_plan("alice", "defects").name == "defects"
    entry = writer.journal_entries()[-1]
    assert entry.action == "dataset.accept"
    assert entry.detail["errors"] == 1
    with pytest.raises(Conflict, match="is accepted, not quarantined"):
        writer.accept_dataset_version("gauges", "v1", "again", actor="pat")


def test_classifying_is_for_the_provider_or_an_operator(writer: Governance) -> None:
    _project(writer, "internal", "standard")
    with pytest.raises(Forbidden, match="neither acts for 'Acme'"):
        writer.classify_dataset("gauges", "v1", "public", actor="alice")
    with pytest.raises(InvalidInput, match="'secret' is not a classification"):
        writer.classify_dataset("gauges", "v1", "secret", actor="pat")
    with pytest.raises(Conflict, match="internal already"):
        writer.classify_dataset("gauges", "v1", "internal", actor="pat")
    assert writer.classify_dataset("gauges", "v1", "trade-secret", actor="pat") == "internal"
    assert project_classifications(writer.registry, "defects") == [("gauges", "v1", "trade-secret")]
    # Raised to trade-secret, the standard-tier project now needs a lower egress budget.
    with pytest.raises(Forbidden, match="cap for its data"):
        writer.registry.workspace_plan("alice", "defects")
    assert writer.classify_dataset("gauges", "v1", "public", actor="olga") == "trade-secret"
    entry = writer.journal_entries()[-1]
    assert (entry.action, entry.actor, entry.detail["after"]) == (
        "dataset.classify",
        "olga",
        "public",
    )


def test_a_version_without_a_card_reads_as_the_default(
    registry: Registry, writer: Governance
) -> None:
    writer.add_dataset(DatasetInfo("old", "v1", "Acme", "/lib/old/v1", None, 1), actor="seed")
    card = get_card(registry, "old")
    assert (card.classification, card.status, card.usable) == ("internal", "profiled", True)


def test_cards_on_sqlite_and_postgresql(any_registry: Registry) -> None:
    """The card's writes and the spawn-time refusal on both databases."""
    gov = Governance(any_registry)
    _project(gov, "confidential", "tiny", status="quarantined")
    with pytest.raises(Forbidden, match="quarantined by its quality report"):
        any_registry.workspace_plan("alice", "defects")
    gov.accept_dataset_version("gauges", "v1", "known fault", actor="pat")
    with pytest.raises(Forbidden, match="quota tier 'tiny' is below 'small'"):
        any_registry.workspace_plan("alice", "defects")
    gov.classify_dataset("gauges", "v1", "internal", actor="pat")
    assert any_registry.workspace_plan("alice", "defects").name == "defects"
    assert gov.decline_dataset_use("defects", "gauges", "v1", "changed purpose", actor="pat")
    gov.delete_dataset_version(
        "gauges", "v1", actor="retention", requested_by="pat", detached_from=(), bytes_freed=0
    )
    assert list_cards(any_registry) == []  # the card goes with its version
