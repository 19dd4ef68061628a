"""The applications' pages over a real hub: a researcher drafts and submits, each member
signs for themselves, the provider decides the use on their page, an operator records the
assessment and decides; every refusal is a clear page and changes nothing."""

from __future__ import annotations

import html
import re
from datetime import date, timedelta

import pytest
import requests
from cleanroom.errors import NotFound

from .conftest import Library
from .test_pages import _xsrf

NEXT_YEAR = (date.today() + timedelta(days=365)).isoformat()


def _form(token: str, title: str, **change: object) -> dict[str, object]:
    form: dict[str, object] = {
        "_xsrf": token,
        "title": title,
        "purpose": "Which press settings drive surface defects",
        "members": "alice, bob",
        "dataset": ["strokes@v1"],
        "ends_on": NEXT_YEAR,
        "assessment_reference": "DPIA-2026-014",
        "action": "draft",
    }
    form.update(change)
    return form


def _number(r: requests.Response) -> int:
    found = re.search(r"/applications/(\d+)\?", r.url)
    assert found, (r.url, r.text[:500])
    return int(found.group(1))


def _post(s: requests.Session, library: Library, path: str, **data: object) -> requests.Response:
    token = _xsrf(s, library.hub.library)
    return s.post(f"{library.hub.library}{path}", data={**data, "_xsrf": token}, timeout=30)


def _refused(
    library: Library, s: requests.Session, path: str, status: int, message: str, **data: object
) -> None:
    """The post is answered ``status`` with ``message``, and nothing changed."""
    before = (library.governance.journal_entries(), library.governance.list_applications())
    r = _post(s, library, path, **data)
    assert r.status_code == status and message in html.unescape(r.text), r.text[:800]
    assert (library.governance.journal_entries(), library.governance.list_applications()) == before


def test_a_researcher_drafts_submits_and_the_members_sign(library: Library) -> None:
    alice = library.hub.session("alice")
    form = alice.get(f"{library.hub.library}applications/new", timeout=30)
    assert 'value="strokes@v1"' in form.text and 'value="bolts@v1"' in form.text
    assert 'value="valves@v1"' not in form.text  # quarantined: no project may use it
    token = _xsrf(alice, f"{library.hub.library}applications/new")
    r = alice.post(
        f"{library.hub.library}applications/new", data=_form(token, "Surface defects"), timeout=30
    )
    assert r.status_code == 200 and "saved as a draft" in r.text
    number = _number(r)
    assert 'id="stage">draft<' in r.text and "Submit application" in r.text
    mine = alice.get(f"{library.hub.library}applications", timeout=30)
    assert f'applications/{number}">{number}</a>' in mine.text and "Surface defects" in mine.text
    bob, carol = library.hub.session("bob"), library.hub.session("carol")
    assert "Sign the pledge" not in bob.get(f"{library.hub.library}applications/{number}").text
    r = carol.get(f"{library.hub.library}applications/{number}", timeout=30)
    assert r.status_code == 403 and f"application {number} is not yours" in r.text
    _refused(library, bob, f"applications/{number}/save", 403, "is not yours",
             **_form("", "Bob's now"))  # fmt: skip
    _refused(library, bob, f"applications/{number}/submit", 403, "is not yours")
    r = _post(alice, library, f"applications/{number}/save",
              **_form("", "Surface defects", purpose="Which settings drive dents"))  # fmt: skip
    assert r.status_code == 200 and "Which settings drive dents" in r.text
    r = _post(alice, library, f"applications/{number}/submit")
    assert r.status_code == 200 and 'id="stage">waiting for signatures<' in r.text
    _refused(library, alice, f"applications/{number}/submit", 409, "was submitted already")
    _refused(library, carol, f"applications/{number}/sign", 403, "'carol' is not named")
    for session in (alice, bob):
        page = session.get(f"{library.hub.library}applications/{number}", timeout=30)
        assert "I will use the data only for this project" in page.text
        r = _post(session, library, f"applications/{number}/sign")
        assert r.status_code == 200 and "you signed the pledge" in r.text
    assert 'id="stage">waiting for providers<' in r.text
    _refused(library, bob, f"applications/{number}/sign", 409, "bob signed application")
    signed = library.governance.get_application(number)
    assert signed.pledge_signed_by == ("alice", "bob") and signed.purpose.endswith("dents")
    actors = [(e.actor, e.action) for e in library.governance.journal_entries()
              if e.subject == f"application:{number}"]  # fmt: skip
    assert actors == [
        ("alice", "application.draft"),
        ("alice", "application.draft"),
        ("alice", "application.submit"),
        ("alice", "application.sign"),
        ("bob", "application.sign"),
    ]


