"""The operators' console over a real hub: projects, members, people, images and running
workspaces, each act the signed-in operator's through the domain (journaled), each
refusal a clear page that changes nothing."""

from __future__ import annotations

import html
import os
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import requests
from cleanroom.registry.people import People
from sqlalchemy import select

from tests.people import in_standing

from .conftest import Library
from .hub import INSTANCE
from .test_pages import _xsrf

NEXT_YEAR = date.today() + timedelta(days=365)


def _state(library: Library) -> tuple[Any, ...]:
    """Everything an act could change: the journal, projects, people's standing, images."""
    reg = library.registry
    people = People(reg)
    from cleanroom.registry.models import AccountState, ImageState

    with reg.session() as s:
        images = sorted((i.name, i.status, i.reason) for i in s.scalars(select(ImageState)))
        accounts = sorted((a.user_name, a.disabled, a.expires_on) for a in s.scalars(
            select(AccountState)))  # fmt: skip
    return (
        library.governance.journal_entries(),
        reg.list_projects(),
        reg.list_users(),
        [people.standing(u.name) for u in reg.list_users()],
        images,
        accounts,
    )


def _post(s: requests.Session, library: Library, path: str, /, **data: object) -> requests.Response:
    token = _xsrf(s, library.hub.library)
    return s.post(f"{library.hub.library}{path}", data={**data, "_xsrf": token}, timeout=30)


def _refused(
    library: Library, s: requests.Session, path: str, status: int, message: str, /, **data: object
) -> None:
    """The post is answered ``status`` with ``message``, and nothing changed (the form's
    fields are ``data``; the parameters before them are positional only)."""
    before = _state(library)
    r = _post(s, library, path, **data)
    assert r.status_code == status, (r.status_code, r.text[:800])
    assert message in html.unescape(r.text), r.text[:800]
    assert _state(library) == before


def _done(
    library: Library, s: requests.Session, path: str, notice: str, /, **data: object
) -> requests.Response:
    """The post acts and lands (POST-redirect-GET) on a page that says ``notice``."""
    r = _post(s, library, path, **data)
    assert r.status_code == 200 and notice in html.unescape(r.text), r.text[:800]
    assert "?notice=" in r.url and r.history and r.history[0].status_code == 302
    return r


def _last(library: Library, subject: str) -> tuple[str, str, dict]:
    entry = library.governance.journal_entries(subject)[-1]
    return entry.actor, entry.action, entry.detail


@pytest.fixture(scope="module")
def olga(library: Library) -> requests.Session:
    """The operator's signed-in session."""
    return library.hub.session("olga")


def test_only_operators_open_the_console_or_act(library: Library) -> None:
    library.governance.create_project("guarded", "Guarded", actor="olga")
    for name in ("alice", "pat"):
        s = library.hub.session(name)
        for page in ("operator/projects", "operator/projects/guarded", "operator/users",
                     "operator/users/alice", "operator/images", "operator/workspaces"):  # fmt: skip
            r = s.get(f"{library.hub.library}{page}", timeout=30)
            assert r.status_code == 403, (page, r.status_code)
            assert f"'{name}' does not hold the operator role" in html.unescape(r.text)
        for path, data in [
            ("operator/projects/guarded/status", {"status": "suspended"}),
            ("operator/projects/nothing/status", {"status": "suspended"}),
            ("operator/users/bob/disable", {"reason": "r"}),
            ("operator/images/pytorch/retire", {"reason": "r"}),
            ("operator/workspaces/stop", {"user": "bob", "project": "guarded", "reason": "r"}),
        ]:
            _refused(library, s, path, 403, "does not hold the operator role", **data)
    assert library.registry.get_project("guarded").status == "approved"


