"""The airlock's data owners read from a real registry: each version's provider and its
classification's co-review level, the provider accounts, the provider's standing, and a
registry that cannot answer failing closed."""

from __future__ import annotations

import sqlite3

import pytest
from cleanroom.airlock.co_review import DataUse, RegistryDataOwners, co_reviewers
from cleanroom.airlock.domain import CoReview, CoReviewer
from cleanroom.airlock.exceptions import Unavailable
from cleanroom.registry import DatasetInfo
from cleanroom.registry.governance import Governance
from cleanroom.registry.library import NewCard

from tests.people import in_standing


def _seed(gov: Governance) -> None:
    gov.add_user("alice", actor="seed")
    gov.add_user("olga", ["operator"], actor="seed")
    in_standing(gov.registry, "olga")
    for name, provider in (("paul", "Acme"), ("nina", "Boreal")):
        gov.add_user(name, ["provider"], actor="seed")
        in_standing(gov.registry, name)
        gov.add_provider_account(provider, name, actor="olga")
    gov.add_user("rex", ["provider"], actor="seed")  # a provider not in standing
    gov.add_provider_account("Acme", "rex", actor="olga")
    gov.create_project("kiln", "Kiln", quota_tier="standard", actor="seed")
    gov.add_member("kiln", "alice", actor="seed")
    for name, provider, category in (
        ("recipes", "Acme", "trade-secret"),
        ("sensors", "Boreal", "confidential"),
        ("logs", "Boreal", "internal"),
    ):
        gov.register_dataset_version(
            DatasetInfo(name, "v1", provider, f"/lib/{name}/v1", None, 1),
            NewCard(category, "verified"),
            actor="seed",
        )
        gov.attach_dataset("kiln", name, "v1", actor="seed")
        gov.approve_dataset_use("kiln", name, "v1", actor="paul" if provider == "Acme" else "nina")


def test_the_registry_says_who_owns_a_projects_data(writer: Governance) -> None:
    _seed(writer)
    owners = RegistryDataOwners(writer.registry.url)
    uses = owners.uses_of("kiln")
    assert sorted(uses, key=lambda u: u.dataset) == [
        DataUse("logs", "v1", "Boreal", CoReview.NONE),
        DataUse("recipes", "v1", "Acme", CoReview.REQUIRED),
        DataUse("sensors", "v1", "Boreal", CoReview.NOTIFY),
    ]
    assert co_reviewers(uses) == [
        CoReviewer("Acme", CoReview.REQUIRED, ("recipes@v1",)),
        CoReviewer("Boreal", CoReview.NOTIFY, ("sensors@v1",)),
    ]
    assert owners.uses_of("nothing-here") == []
    assert owners.providers_of("paul") == {"Acme"}
    assert owners.providers_of("alice") == set()
    assert owners.provider_problem("paul") == ""
    assert "rex" in owners.provider_problem("rex")
    assert "does not hold the provider role" in owners.provider_problem("alice")


def test_a_classification_changed_by_the_provider_changes_the_level(writer: Governance) -> None:
    _seed(writer)
    owners = RegistryDataOwners(writer.registry.url)
    writer.classify_dataset("logs", "v1", "trade-secret", actor="nina")
    levels = {u.dataset: u.co_review for u in owners.uses_of("kiln")}
    assert levels["logs"] is CoReview.REQUIRED


def test_a_registry_that_cannot_answer_fails_closed(writer: Governance) -> None:
    """A database fault is never "no data asks for co-review": every question raises a
    503 that says why."""
    _seed(writer)
    owners = RegistryDataOwners(writer.registry.url)
    assert owners.providers_of("paul") == {"Acme"}
    with sqlite3.connect(writer.registry.url.removeprefix("sqlite:///")) as db:
        db.execute("DROP TABLE project_datasets")
        db.execute("DROP TABLE provider_accounts")
    with pytest.raises(Unavailable, match="the registry cannot say which data project kiln"):
        owners.uses_of("kiln")
    with pytest.raises(Unavailable, match="which providers paul acts for") as refused:
        owners.providers_of("paul")
    assert refused.value.status == 503
