"""Governance: applications and decisions, provider approvals, end dates, images,
ingress, and the journal that records each act. Every refusal changes nothing."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from cleanroom.chain import ProblemKind
from cleanroom.errors import Conflict, Forbidden, InvalidInput, NotFound
from cleanroom.registry import DatasetInfo, Registry
from cleanroom.registry.governance import Governance
from cleanroom.workspace import incoming

from tests.people import in_standing

NEXT_YEAR = date.today() + timedelta(days=365)


@pytest.fixture
def gov(registry: Registry) -> Governance:
    """Users of every role, one dataset of provider Acme, pat acting for Acme."""
    for name, roles in [
        ("alice", ["researcher"]),
        ("bob", ["researcher"]),
        ("olga", ["operator"]),
        ("pat", ["provider"]),
        ("quinn", ["provider"]),
    ]:
        Governance(registry).add_user(name, roles, actor="op")
    for name in ("olga", "pat", "quinn"):
        in_standing(registry, name)
    Governance(registry).add_dataset(
        DatasetInfo("press-line", "v1", "Acme", "/lib/press-line/v1", None, 3), actor="op"
    )
    g = Governance(registry)
    g.add_provider_account("Acme", "pat", actor="olga")
    return g


def _apply(g: Governance, signed: list[str] | None = None) -> int:
    """An application by alice, signed, with an approving data processing assessment."""
    app_id = _submit(g, signed)
    g.people.record_assessment(app_id, reference="DPIA-7", outcome="approved", actor="olga")
    return app_id


def _submit(g: Governance, signed: list[str] | None = None) -> int:
    """alice applies with bob; each of ``signed`` (default: both) signs the pledge."""
    app_id = g.submit_application(
        title="Defect drivers",
        purpose="Which press settings drive defects",
        datasets=["press-line"],
        members=["alice", "bob"],
        ends_on=NEXT_YEAR,
        actor="alice",
    ).id
    for member in ["alice", "bob"] if signed is None else signed:
        g.sign_pledge(app_id, actor=member)
    return app_id


def test_approved_application_creates_the_project_with_its_providers_approvals(
    gov: Governance,
) -> None:
    app_id = _apply(gov)
    with pytest.raises(Forbidden, match=r"waits for its providers' decisions on: press-line v1"):
        gov.approve_application(app_id, project="defects", actor="olga")
    assert gov.get_application(app_id).stage == "waiting for providers"
    gov.approve_application_use(app_id, "press-line", actor="pat")
    assert gov.get_application(app_id).stage == "waiting for the operator"
    decided = gov.approve_application(app_id, project="defects", actor="olga", reason="ok")
    assert (decided.status, decided.decided_by, decided.project) == ("approved", "olga", "defects")
    assert decided.decided_at is not None and decided.stage == "approved"
    reg = gov.registry
    project = reg.get_project("defects")
    assert project.members == ("alice", "bob") and project.ends_on == NEXT_YEAR
    # The provider's approval of the application's use is the project's approval.
    (approval,) = gov.approvals("defects")
    assert (approval.dataset, approval.version, approval.approved_by) == ("press-line", "v1", "pat")
    assert [d.name for d in reg.workspace_plan("alice", "defects").datasets] == ["press-line"]
    actions = [e.action for e in gov.journal_entries()]
    assert actions[-6:] == [
        "application.submit",
        "application.sign",
        "application.sign",
        "application.assessment",
        "application.approve_use",
        "application.approve",
    ]
    assert gov.journal_entries()[-1].detail["uses"] == ["press-line@v1:pat"]


def test_declining_needs_a_reason_and_a_decision_is_final(gov: Governance) -> None:
    app_id = _apply(gov)
    with pytest.raises(InvalidInput, match="needs a reason"):
        gov.decline_application(app_id, actor="olga", reason=" ")
    declined = gov.decline_application(app_id, actor="olga", reason="purpose too broad")
    assert declined.status == "declined" and declined.reason == "purpose too broad"
    with pytest.raises(Conflict, match="declined already"):
        gov.approve_application(app_id, project="defects", actor="olga")
    with pytest.raises(NotFound):
        gov.registry.get_project("defects")


def test_unsigned_pledge_blocks_approval_and_changes_nothing(gov: Governance) -> None:
    app_id = _apply(gov, signed=["alice"])
    before = len(gov.journal_entries())
    with pytest.raises(Forbidden, match="not every member signed the pledge: bob"):
        gov.approve_application(app_id, project="defects", actor="olga")
    assert gov.get_application(app_id).status == "pending"
    assert len(gov.journal_entries()) == before
    with pytest.raises(NotFound):
        gov.registry.get_project("defects")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ends_on": date.today() - timedelta(days=1)}, "must end in the future"),
        ({"members": []}, "at least one member"),
        ({"members": ["nobody"]}, "'nobody' is not a known researcher"),
        ({"members": ["alice", "pat"]}, "'pat' is not a known researcher"),
        ({"datasets": ["nope"]}, "no dataset nope"),
        ({"datasets": ["press-line@v9"]}, "no dataset press-line version v9"),
        ({"datasets": ["press-line", "press-line@v1 "]}, "press-line is wanted twice"),
        ({"purpose": ""}, "title and a purpose"),
        ({"actor": "pat"}, "'pat' does not hold the researcher role"),
    ],
)
def test_bad_applications_are_refused(gov: Governance, change: dict, message: str) -> None:
    fields: dict = {
        "title": "T",
        "purpose": "P",
        "members": ["alice"],
        "ends_on": NEXT_YEAR,
        "actor": "alice",
    }
    fields.update(change)
    before = gov.journal_entries()
    with pytest.raises((InvalidInput, NotFound, Forbidden), match=message):
        gov.submit_application(**fields)
    with pytest.raises((InvalidInput, NotFound, Forbidden), match=message):
        gov.save_draft(**fields)
    assert gov.list_applications() == []
    assert gov.journal_entries() == before


def test_only_the_datasets_provider_approves_and_revokes(gov: Governance) -> None:
    reg = gov.registry
    Governance(reg).create_project("defects", "Defects", actor="op")
    Governance(reg).add_member("defects", "alice", actor="op")
    Governance(reg).attach_dataset("defects", "press-line", actor="op")
    with pytest.raises(Forbidden, match="'quinn' does not act for 'Acme'"):
        gov.approve_dataset_use("defects", "press-line", actor="quinn")
    with pytest.raises(Forbidden, match="'olga' does not hold the provider role"):
        gov.approve_dataset_use("defects", "press-line", actor="olga")
    with pytest.raises(Forbidden, match="does not have the provider role"):
        gov.add_provider_account("Acme", "alice", actor="olga")
    gov.approve_dataset_use("defects", "press-line", actor="pat")
    with pytest.raises(Conflict):
        gov.approve_dataset_use("defects", "press-line", actor="pat")
    gov.revoke_dataset_use("defects", "press-line", actor="pat")
    with pytest.raises(Forbidden, match="until its provider approves"):
        reg.workspace_plan("alice", "defects")
    (approval,) = gov.approvals("defects")
    assert approval.revoked_by == "pat" and not approval.current


def test_a_new_version_needs_its_own_approval(gov: Governance) -> None:
    reg = gov.registry
    Governance(reg).create_project("defects", "Defects", actor="op")
    Governance(reg).add_member("defects", "alice", actor="op")
    Governance(reg).attach_dataset("defects", "press-line", actor="op")
    gov.approve_dataset_use("defects", "press-line", actor="pat")
    Governance(reg).add_dataset(
        DatasetInfo("press-line", "v2", "Acme", "/lib/press-line/v2", None, 3), actor="op"
    )
    Governance(reg).attach_dataset("defects", "press-line", "v2", actor="op")
    with pytest.raises(Forbidden, match="version v2"):
        reg.workspace_plan("alice", "defects")


def test_provider_sees_projects_that_use_their_data(gov: Governance) -> None:
    reg = gov.registry
    Governance(reg).create_project("defects", "Defects", actor="op")
    Governance(reg).attach_dataset("defects", "press-line", actor="op")
    gov.approve_dataset_use("defects", "press-line", actor="pat")
    gov.record_run(
        actor="alice",
        user="alice",
        project="defects",
        image="cleanroom/notebook:latest",
        image_digest="sha256:abc",
        datasets=("press-line@v1",),
        container_id="c1",
    )
    usage = gov.provider_usage("Acme")
    assert usage["projects"] == ["defects"]
    (d,) = usage["datasets"]
    assert d["mounted_by"] == ["defects"] and d["runs"][0]["user"] == "alice"
    with pytest.raises(NotFound):
        gov.provider_usage("Nobody Ltd")
    assert gov.runs("defects")[0].image_digest == "sha256:abc"


def test_end_dates_are_journaled_and_stop_spawns(gov: Governance) -> None:
    reg = gov.registry
    Governance(reg).create_project("defects", "Defects", actor="op")
    Governance(reg).add_member("defects", "alice", actor="op")
    yesterday = date.today() - timedelta(days=1)
    gov.set_member_end("defects", "alice", yesterday, actor="olga")
    with pytest.raises(Forbidden, match="not a member"):
        reg.workspace_plan("alice", "defects")
    gov.set_member_end("defects", "alice", None, actor="olga")
    gov.set_project_end("defects", yesterday, actor="olga")
    with pytest.raises(Forbidden, match="ended on"):
        reg.workspace_plan("alice", "defects")
    with pytest.raises(NotFound):
        gov.set_member_end("defects", "bob", None, actor="olga")
    entries = gov.journal_entries("project:defects")
    assert [e.action for e in entries] == [
        "project.create",
        "member.add",
        "member.end_date",
        "member.end_date",
        "project.end_date",
    ]
    assert entries[-1].actor == "olga"


def test_retired_images_are_not_offered(gov: Governance) -> None:
    reg = gov.registry
    Governance(reg).create_project("defects", "Defects", images=("notebook", "pytorch"), actor="op")
    Governance(reg).add_member("defects", "alice", actor="op")
    gov.set_image_state("pytorch", "retired", actor="olga", reason="CVE")
    assert reg.workspace_plan("alice", "defects").images == ("notebook",)
    gov.set_image_state("notebook", "retired", actor="olga")
    with pytest.raises(Forbidden, match="every image"):
        reg.workspace_plan("alice", "defects")
    with pytest.raises(Forbidden, match="retired"):
        gov.allow_project_image("defects", "notebook", actor="olga")
    gov.set_image_state("notebook", "allowed", actor="olga")
    assert reg.workspace_plan("alice", "defects").images == ("notebook",)


def test_ingress_needs_review_and_delivers_the_reviewed_bytes(
    gov: Governance, tmp_path: Path
) -> None:
    reg = gov.registry
    Governance(reg).create_project("defects", "Defects", actor="op")
    Governance(reg).add_member("defects", "alice", actor="op")
    Governance(reg).attach_dataset("defects", "press-line", actor="op")
    source = tmp_path / "lookup.csv"
    source.write_text("code,meaning\n1,ok\n")
    with pytest.raises(Forbidden, match="not a current member"):
        gov.request_ingress("defects", source, actor="bob", reason="table")
    req = gov.request_ingress("defects", source, actor="alice", reason="reference table")
    source.write_text("changed after the request\n")
    with pytest.raises(Forbidden, match="own ingress request"):
        gov.decide_ingress(req.id, actor="alice", approve=True)
    with pytest.raises(Forbidden, match="neither an operator nor a provider"):
        gov.decide_ingress(req.id, actor="quinn", approve=True)
    assert incoming.read_bytes("defects", "lookup.csv") is None
    done = gov.decide_ingress(req.id, actor="pat", approve=True)
    assert done.status == "approved" and done.decided_by == "pat"
    # Delivered into the encrypted incoming folder (cleanroom.workspace.incoming).
    assert incoming.read_bytes("defects", "lookup.csv") == b"code,meaning\n1,ok\n"
    with pytest.raises(Conflict):
        gov.decide_ingress(req.id, actor="olga", approve=False, reason="late")
    other = gov.request_ingress("defects", source, actor="alice", reason="again")
    with pytest.raises(InvalidInput, match="needs a reason"):
        gov.decide_ingress(other.id, actor="olga", approve=False)
    assert gov.decide_ingress(other.id, actor="olga", approve=False, reason="no").status == (
        "declined"
    )
    assert [e.action for e in gov.journal_entries("project:defects")][-4:] == [
        "ingress.request",
        "ingress.approve",
        "ingress.request",
        "ingress.decline",
    ]


def test_journal_verifies_and_finds_an_edit(gov: Governance) -> None:
    gov.set_image_state("pytorch", "retired", actor="olga", reason="old")
    assert gov.verify_journal().ok
    with gov.db.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE journal SET actor = 'mallory' WHERE seq = 1")
    result = gov.verify_journal()
    assert [(p.seq, p.kind) for p in result.problems] == [(1, ProblemKind.EDITED)]


def test_existing_links_are_grandfathered_on_upgrade(state: Path) -> None:
    reg = Registry()
    Governance(reg).add_user("alice", actor="op")
    Governance(reg).create_project("defects", "Defects", actor="op")
    Governance(reg).add_member("defects", "alice", actor="op")
    Governance(reg).add_dataset(
        DatasetInfo("press-line", "v1", "Acme", "/lib/press-line/v1", None, 3), actor="op"
    )
    Governance(reg).attach_dataset("defects", "press-line", actor="op")
    # A registry from before provider approvals: drop the table, as it did not exist.
    with reg.db.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE dataset_approvals")
    upgraded = Registry()
    assert [d.name for d in upgraded.workspace_plan("alice", "defects").datasets] == ["press-line"]
    (approval,) = Governance(upgraded).approvals("defects")
    assert approval.approved_by == "upgrade"
    Registry()  # idempotent: a second start adds nothing
    assert len(Governance(upgraded).approvals("defects")) == 1
