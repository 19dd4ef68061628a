"""The library's pages over a real hub: every signed-in person reads the catalogue and
the cards (never the data); providers decide their own datasets' uses as themselves;
every refusal is a clear page and changes nothing."""

from __future__ import annotations

import html
import re

import pytest
import requests
from cleanroom.library.catalogue import get_card

from .conftest import MARK, Library


def _xsrf(s: requests.Session, url: str) -> str:
    page = s.get(url, timeout=30)
    page.raise_for_status()
    found = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
    if found:
        return found.group(1)
    # Pages without a form still set the cookie (the hub's own sits under /hub/).
    ours = [c.value for c in s.cookies if c.name == "_xsrf" and not c.path.startswith("/hub")]
    assert ours, page.text[:500]
    return str(ours[0])


def test_a_researcher_reads_the_catalogue_and_cards_never_the_data(library: Library) -> None:
    s = library.hub.session("alice")
    catalogue = s.get(library.hub.library, timeout=30)
    assert catalogue.headers["Content-Security-Policy"].startswith("default-src 'none'")
    for text in ("strokes", "valves", "bolts", "confidential", "quarantined", "Acme"):
        assert text in catalogue.text
    assert "Your datasets" not in catalogue.text  # no provider page for a researcher
    found = s.get(library.hub.library, params={"q": "line 3"}, timeout=30)
    assert "strokes" in found.text and "bolts</a>" not in found.text
    card = s.get(f"{library.hub.library}datasets/strokes/v1", timeout=30)
    assert card.status_code == 200
    sha = get_card(library.registry, "strokes", "v1").files[0][2]
    for text in (
        "Acme data agreement 7",
        "Press strokes of line 3",
        sha,
        "unique: True",
        "verified",
        "29 rows",
        "quota tier small or higher",
    ):
        assert text in card.text, text
    quarantined = s.get(f"{library.hub.library}datasets/valves/v1", timeout=30)
    assert "unique-error" in quarantined.text and "No workspace may use it" in quarantined.text
    croissant = s.get(f"{library.hub.library}datasets/strokes/v1/croissant.json", timeout=30)
    assert croissant.json()["name"] == "strokes"
    package = s.get(f"{library.hub.library}datasets/strokes/v1/datapackage.json", timeout=30)
    assert package.json()["resources"][0]["hash"] == f"sha256:{sha}"
    for page in (catalogue, card, quarantined, croissant, package):
        assert MARK not in page.text
    missing = s.get(f"{library.hub.library}datasets/strokes/v9", timeout=30)
    assert missing.status_code == 404 and "there is no dataset strokes version v9" in missing.text
    assert s.get(f"{library.hub.library}nothing-here", timeout=30).status_code == 404
    bad = s.get(library.hub.library, params={"page": "x"}, timeout=30)
    assert bad.status_code == 400 and "page must be a whole number" in bad.text


def test_pages_need_a_signed_in_person(library: Library) -> None:
    r = requests.get(library.hub.library, timeout=30, allow_redirects=False)
    assert r.status_code == 302 and "/hub/api/oauth2/authorize" in r.headers["Location"]


def test_a_provider_approves_and_declines_as_themselves(library: Library) -> None:
    s = library.hub.session("pat")
    page = s.get(f"{library.hub.library}provider", timeout=30)
    assert "You act for Acme" in page.text and "waiting for you" in page.text
    assert "bolts" not in page.text  # another provider's dataset
    token = _xsrf(s, f"{library.hub.library}provider")
    form = {"_xsrf": token, "project": "defects", "dataset": "strokes", "version": "v1"}
    r = s.post(f"{library.hub.library}provider/approve", data=form, timeout=30)
    assert r.status_code == 200 and "defects may use strokes v1" in r.text
    approvals = library.governance.approvals("defects")
    assert [(a.dataset, a.approved_by, a.current) for a in approvals] == [("strokes", "pat", True)]
    r = s.post(
        f"{library.hub.library}provider/decline",
        data={**form, "reason": "the purpose changed"}, timeout=30,
    )  # fmt: skip
    assert r.status_code == 200 and "the purpose changed" in r.text
    assert not library.governance.approvals("defects")[0].current
    entry = library.governance.journal_entries()[-1]
    assert (entry.action, entry.actor, entry.detail["revoked"]) == (
        "dataset.decline_use",
        "pat",
        True,
    )