def _signed(library: Library, title: str, datasets: list[str]) -> int:
    """An application by alice with bob, submitted and signed, through the domain."""
    gov = library.governance
    app = gov.submit_application(
        title=title, purpose="p", members=["alice", "bob"], datasets=datasets,
        ends_on=date.fromisoformat(NEXT_YEAR), actor="alice",
    )  # fmt: skip
    for member in ("alice", "bob"):
        gov.sign_pledge(app.id, actor=member)
    return app.id


def test_the_provider_decides_the_use_and_an_operator_the_application(library: Library) -> None:
    number = _signed(library, "Press dents", ["strokes@v1"])
    pat, rita = library.hub.session("pat"), library.hub.session("rita")
    page = pat.get(f"{library.hub.library}provider", timeout=30)
    assert f"Application {number}: Press dents" in page.text
    assert f"Approve strokes for application {number}" in page.text
    assert "Press dents" not in rita.get(f"{library.hub.library}provider", timeout=30).text
    _refused(library, rita, "provider/applications/approve", 403, "'rita' does not act for 'Acme'",
             application=number, dataset="strokes")  # fmt: skip
    _refused(library, pat, "provider/applications/approve", 404, "does not want dataset bolts",
             application=number, dataset="bolts")  # fmt: skip
    _refused(library, pat, "provider/applications/approve", 400, "is not an application number",
             application="x", dataset="strokes")  # fmt: skip
    r = _post(pat, library, "provider/applications/approve", application=number, dataset="strokes")
    assert r.status_code == 200 and f"application {number} may use strokes" in r.text
    alice, olga = library.hub.session("alice"), library.hub.session("olga")
    assert alice.get(f"{library.hub.library}operator", timeout=30).status_code == 403
    queue = olga.get(f"{library.hub.library}operator", timeout=30)
    assert f'applications/{number}">{number}</a>' in queue.text
    assert "waiting for the operator" in queue.text
    page = olga.get(f"{library.hub.library}applications/{number}", timeout=30)
    assert f"Approve application {number}" in page.text and "Record the assessment" in page.text
    # strokes is confidential: the page says what the project needs (docs/library.md).
    assert "quota tier small or higher, access standard, provider co-review notify" in page.text
    assert "<option selected>standard</option>" in page.text
    _refused(library, alice, f"applications/{number}/approve", 403,
             "'alice' does not hold the operator role", project="press-dents")  # fmt: skip
    _refused(library, olga, f"applications/{number}/approve", 403,
             "no data processing assessment", project="press-dents")  # fmt: skip
    r = _post(olga, library, f"applications/{number}/assess", reference="DPIA-9",
              outcome="approved")  # fmt: skip
    assert r.status_code == 200 and "assessment DPIA-9 recorded" in r.text
    r = _post(olga, library, f"applications/{number}/approve", project="press-dents",
              tier="small")  # fmt: skip
    assert r.status_code == 200 and 'id="stage">approved<' in r.text
    project = library.registry.get_project("press-dents")
    assert project.members == ("alice", "bob") and project.quota_tier == "small"
    assert [(a.dataset, a.approved_by) for a in library.governance.approvals("press-dents")] == [
        ("strokes", "pat")
    ]
    mine = alice.get(f"{library.hub.library}applications", timeout=30)
    assert "press-dents" in mine.text
    _refused(library, olga, f"applications/{number}/decline", 409, "is approved already",
             reason="late")  # fmt: skip


