"""Provider co-review with the registry behind the airlock, as deployed: membership, the
data's providers, their classification's co-review and the provider's standing all read
from a registry seeded through its one writer, in a real hub."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from cleanroom.registry import DatasetInfo, Registry
from cleanroom.registry.governance import Governance
from cleanroom.registry.library import NewCard

from tests.people import in_standing

from .hub import Hub, start_hub, stop_hub
from .test_hub_api import submit
from .test_pages import finish, vote
from .test_provider_pages import provider_vote, release, state_of

FILE = "out/furnace.csv"


def _seed(gov: Governance) -> None:
    gov.add_user("olga", ["officer", "operator"], actor="seed")
    in_standing(gov.registry, "olga")
    for name, roles in (("ada", ["researcher"]), ("otis", ["officer"]), ("oona", ["officer"])):
        gov.add_user(name, roles, actor="seed")
        in_standing(gov.registry, name)
    for name in ("pia", "rex"):
        gov.add_user(name, ["provider"], actor="seed")
        gov.add_provider_account("Acme", name, actor="olga")
    in_standing(gov.registry, "pia")
    in_standing(gov.registry, "rex", enrol=False)  # no second factor: not in standing
    gov.create_project("furnace", "Furnace", quota_tier="standard", actor="olga")
    gov.add_member("furnace", "ada", actor="olga")
    gov.register_dataset_version(
        DatasetInfo("recipes", "v1", "Acme", "/lib/recipes/v1", None, 1),
        NewCard("trade-secret", "verified"),
        actor="seed",
    )
    gov.attach_dataset("furnace", "recipes", "v1", actor="olga")
    gov.approve_dataset_use("furnace", "recipes", "v1", actor="pia")


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """A hub whose airlock reads everything from a seeded registry."""
    root = tmp_path_factory.mktemp("registry-hub")
    url = f"sqlite:///{root / 'registry.sqlite'}"
    _seed(Governance(Registry(url)))
    hub = start_hub(
        root,
        {},
        ["otis", "oona"],
        [],
        environment={
            "CLEANROOM_REGISTRY_URL": url,
            "CLEANROOM_AIRLOCK_MEMBERSHIP": "registry",
            "CLEANROOM_AIRLOCK_DATA_OWNERS": "registry",
        },
    )
    try:
        for user in ("ada", "otis", "oona", "pia", "rex"):
            hub.add_user(user)
        yield hub
    finally:
        stop_hub(hub)
        print(hub.log_tail())


def test_a_trade_secret_release_waits_for_its_provider(deployed: Hub) -> None:
    hub = deployed
    token = hub.workspace_token("ada", "furnace")
    r = submit(
        hub.submit_url,
        token,
        {FILE: b"zone,temp\n1,900\n"},
        project="furnace",
        why=f"furnace zones {time.time()}",
    )
    assert r.status_code == 201, r.text
    rid = str(r.json()["id"])
    for officer in ("otis", "oona"):
        s = hub.browser(officer)
        s.get(f"{hub.service_url}requests/{rid}")
        vote(hub, s, rid, FILE, "approve", "")
        page = finish(hub, s, rid)
    assert state_of(page) == "provider_review"
    assert "recipes@v1" in page

    # rex acts for Acme but has no second factor: the registry's standing refuses him.
    rex = hub.browser("rex")
    refused = provider_vote(hub, rex, rid, "Acme", "approve")
    assert refused.status_code == 403 and "second factor" in refused.text

    pia = hub.browser("pia")
    assert rid in pia.get(f"{hub.service_url}provider").text
    done = provider_vote(hub, pia, rid, "Acme", "approve", "nothing of the recipe")
    assert done.status_code == 200 and state_of(done.text) == "approved"
    released = release(hub, hub.browser("otis"), rid)
    assert released.status_code == 200 and state_of(released.text) == "released"