@pytest.mark.parametrize(
    ("user", "dataset", "status", "message"),
    [
        ("alice", "strokes", 403, "does not hold the provider role"),
        ("rita", "strokes", 403, "'rita' does not act for 'Acme'"),
        ("pat", "bolts", 403, "'pat' does not act for 'Bolt'"),
    ],
)
def test_a_decision_on_someone_elses_data_is_refused_and_changes_nothing(
    library: Library, user: str, dataset: str, status: int, message: str
) -> None:
    s = library.hub.session(user)
    before = library.governance.journal_entries()
    token = _xsrf(s, library.hub.library)
    form = {"_xsrf": token, "project": "defects", "dataset": dataset, "version": "v1"}
    r = s.post(f"{library.hub.library}provider/approve", data=form, timeout=30)
    assert r.status_code == status and message in html.unescape(r.text), r.text[:800]
    assert library.governance.journal_entries() == before


def test_a_form_from_another_origin_is_refused(library: Library) -> None:
    s = library.hub.session("pat")
    token = _xsrf(s, f"{library.hub.library}provider")
    before = library.governance.journal_entries()
    status = get_card(library.registry, "valves", "v1").status
    form = {"_xsrf": token, "project": "defects", "dataset": "valves", "version": "v1",
            "reason": "x"}  # fmt: skip
    r = s.post(
        f"{library.hub.library}provider/accept", data=form,
        headers={"Origin": "http://evil.invalid"}, timeout=30,
    )  # fmt: skip
    assert r.status_code == 403
    r = s.post(
        f"{library.hub.library}provider/accept", data={**form, "_xsrf": "forged"}, timeout=30
    )
    assert r.status_code == 403
    assert library.governance.journal_entries() == before
    assert get_card(library.registry, "valves", "v1").status == status == "quarantined"


def _act(s: requests.Session, library: Library, path: str, **form: str) -> requests.Response:
    token = _xsrf(s, f"{library.hub.library}provider")
    return s.post(f"{library.hub.library}{path}", data={**form, "_xsrf": token}, timeout=30)


def test_a_principal_names_a_delegate_who_acts_and_then_removes_them(library: Library) -> None:
    rita, dora, pat = (library.hub.session(n) for n in ("rita", "dora", "pat"))
    page = dora.get(f"{library.hub.library}provider", timeout=30)
    assert "You do not act for any data provider" in page.text
    page = rita.get(f"{library.hub.library}provider", timeout=30)
    assert "Who acts for Bolt" in page.text and "Name a delegate for Bolt" in page.text
    gov = library.governance

    def refused(s: requests.Session, path: str, status: int, message: str, **form: str) -> None:
        before = (gov.journal_entries(), gov.provider_accounts())
        r = _act(s, library, path, **form)
        assert r.status_code == status and message in html.unescape(r.text), r.text[:800]
        assert (gov.journal_entries(), gov.provider_accounts()) == before

    add, remove = "provider/delegates/add", "provider/delegates/remove"
    refused(pat, add, 403, "'pat' does not act for 'Bolt'", provider="Bolt", user="dora")
    refused(rita, add, 403, "'alice' does not hold the provider role", provider="Bolt",
            user="alice")  # fmt: skip
    refused(rita, add, 404, "there is no user 'nobody'", provider="Bolt", user="nobody")
    r = _act(rita, library, add, provider="Bolt", user="dora")
    assert r.status_code == 200 and "dora now acts for Bolt as your delegate" in r.text
    assert "delegate, named by rita" in r.text and "Remove dora" in r.text
    refused(rita, add, 409, "'dora' acts for 'Bolt' already", provider="Bolt", user="dora")
    # The delegate acts for Bolt: sees its datasets, approves and revokes a use...
    page = dora.get(f"{library.hub.library}provider", timeout=30)
    assert "You act for Bolt" in page.text and "bolts v1" in page.text
    assert "Name a delegate" not in page.text and "Remove rita" not in page.text
    form = {"project": "furnace", "dataset": "bolts", "version": "v1"}
    r = _act(dora, library, "provider/approve", **form)
    assert r.status_code == 200 and "furnace may use bolts v1" in r.text
    assert "Revoke furnace&#39;s use" in r.text or "Revoke furnace's use" in r.text
    r = _act(dora, library, "provider/decline", **form, reason="the purpose changed")
    assert r.status_code == 200 and "furnace may not use bolts v1" in r.text
    assert not [a for a in gov.approvals("furnace") if a.dataset == "bolts" and a.current]
    # ... but names and removes nobody.
    refused(dora, add, 403, "only its principals", provider="Bolt", user="pat")
    refused(dora, remove, 403, "only its principals", provider="Bolt", user="dora")
    refused(rita, remove, 403, "only an operator removes them", provider="Bolt", user="rita")
    r = _act(rita, library, remove, provider="Bolt", user="dora")
    assert r.status_code == 200 and "dora no longer acts for Bolt" in r.text
    assert [(a.user, a.delegate) for a in gov.provider_accounts("Bolt")] == [("rita", False)]
    actions = [(e.actor, e.action) for e in gov.journal_entries() if e.subject == "provider:Bolt"]
    assert actions[-2:] == [("rita", "provider.delegate"), ("rita", "provider.account_remove")]