def test_an_operator_out_of_standing_changes_nothing(library: Library) -> None:
    """The role is not enough: the domain's rule for decisions (a second factor here)."""
    library.governance.add_user("omar", ["operator"], actor="seed")
    in_standing(library.registry, "omar", enrol=False)
    library.governance.create_project("unguarded", "Unguarded", actor="olga")
    omar = library.hub.session("omar")
    assert omar.get(f"{library.hub.library}operator/projects", timeout=30).status_code == 200
    _refused(library, omar, "operator/projects/unguarded/status", 403,
             "'omar' may not change a project's status: omar has no second factor enrolled",
             status="suspended")  # fmt: skip
    _refused(library, omar, "operator/users/carol/disable", 403, "may not disable", reason="r")


def test_projects_are_listed_in_pages(library: Library, olga: requests.Session) -> None:
    for i in range(51):
        library.governance.create_project(f"bulk-{i:03d}", f"Bulk {i}", actor="olga")
    r = olga.get(f"{library.hub.library}operator/projects", params={"q": "bulk"}, timeout=30)
    assert "51 project(s) matching “bulk”" in r.text
    assert "bulk-049</a>" in r.text and "bulk-050</a>" not in r.text
    assert 'rel="next" href="/services/library/operator/projects?q=bulk&amp;page=2"' in r.text
    r = olga.get(f"{library.hub.library}operator/projects?q=bulk&page=2", timeout=30)
    assert "bulk-050</a>" in r.text and "bulk-049</a>" not in r.text and 'rel="next"' not in r.text
    r = olga.get(f"{library.hub.library}operator/projects", params={"q": "defects"}, timeout=30)
    row = r.text.split('id="project-defects"')[1].split("</tr>")[0]
    for text in ("approved", "small", "standard", "notebook", "bolts v1, strokes v1",
                 "alice (no end), bob (no end)"):  # fmt: skip
        assert text in row, text
    nav = r.text.split('aria-label="Operators\' console"')[1].split("</nav>")[0]
    assert 'aria-current="page">Projects<' in nav and "../airlock/egress" in nav
    bad = olga.get(f"{library.hub.library}operator/projects?page=0", timeout=30)
    assert bad.status_code == 400 and "page must be a whole number from 1" in bad.text
    missing = olga.get(f"{library.hub.library}operator/projects/nothing", timeout=30)
    assert missing.status_code == 404 and "there is no project 'nothing'" in html.unescape(
        missing.text
    )


def test_an_operator_suspends_reopens_and_dates_a_project(
    library: Library, olga: requests.Session
) -> None:
    library.governance.create_project("console-acts", "Console acts", actor="olga")
    base = "operator/projects/console-acts"
    page = olga.get(f"{library.hub.library}{base}", timeout=30)
    assert "Suspend console-acts" in page.text and "Close console-acts" in page.text
    _done(library, olga, f"{base}/status", "project console-acts is suspended", status="suspended")
    assert library.registry.get_project("console-acts").status == "suspended"
    assert _last(library, "project:console-acts")[:2] == ("olga", "project.status")
    _refused(library, olga, f"{base}/status", 409, "console-acts is suspended already",
             status="suspended")  # fmt: skip
    _refused(library, olga, f"{base}/status", 400, "unknown status 'open'", status="open")
    r = _done(library, olga, f"{base}/status", "console-acts is approved", status="approved")
    assert "Approve (reopen) console-acts" not in r.text and "Suspend console-acts" in r.text
    _done(library, olga, f"{base}/end", f"console-acts ends {NEXT_YEAR}",
          ends_on=NEXT_YEAR.isoformat())  # fmt: skip
    assert library.registry.get_project("console-acts").ends_on == NEXT_YEAR
    actor, action, detail = _last(library, "project:console-acts")
    assert (actor, action, detail["after"]) == ("olga", "project.end_date", NEXT_YEAR.isoformat())
    _refused(library, olga, f"{base}/end", 409, "ends " + NEXT_YEAR.isoformat() + " already",
             ends_on=NEXT_YEAR.isoformat())  # fmt: skip
    _refused(library, olga, f"{base}/end", 400,
             "the project's end must be a date, YYYY-MM-DD, not 'soon'",
             ends_on="soon")  # fmt: skip
    _done(library, olga, f"{base}/end", "console-acts ends never", ends_on="")
    assert library.registry.get_project("console-acts").ends_on is None
    _done(library, olga, f"{base}/mode", "runs in restricted mode", mode="restricted")
    assert library.registry.get_project("console-acts").access_mode == "restricted"
    _refused(library, olga, f"{base}/mode", 400, "pixels", mode="pixels")
    _refused(library, olga, "operator/projects/nothing/status", 404,
             "there is no project 'nothing'", status="suspended")  # fmt: skip
    r = _post(olga, library, f"{base}/status", status="open")
    back = f'href="/services/library/{base}">Back to the operators\' console'
    assert back in html.unescape(r.text)


