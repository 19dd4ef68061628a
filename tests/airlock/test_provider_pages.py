"""Providers' co-review through a real hub: the provider's page, the vote on the request
page, every refusal as a page with its message, and the release it unblocks."""

from __future__ import annotations

import re
import time

import requests

from .hub import CO_PROJECT, Hub
from .test_hub_api import submit, xsrf
from .test_pages import finish, vote

FILE = "out/kiln.csv"


def kiln_request(hub: Hub) -> str:
    """A request by alice in kiln (Acme's recipes: Acme must vote; Boreal is told)."""
    token = hub.workspace_token("alice", CO_PROJECT)
    r = submit(
        hub.submit_url,
        token,
        {FILE: b"batch,count\nA,120\nB,95\n"},
        project=CO_PROJECT,
        why=f"kiln counts {time.time()}",
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def officers_approve(hub: Hub, rid: str) -> str:
    """Both officers approve every file; the page the second one lands on."""
    page = ""
    for officer in ("olga", "oscar"):
        s = hub.browser(officer)
        s.get(f"{hub.service_url}requests/{rid}")
        vote(hub, s, rid, FILE, "approve", "")
        page = finish(hub, s, rid)
    return page


def provider_vote(
    hub: Hub,
    s: requests.Session,
    rid: str,
    provider: str,
    decision: str,
    reason: str = "",
    round_: str = "1",
) -> requests.Response:
    """Post the vote form as the request page offers it (the XSRF token, our origin);
    also for someone the page offers no form, to show what the airlock answers them."""
    page = s.get(f"{hub.service_url}requests/{rid}")
    assert page.status_code == 200, page.text
    token = s.cookies.get("_xsrf", path="/services/airlock/")
    return s.post(
        f"{hub.service_url}requests/{rid}/provider-vote",
        data={
            "provider": provider,
            "round": round_,
            "decision": decision,
            "reason": reason,
            "_xsrf": token,
        },
    )


def release(hub: Hub, s: requests.Session, rid: str) -> requests.Response:
    """Post the release form (a page without one still set the XSRF cookie it checks)."""
    s.get(f"{hub.service_url}requests/{rid}")
    token = s.cookies.get("_xsrf", path="/services/airlock/")
    return s.post(f"{hub.service_url}requests/{rid}/release", data={"_xsrf": token})


def state_of(page: str) -> str:
    found = re.search(r'<span class="state">([a-z_]+)</span>', page)
    assert found, page[:500]
    return found.group(1)


def test_a_release_waits_for_the_providers_vote_then_completes(hub: Hub) -> None:
    rid = kiln_request(hub)
    paul, nina, kim = hub.browser("paul"), hub.browser("nina"), hub.browser("kim")

    # Before the officers decide: Boreal is told, nothing waits for Acme yet.
    told = nina.get(f"{hub.service_url}provider").text
    assert rid in told and "be told" in told and "Nothing waits for your vote" in told
    assert "Nothing waits for your vote" in paul.get(f"{hub.service_url}provider").text
    assert hub.browser("alice").get(f"{hub.service_url}provider").status_code == 403

    assert state_of(officers_approve(hub, rid)) == "provider_review"
    olga = hub.browser("olga")
    page = olga.get(f"{hub.service_url}requests/{rid}").text
    assert "Release the approved files" not in page and "awaited" in page
    refused = release(hub, olga, rid)
    assert refused.status_code == 409 and "not approved" in refused.text

    # paul's page lists it as waiting; he sees the file as the officers did.
    waiting = paul.get(f"{hub.service_url}provider").text
    assert waiting.index(rid) < waiting.index("All requests on your data")
    page = paul.get(f"{hub.service_url}requests/{rid}").text
    assert "Your vote for Acme" in page and "olga: approve" in page
    shown = paul.get(f"{hub.service_url}requests/{rid}/file", params={"path": FILE})
    assert shown.status_code == 200 and "batch" in shown.text

    # Refusals: a member of the project, a provider only told, a decline without reason.
    r = provider_vote(hub, kim, rid, "Acme", "approve")
    assert r.status_code == 403 and "must come from someone outside it" in r.text
    assert "Your vote for" not in kim.get(f"{hub.service_url}requests/{rid}").text
    r = provider_vote(hub, nina, rid, "Boreal", "approve")
    assert r.status_code == 403 and "not asked to vote" in r.text
    r = provider_vote(hub, paul, rid, "Acme", "decline", "  ")
    assert r.status_code == 400 and "needs a reason" in r.text
    r = provider_vote(hub, paul, rid, "Acme", "approve", round_="0")
    assert r.status_code == 400 and "round must be a whole number" in r.text
    page = paul.get(f"{hub.service_url}requests/{rid}").text
    assert state_of(page) == "provider_review"

    r = provider_vote(hub, paul, rid, "Acme", "approve", "no recipe in it")
    assert r.status_code == 200 and "Your vote is recorded; the request is approved" in r.text
    assert "paul: approve: no recipe in it" in r.text
    again = provider_vote(hub, paul, rid, "Acme", "approve")
    assert again.status_code == 409 and "Acme already voted on round 1" in again.text

    r = release(hub, olga, rid)
    assert r.status_code == 200 and state_of(r.text) == "released"
    got = hub.browser("alice").get(
        f"{hub.service_url}requests/{rid}/download", params={"path": FILE}
    )
    assert got.status_code == 200 and got.content == b"batch,count\nA,120\nB,95\n"


def test_a_providers_decline_stops_the_release_and_the_author_sees_why(hub: Hub) -> None:
    rid = kiln_request(hub)
    officers_approve(hub, rid)
    paul = hub.browser("paul")
    r = provider_vote(hub, paul, rid, "Acme", "decline", "batch B is a recipe")
    assert r.status_code == 200 and state_of(r.text) == "declined"
    page = hub.browser("alice").get(f"{hub.service_url}requests/{rid}").text
    assert state_of(page) == "declined" and "batch B is a recipe" in page
    r = release(hub, hub.browser("olga"), rid)
    assert r.status_code == 409 and "is declined, not approved" in r.text


def test_the_vote_form_needs_our_origin_and_its_xsrf_token(hub: Hub) -> None:
    rid = kiln_request(hub)
    officers_approve(hub, rid)
    paul = hub.browser("paul")
    page = paul.get(f"{hub.service_url}requests/{rid}").text
    form = {"provider": "Acme", "round": "1", "decision": "approve"}
    r = paul.post(f"{hub.service_url}requests/{rid}/provider-vote", data=form)
    assert r.status_code == 403  # no XSRF token
    r = paul.post(
        f"{hub.service_url}requests/{rid}/provider-vote",
        data={**form, "_xsrf": xsrf(page)},
        headers={"Origin": "http://evil.example"},
    )
    assert r.status_code == 403 and "cross-site request refused" in r.text
    page = paul.get(f"{hub.service_url}requests/{rid}").text
    assert state_of(page) == "provider_review" and "Your vote for Acme" in page