def test_declined_applications_show_their_reason(library: Library) -> None:
    by_operator = _signed(library, "Operator says no", [])
    olga = library.hub.session("olga")
    _refused(library, olga, f"applications/{by_operator}/decline", 400, "needs a reason",
             reason=" ")  # fmt: skip
    _post(olga, library, f"applications/{by_operator}/decline", reason="purpose too broad")
    by_provider = _signed(library, "Provider says no", ["strokes@v1"])
    pat = library.hub.session("pat")
    _post(pat, library, "provider/applications/decline", application=by_provider,
          dataset="strokes", reason="not for this purpose")  # fmt: skip
    alice = library.hub.session("alice")
    for number, reason in (
        (by_operator, "purpose too broad"),
        (by_provider, "Acme declined the use of strokes v1: not for this purpose"),
    ):
        page = alice.get(f"{library.hub.library}applications/{number}", timeout=30)
        assert 'id="stage">declined<' in page.text and reason in html.unescape(page.text)
    with pytest.raises(NotFound):
        library.registry.get_project("provider-says-no")


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"ends_on": "next year"}, 400, "the period's end must be a date, YYYY-MM-DD"),
        ({"members": "alice, nobody"}, 400, "'nobody' is not a known researcher"),
        ({"members": "alice, pat"}, 400, "'pat' is not a known researcher"),
        ({"dataset": ["nothing@v1"]}, 404, "there is no dataset nothing version v1"),
        ({"dataset": ["valves@v1"]}, 400, "valves version v1 is quarantined"),
        ({"title": " "}, 400, "needs a title and a purpose"),
    ],
)
def test_a_bad_application_is_refused_and_changes_nothing(
    library: Library, change: dict, status: int, message: str
) -> None:
    alice = library.hub.session("alice")
    _refused(library, alice, "applications/new", status, message,
             **{**_form("", "Bad one", action="submit"), **change})  # fmt: skip


def test_only_researchers_apply_and_forms_come_from_our_origin(library: Library) -> None:
    pat = library.hub.session("pat")
    _refused(library, pat, "applications/new", 403, "'pat' does not hold the researcher role",
             **_form("", "By a provider"))  # fmt: skip
    number = library.governance.submit_application(
        title="Origin check", purpose="p", members=["bob"],
        ends_on=date.fromisoformat(NEXT_YEAR), actor="alice",
    ).id  # fmt: skip
    bob = library.hub.session("bob")
    before = library.governance.journal_entries()
    token = _xsrf(bob, library.hub.library)
    r = bob.post(
        f"{library.hub.library}applications/{number}/sign", data={"_xsrf": token},
        headers={"Origin": "http://evil.invalid"}, timeout=30,
    )  # fmt: skip
    assert r.status_code == 403
    r = bob.post(f"{library.hub.library}applications/{number}/sign", data={"_xsrf": "forged"},
                 timeout=30)  # fmt: skip
    assert r.status_code == 403
    assert library.governance.journal_entries() == before


def test_its_applicant_withdraws_an_application_from_its_page(library: Library) -> None:
    number = _signed(library, "Press dents, withdrawn", ["strokes@v1"])
    alice, bob = library.hub.session("alice"), library.hub.session("bob")
    page = alice.get(f"{library.hub.library}applications/{number}", timeout=30)
    assert f"Withdraw application {number}" in page.text
    assert "Withdraw application" not in bob.get(f"{library.hub.library}applications/{number}").text
    _refused(library, bob, f"applications/{number}/withdraw", 403, "only its applicant withdraws")
    r = _post(alice, library, f"applications/{number}/withdraw", reason="funding <ended>")
    assert r.status_code == 200 and f"application {number} withdrawn" in r.text
    assert 'id="stage">withdrawn<' in r.text and "funding &lt;ended&gt;" in r.text
    assert "Withdraw application" not in r.text
    _refused(library, alice, f"applications/{number}/withdraw", 409, "withdrawn already")
    # Nothing waits on it: off the provider's list, decided on the operators'.
    provider = library.hub.session("pat").get(f"{library.hub.library}provider", timeout=30)
    assert f"app-{number}" not in provider.text
    entry = library.governance.journal_entries()[-1]
    assert (entry.action, entry.actor, entry.subject) == (
        "application.withdraw",
        "alice",
        f"application:{number}",
    )


def test_the_form_opens_with_the_version_chosen_on_its_card(library: Library) -> None:
    alice = library.hub.session("alice")
    card = alice.get(f"{library.hub.library}datasets/strokes/v1", timeout=30)
    link = re.search(r'href="([^"]*applications/new\?dataset=[^"]+)"', card.text)
    assert link, card.text[:800]
    form = alice.get(library.hub.url + html.unescape(link.group(1)), timeout=30)
    assert re.search(r'value="strokes@v1" checked', form.text), form.text[:2000]
    assert not re.search(r'value="bolts@v1" checked', form.text)
    found = alice.get(f"{library.hub.library}applications/new", params={"q": "bolt"}, timeout=30)
    assert 'value="bolts@v1"' in found.text and 'value="strokes@v1"' not in found.text