def test_an_operator_manages_members_and_images(library: Library, olga: requests.Session) -> None:
    library.governance.create_project("console-team", "Console team", actor="olga")
    base = "operator/projects/console-team"
    ends = date.today() + timedelta(days=30)
    _done(library, olga, f"{base}/add-member", "carol is now a member of console-team",
          user="carol", ends_on=ends.isoformat())  # fmt: skip
    assert library.registry.get_project("console-team").members == ("carol",)
    assert _last(library, "project:console-team")[:2] == ("olga", "member.add")
    _refused(library, olga, f"{base}/add-member", 409, "'carol' is a member of 'console-team'",
             user="carol")  # fmt: skip
    _refused(library, olga, f"{base}/add-member", 404, "there is no user 'nobody'", user="nobody")
    _refused(library, olga, f"{base}/add-member", 400, "membership's end must be a date",
             user="bob", ends_on="31/12/2030")  # fmt: skip
    page = olga.get(f"{library.hub.library}{base}", timeout=30)
    assert f"<td>carol</td><td>{ends}</td>" in page.text
    later = ends + timedelta(days=30)
    _done(library, olga, f"{base}/member-end", f"carol's membership of console-team ends {later}",
          user="carol", ends_on=later.isoformat())  # fmt: skip
    _refused(library, olga, f"{base}/member-end", 409, f"ends {later}", user="carol",
             ends_on=later.isoformat())  # fmt: skip
    _refused(library, olga, f"{base}/member-end", 404, "'bob' is not a member of 'console-team'",
             user="bob", ends_on="")  # fmt: skip
    _refused(library, olga, f"{base}/remove-member", 404, "'bob' is not a member",
             user="bob")  # fmt: skip
    _done(library, olga, f"{base}/remove-member", "carol removed from console-team", user="carol")
    assert library.registry.get_project("console-team").members == ()
    assert "console-team" in library.registry.affiliations_of("carol")  # remembered
    assert _last(library, "project:console-team")[:2] == ("olga", "member.remove")
    _done(library, olga, f"{base}/allow-image", "console-team may run pytorch", image="pytorch")
    assert library.registry.get_project("console-team").images == ("notebook", "pytorch")
    _refused(library, olga, f"{base}/allow-image", 409, "may run 'pytorch' already",
             image="pytorch")  # fmt: skip
    _refused(library, olga, f"{base}/allow-image", 400, "unknown image 'viewer'", image="viewer")


def test_an_operator_acts_on_people(library: Library, olga: requests.Session) -> None:
    library.governance.add_user("erin", ["researcher"], actor="seed")
    base = "operator/users/erin"
    page = olga.get(f"{library.hub.library}{base}", timeout=30)
    assert "erin's identity has not been verified yet" in html.unescape(page.text)
    _done(library, olga, f"{base}/roles", "erin now has the roles officer, researcher",
          role=["researcher", "officer"])  # fmt: skip
    assert library.registry.get_user("erin").roles == {"researcher", "officer"}
    assert _last(library, "user:erin")[:2] == ("olga", "user.roles")
    _refused(library, olga, f"{base}/roles", 409, "erin has exactly these roles already",
             role=["officer", "researcher"])  # fmt: skip
    _refused(library, olga, f"{base}/roles", 400, "unknown role(s) king", role=["king"])
    _refused(library, olga, f"{base}/verify", 400, "unknown verification method 'trust-me'",
             method="trust-me")  # fmt: skip
    _done(library, olga, f"{base}/verify", "recorded as verified (in-person)",
          method="in-person", reference="badge 7")  # fmt: skip
    assert _last(library, "user:erin")[:2] == ("olga", "person.verify")
    future = (date.today() + timedelta(days=3)).isoformat()
    _refused(library, olga, f"{base}/train", 400, "is in the future", course="safe-researcher",
             passed_on=future)  # fmt: skip
    _done(library, olga, f"{base}/train", "erin passed safe-researcher", course="safe-researcher",
          passed_on=date.today().isoformat(), expires_on=NEXT_YEAR.isoformat())  # fmt: skip
    assert "safe-researcher" not in People(library.registry).standing("erin").missing_training
    _refused(library, olga, f"{base}/disable", 400, "disabling an account needs a reason",
             reason=" ")  # fmt: skip
    r = _done(library, olga, f"{base}/disable", "erin is disabled", reason="left the company")
    assert "This account is disabled: left the company" in r.text and "Enable erin" in r.text
    assert People(library.registry).account_block("erin").endswith("left the company")
    _refused(library, olga, f"{base}/disable", 409, "'erin' is disabled already", reason="again")
    _done(library, olga, f"{base}/enable", "erin is enabled")
    assert People(library.registry).account_block("erin") == ""
    _done(library, olga, f"{base}/expiry", f"erin's account expires {NEXT_YEAR}",
          expires_on=NEXT_YEAR.isoformat())  # fmt: skip
    _refused(library, olga, f"{base}/expiry", 409, "already", expires_on=NEXT_YEAR.isoformat())
    _refused(library, olga, f"{base}/expiry", 400, "the account's expiry must be a date",
             expires_on="never")  # fmt: skip
    _refused(library, olga, f"{base}/unlock", 409, "'erin' is not locked")
    people = People(library.registry)
    at = datetime.now(UTC)
    for i in range(5):
        people.attempt("erin", "wrong", "", "10.0.3.1", now=at + timedelta(seconds=10 * i))
    assert people.is_locked("erin")
    page = olga.get(f"{library.hub.library}operator/users", params={"q": "erin"}, timeout=30)
    row = page.text.split('id="person-erin"')[1].split("</tr>")[0]
    assert "<td>locked</td>" in row and f"<td>{NEXT_YEAR}</td>" in row and "officer" in row
    _done(library, olga, f"{base}/unlock", "erin may sign in again")
    assert not people.is_locked("erin")
    assert _last(library, "user:erin")[:2] == ("olga", "login.unlock")
    _refused(library, olga, f"{base}/reset-mfa", 409, "'erin' has no second factor to reset",
             reason="lost phone")  # fmt: skip
    _refused(library, olga, "operator/users/nobody/disable", 404, "there is no user 'nobody'",
             reason="r")  # fmt: skip
    missing = olga.get(f"{library.hub.library}operator/users/nobody", timeout=30)
    assert missing.status_code == 404


def test_an_operator_retires_and_allows_an_image(library: Library, olga: requests.Session) -> None:
    page = olga.get(f"{library.hub.library}operator/images", timeout=30)
    assert "Retire pytorch-cuda" in page.text and "viewer" not in page.text
    base = "operator/images/pytorch-cuda"
    _refused(library, olga, f"{base}/retire", 400, "retiring an image needs a reason", reason="")
    _refused(library, olga, f"{base}/allow", 409, "image pytorch-cuda is allowed already")
    r = _done(library, olga, f"{base}/retire", "image pytorch-cuda is retired",
              reason="CUDA 11 is out of support")  # fmt: skip
    assert "CUDA 11 is out of support" in r.text and "Allow pytorch-cuda" in r.text
    assert library.registry.retired_images() == {"pytorch-cuda"}
    assert _last(library, "image:pytorch-cuda")[:2] == ("olga", "image.retired")
    _refused(library, olga, f"{base}/retire", 409, "is retired already", reason="again")
    _refused(library, olga, "operator/projects/defects/allow-image", 403,
             "image pytorch-cuda is retired", image="pytorch-cuda")  # fmt: skip
    _done(library, olga, f"{base}/allow", "image pytorch-cuda is allowed", reason="fixed")
    assert library.registry.retired_images() == set()
    _refused(library, olga, "operator/images/nothing/retire", 400, "unknown image 'nothing'",
             reason="r")  # fmt: skip


def test_forms_come_from_our_origin_with_the_token(
    library: Library, olga: requests.Session
) -> None:
    library.governance.create_project("console-xsrf", "Console xsrf", actor="olga")
    path = f"{library.hub.library}operator/projects/console-xsrf/status"
    before = _state(library)
    token = _xsrf(olga, library.hub.library)
    r = olga.post(path, data={"_xsrf": token, "status": "closed"},
                  headers={"Origin": "http://evil.invalid"}, timeout=30)  # fmt: skip
    assert r.status_code == 403
    r = olga.post(path, data={"_xsrf": "forged", "status": "closed"}, timeout=30)
    assert r.status_code == 403
    assert _state(library) == before


def _base_image() -> str:
    """A small image of this host to run a stand-in workspace from."""
    repository = os.environ.get("CLEANROOM_IMAGE_REPOSITORY", "cleanroom")
    for name in (f"{repository}/base:latest", "cleanroom/base:latest"):
        found = subprocess.run(["docker", "image", "inspect", name], capture_output=True)
        if found.returncode == 0:
            return name
    pytest.fail("no cleanroom base image on this host: build one (cleanroom images build)")


@pytest.fixture
def running(library: Library) -> Iterator[tuple[str, str]]:
    """A container labelled as this instance's workspace of (bob, console-run): what the
    engine shows, as a spawned workspace would (spawning is the integration tests' job)."""
    project, name = "console-run", f"crconsole-test-{uuid.uuid4().hex[:8]}"
    labels = {"cleanroom.kind": "workspace", "cleanroom.instance": INSTANCE,
              "cleanroom.user": "bob", "cleanroom.project": project,
              "cleanroom.image": "base"}  # fmt: skip
    args = [a for k, v in labels.items() for a in ("--label", f"{k}={v}")]
    subprocess.run(["docker", "run", "-d", "--rm", "--name", name, "--network", "none", *args,
                    _base_image(), "sleep", "600"], check=True, capture_output=True)  # fmt: skip
    try:
        yield "bob", project
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)


@pytest.mark.docker
def test_an_operator_sees_and_stops_a_running_workspace(
    library: Library, olga: requests.Session, running: tuple[str, str]
) -> None:
    user, project = running
    page = olga.get(f"{library.hub.library}operator/workspaces", timeout=60)
    assert "Read from the docker backend" in page.text
    assert f"Stop {user} on {project}" in page.text
    assert f"<td>{project}</td><td>{user}</td><td>base</td>" in page.text
    _refused(library, olga, "operator/workspaces/stop", 400, "needs a reason", user=user,
             project=project, reason="")  # fmt: skip
    _refused(library, olga, "operator/workspaces/stop", 404,
             "no workspace of 'carol' on 'console-run' is running", user="carol",
             project=project, reason="r")  # fmt: skip
    _done(library, olga, "operator/workspaces/stop", f"the workspace of {user} on {project}",
          user=user, project=project, reason="runaway job")  # fmt: skip
    actor, action, detail = _last(library, f"project:{project}")
    assert (actor, action, detail["user"], detail["reason"]) == (
        "olga",
        "workspace.stop",
        user,
        "runaway job",
    )
    page = olga.get(f"{library.hub.library}operator/workspaces", timeout=60)
    assert "No workspace is running" in page.text
