"""The operators', providers' and ingress verbs of the ``cleanroom`` command.

Kept apart from :mod:`cleanroom.cli.main` (which calls :func:`add_verbs`) so the governance
verbs read as one piece. Every decision is recorded as the authenticated person whose
credential the command carries (``cleanroom login``, ``--token`` or ``$CLEANROOM_TOKEN``;
see :mod:`cleanroom.cli.identity`), never a typed name, and is journaled.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from cleanroom.cli.identity import add_credential, applications_assess
from cleanroom.cli.output import emit, emit_rows
from cleanroom.errors import InvalidInput
from cleanroom.registry import Registry
from cleanroom.registry.applications import STATUS_TRANSITIONS
from cleanroom.registry.delegates import ProviderAccountInfo
from cleanroom.registry.governance import Governance

_out = emit


def actor_of(args: argparse.Namespace) -> str:
    """Who does a host administration verb (:func:`cleanroom.cli.identity.admin_actor`):
    the signed-in operator, else the host account; never a typed name."""
    from cleanroom.cli.identity import admin_actor

    return admin_actor(args, args.registry)


def decider_of(args: argparse.Namespace) -> str:
    """The authenticated person acting (from their credential)."""
    from cleanroom.cli.identity import actor

    return actor(args, args.registry)


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from exc


def _end_date(args: argparse.Namespace) -> date | None:
    if args.never == bool(args.on):
        raise InvalidInput("give either --on YYYY-MM-DD or --never")
    return None if args.never else args.on


# -- applications ----------------------------------------------------------------------
def applications_submit(args: argparse.Namespace, reg: Registry) -> None:
    app = Governance(reg).submit_application(
        title=args.title,
        purpose=args.purpose,
        datasets=args.dataset or [],
        members=args.member or [],
        starts_on=args.starts,
        ends_on=args.ends,
        assessment_reference=args.assessment or "",
        actor=decider_of(args),
    )
    _out(args, app, f"application {app.id} submitted ({app.title}); each member signs it next")


def applications_sign(args: argparse.Namespace, reg: Registry) -> None:
    a = Governance(reg).sign_pledge(args.id, actor=decider_of(args))
    _out(args, a, f"application {a.id}: {decider_of(args)} signed the pledge; {a.stage}")


def applications_list(args: argparse.Namespace, reg: Registry) -> None:
    apps = Governance(reg).list_applications(args.status)
    emit_rows(
        args,
        apps,
        lambda a: f"{a.id}\t{a.status}\t{a.ends_on}\t{a.applicant}\t{a.project or '-'}\t{a.title}",
    )


def applications_show(args: argparse.Namespace, reg: Registry) -> None:
    a = Governance(reg).get_application(args.id)
    decided = f"{a.status} by {a.decided_by} at {a.decided_at}" if a.decided_by else a.status
    _out(
        args,
        a,
        "\n".join(
            [
                f"application: {a.id} ({decided}; {a.stage})",
                f"title:       {a.title}",
                f"purpose:     {a.purpose}",
                f"members:     {', '.join(a.members)}",
                f"pledge:      {', '.join(a.pledge_signed_by) or '-'}",
                "datasets:    "
                + (", ".join(f"{u.dataset}@{u.version} ({u.status})" for u in a.uses) or "-"),
                f"assessment:  {a.assessment_reference or '-'}",
                f"period:      {a.starts_on or 'approval'} to {a.ends_on}",
                f"applicant:   {a.applicant} at {a.submitted_at}",
                f"reason:      {a.reason or '-'}",
                f"project:     {a.project or '-'}",
            ]
        ),
    )


def applications_approve(args: argparse.Namespace, reg: Registry) -> None:
    a = Governance(reg).approve_application(
        args.id,
        project=args.project,
        actor=decider_of(args),
        quota_tier=args.tier,
        images=tuple(args.image or ["notebook"]),
        reason=args.reason or "",
    )
    _out(args, a, f"application {a.id} approved: project {a.project} created")


def applications_decide_use(args: argparse.Namespace, reg: Registry) -> None:
    gov, by = Governance(reg), decider_of(args)
    if args.action == "approve-use":
        a = gov.approve_application_use(args.id, args.dataset, actor=by)
    else:
        a = gov.decline_application_use(args.id, args.dataset, args.reason or "", actor=by)
    use = next(u for u in a.uses if u.dataset == args.dataset)
    _out(args, a, f"application {a.id}: the use of {use.dataset}@{use.version} is {use.status}")


def applications_decline(args: argparse.Namespace, reg: Registry) -> None:
    a = Governance(reg).decline_application(args.id, actor=decider_of(args), reason=args.reason)
    _out(args, a, f"application {a.id} declined: {a.reason}")


def applications_withdraw(args: argparse.Namespace, reg: Registry) -> None:
    a = Governance(reg).withdraw_application(
        args.id, actor=decider_of(args), reason=args.reason or ""
    )
    _out(args, a, f"application {a.id} withdrawn")


# -- end dates -------------------------------------------------------------------------
def projects_end(args: argparse.Namespace, reg: Registry) -> None:
    Governance(reg).set_project_end(args.name, _end_date(args), actor=decider_of(args))
    p = reg.get_project(args.name)
    _out(args, p, f"project {p.name} ends {p.ends_on or 'never'}")


def projects_mode(args: argparse.Namespace, reg: Registry) -> None:
    Governance(reg).set_access_mode(args.name, args.mode, actor=decider_of(args))
    p = reg.get_project(args.name)
    _out(
        args,
        p,
        f"project {p.name} runs in {p.access_mode} mode (from each workspace's next start)",
    )


def add_mode_verb(projects: Any, verb: Callable[..., Any]) -> None:
    """``projects mode NAME standard|restricted``: how workspaces reach the researcher."""
    from cleanroom.registry.access import ACCESS_MODES

    p = verb(
        projects,
        "mode",
        "set a project's access mode (restricted: only pixels reach the researcher)",
        projects_mode,
    )
    p.add_argument("name")
    p.add_argument("mode", choices=ACCESS_MODES)
    add_credential(p)


def members_end(args: argparse.Namespace, reg: Registry) -> None:
    ends = _end_date(args)
    Governance(reg).set_member_end(args.project, args.user, ends, actor=decider_of(args))
    _out(
        args,
        {"project": args.project, "user": args.user, "ends_on": ends},
        f"{args.user}'s membership of {args.project} ends {ends or 'never'}",
    )


# -- providers -------------------------------------------------------------------------
def providers_add_user(args: argparse.Namespace, reg: Registry) -> None:
    Governance(reg).add_provider_account(args.provider, args.user, actor=decider_of(args))
    _out(
        args,
        {"provider": args.provider, "user": args.user},
        f"{args.user} acts for {args.provider}",
    )


def providers_remove_user(args: argparse.Namespace, reg: Registry) -> None:
    Governance(reg).remove_provider_account(args.provider, args.user, actor=decider_of(args))
    _out(
        args,
        {"provider": args.provider, "user": args.user},
        f"{args.user} no longer acts for {args.provider}",
    )


def providers_accounts(args: argparse.Namespace, reg: Registry) -> None:
    def line(a: ProviderAccountInfo) -> str:
        kind = f"delegate named by {a.delegated_by}" if a.delegate else "principal"
        return f"{a.provider}\t{a.user}\t{kind}\tsince {a.added_at:%Y-%m-%d}"

    emit_rows(args, Governance(reg).provider_accounts(args.provider), line)


def providers_usage(args: argparse.Namespace, reg: Registry) -> None:
    from cleanroom.cli.releases import releases_of_projects

    usage = Governance(reg).provider_usage(args.provider)
    usage["releases"] = releases_of_projects(usage["projects"])
    lines = [f"provider: {usage['provider']}"]
    for d in usage["datasets"]:
        current = [a.project for a in d["approvals"] if a.current]
        lines.append(
            f"  {d['name']}@{d['version']}: mounted by {', '.join(d['mounted_by']) or '-'}; "
            f"approved for {', '.join(current) or '-'}; {len(d['runs'])} workspace starts"
        )
    lines.append(f"projects: {', '.join(usage['projects']) or '-'}")
    lines.append(f"release requests: {len(usage['releases'])}")
    for r in usage["releases"]:
        lines.append(f"  {r['id']}\t{r['project']}\t{r['author']}\t{r['state']}")
    _out(args, usage, "\n".join(lines))


def datasets_approve(args: argparse.Namespace, reg: Registry) -> None:
    a = Governance(reg).approve_dataset_use(
        args.project, args.dataset, args.version, actor=decider_of(args)
    )
    _out(args, a, f"{a.project} may use {a.dataset}@{a.version} (approved by {a.approved_by})")


def datasets_roles(args: argparse.Namespace, reg: Registry) -> None:
    """Show the roles of a version's columns, or set some (``COLUMN=ROLE`` ...)."""
    from cleanroom.checks import CheckInputError, load_source_index
    from cleanroom.checks.roles import RolesError, parse_role_assignments
    from cleanroom.library.register import set_column_roles

    info = reg.get_dataset(args.dataset, args.version)
    if args.assignments:
        try:
            wanted = parse_role_assignments(args.assignments)
        except RolesError as exc:
            raise InvalidInput(str(exc)) from exc
        # A provider's decision: the signed-in person's, never a typed name.
        roles = set_column_roles(reg, info.name, info.version, wanted, actor=decider_of(args))
    else:
        if not info.index_location:
            raise InvalidInput(f"{info.name} {info.version} has no source index")
        try:
            roles = load_source_index(Path(info.index_location)).roles
        except CheckInputError as exc:
            raise InvalidInput(str(exc)) from exc
    _out(
        args,
        {"dataset": info.name, "version": info.version, "roles": roles},
        "\n".join(f"{c}\t{r}" for c, r in sorted(roles.items())),
    )


def datasets_revoke(args: argparse.Namespace, reg: Registry) -> None:
    rows = Governance(reg).revoke_dataset_use(
        args.project, args.dataset, args.version, actor=decider_of(args)
    )
    _out(
        args,
        rows,
        f"{args.project} may no longer use "
        + ", ".join(f"{a.dataset}@{a.version}" for a in rows)
        + "; running workspaces stop at the next enforcement round",
    )


def datasets_approvals(args: argparse.Namespace, reg: Registry) -> None:
    rows = Governance(reg).approvals(args.project)
    emit_rows(
        args,
        rows,
        lambda a: (
            f"{a.project}\t{a.dataset}@{a.version}\t"
            + (f"approved by {a.approved_by}" if a.current else f"revoked by {a.revoked_by}")
        ),
    )


# -- images, runs ----------------------------------------------------------------------
def images_allow(args: argparse.Namespace, reg: Registry) -> None:
    g = Governance(reg)
    if args.project:
        g.allow_project_image(args.project, args.name, actor=decider_of(args))
        _out(args, reg.get_project(args.project), f"{args.project} may run {args.name}")
    else:
        g.set_image_state(args.name, "allowed", actor=decider_of(args), reason=args.reason or "")
        _out(args, {"image": args.name, "status": "allowed"}, f"image {args.name} is allowed")


def images_retire(args: argparse.Namespace, reg: Registry) -> None:
    Governance(reg).set_image_state(
        args.name, "retired", actor=decider_of(args), reason=args.reason
    )
    _out(
        args,
        {"image": args.name, "status": "retired"},
        f"image {args.name} is retired: no new workspace runs it",
    )


def runs(args: argparse.Namespace, reg: Registry) -> None:
    found = Governance(reg).runs(args.project, args.user)
    emit_rows(
        args,
        found,
        lambda r: (
            f"{r.started_at:%Y-%m-%d %H:%M}\t{r.project}\t{r.user}\t{r.image}\t{r.image_digest}"
        ),
    )


# -- ingress ---------------------------------------------------------------------------
def ingress_request(args: argparse.Namespace, reg: Registry) -> None:
    r = Governance(reg).request_ingress(
        args.project, Path(args.file), actor=decider_of(args), reason=args.reason
    )
    _out(args, r, f"ingress request {r.id}: {r.filename} waits for review")


def ingress_list(args: argparse.Namespace, reg: Registry) -> None:
    rows = Governance(reg).ingress_requests(args.project, args.status)
    emit_rows(
        args,
        rows,
        lambda r: f"{r.id}\t{r.status}\t{r.project}\t{r.requester}\t{r.filename}\t{r.size} bytes",
    )


def ingress_approve(args: argparse.Namespace, reg: Registry) -> None:
    r = Governance(reg).decide_ingress(
        args.id, actor=decider_of(args), approve=True, reason=args.reason or ""
    )
    _out(args, r, f"{r.filename} is now in {r.project}'s /project/incoming")


def ingress_decline(args: argparse.Namespace, reg: Registry) -> None:
    r = Governance(reg).decide_ingress(
        args.id, actor=decider_of(args), approve=False, reason=args.reason
    )
    _out(args, r, f"ingress request {r.id} declined")


# -- running workspaces, journal -------------------------------------------------------
def kube_ahead(args: argparse.Namespace, reg: Registry) -> None:
    import asyncio

    from cleanroom.kubernetes import ahead
    from cleanroom.settings import Settings

    instance = Settings.from_env().instance
    maker = ahead.Ahead(reg, instance, ahead.storage_from_env(instance))
    if args.every:
        asyncio.run(ahead.run_forever(maker, args.every))
        return
    made = asyncio.run(ahead.run_once(maker))
    _out(args, {"claims_made": made}, f"made {made} claims")


def enforce(args: argparse.Namespace, reg: Registry) -> None:
    from cleanroom.settings import Settings
    from cleanroom.workspace.enforce import enforce_forever, enforce_once

    instance = Settings.from_env().instance
    if args.every:
        enforce_forever(reg, instance, args.every)
    stopped = enforce_once(reg, instance)
    _out(
        args,
        stopped,
        "\n".join(f"stopped {s.user}/{s.project}: {s.reason}" for s in stopped)
        or "nothing to stop",
    )


def status(args: argparse.Namespace, reg: Registry) -> None:
    from cleanroom.lifecycle.at_rest_status import clear_at_rest
    from cleanroom.settings import Settings
    from cleanroom.workspace.status import describe, running_workspaces

    rows = running_workspaces(Settings.from_env().instance)
    _out(args, rows, describe(rows))
    left = clear_at_rest(reg)
    if left:  # on stderr: the JSON on stdout keeps its shape
        kinds = sorted({i.kind for i in left})
        print(
            f"cleanroom: warning: {len(left)} things lie in clear at rest ({', '.join(kinds)}): "
            "see cleanroom datasets encrypt --check",
            file=sys.stderr,
        )


def journal_list(args: argparse.Namespace, reg: Registry) -> None:
    entries = Governance(reg).journal_entries(args.subject)
    emit_rows(
        args,
        entries,
        lambda e: f"{e.seq}\t{e.time}\t{e.actor}\t{e.action}\t{e.subject}\t{e.detail}",
    )


def journal_verify(args: argparse.Namespace, reg: Registry) -> None:
    result = Governance(reg).verify_journal()
    _out(
        args,
        {"ok": result.ok, "count": result.count, "problems": result.problems},
        f"journal verifies: {result.count} entries"
        if result.ok
        else "journal BROKEN:\n" + "\n".join(f"  - {p}" for p in result.problems),
    )
    if not result.ok:
        raise SystemExit(1)


# -- the parser ------------------------------------------------------------------------
def add_verbs(verbs: Any, verb: Callable[..., Any]) -> None:
    """Add the governance verbs to the ``cleanroom`` parser (``verb`` makes one)."""

    def by(p: Any, required: bool = False, what: str = "") -> None:
        add_credential(p)

    apps = verb(verbs, "applications", "project applications and their decisions")
    apps = apps.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = verb(apps, "submit", "apply for a project", applications_submit)
    p.add_argument("--title", required=True)
    p.add_argument("--purpose", required=True, help="what the project will find out, and why")
    p.add_argument("--dataset", action="append", help="dataset wanted (repeat)")
    p.add_argument("--member", action="append", required=True, help="named analyst (repeat)")
    p.add_argument("--assessment", help="reference of the data processing assessment")
    p.add_argument("--starts", type=_date, help="start of the period, YYYY-MM-DD")
    p.add_argument("--ends", type=_date, required=True, help="end of the period, YYYY-MM-DD")
    by(p, what="the applicant, signed in")
    p = verb(apps, "sign", "sign the pledge, as a member named on it", applications_sign)
    p.add_argument("id", type=int)
    by(p, what="the member, signed in")
    for action, what in (("approve-use", "approve"), ("decline-use", "decline")):
        p = verb(
            apps, action, f"{what} an application's use of a dataset (its provider)",
            applications_decide_use,
        )  # fmt: skip
        p.add_argument("id", type=int)
        p.add_argument("dataset", help="the wanted dataset, by name")
        if action == "decline-use":
            p.add_argument("--reason", required=True, help="why the project may not use it")
        by(p, what="the provider's user deciding")
    p = verb(apps, "list", "list applications", applications_list)
    p.add_argument("--status", choices=list(STATUS_TRANSITIONS))
    p = verb(apps, "show", "show one application", applications_show)
    p.add_argument("id", type=int)
    p = verb(apps, "approve", "approve: create the project and its members", applications_approve)
    p.add_argument("id", type=int)
    p.add_argument("--project", required=True, help="name of the project to create")
    p.add_argument("--tier", default="standard", help="quota tier from policies/quotas.yaml")
    p.add_argument("--image", action="append", help="allowed image (repeat; default notebook)")
    p.add_argument("--reason", help="note recorded with the decision")
    by(p, what="the operator deciding")
    p = verb(
        apps,
        "assess",
        "record an application's data processing assessment (needed before approval)",
        applications_assess,
    )
    p.add_argument("id", type=int)
    p.add_argument(
        "--reference", required=True, help="the assessment's reference, e.g. DPIA-2026-014"
    )
    p.add_argument(
        "--outcome", required=True, help="e.g. approved, approved-with-conditions, rejected"
    )
    by(p)
    p = verb(apps, "decline", "decline, with a reason", applications_decline)
    p.add_argument("id", type=int)
    p.add_argument("--reason", required=True)
    by(p, what="the operator deciding")
    p = verb(apps, "withdraw", "withdraw your own undecided application", applications_withdraw)
    p.add_argument("id", type=int)
    p.add_argument("--reason", help="why (the members and the operators read it)")
    by(p, what="the applicant, signed in")

    providers = verb(verbs, "providers", "data providers: accounts and how their data is used")
    providers = providers.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = verb(
        providers, "add-user", "let a user (role provider) act for a provider", providers_add_user
    )
    p.add_argument("provider", help="the provider as named on its datasets")
    p.add_argument("user")
    by(p)
    p = verb(
        providers, "remove-user", "a user no longer acts for a provider (principal or delegate)",
        providers_remove_user,
    )  # fmt: skip
    p.add_argument("provider")
    p.add_argument("user")
    by(p)
    p = verb(
        providers, "accounts", "who acts for providers: principals and their delegates",
        providers_accounts,
    )  # fmt: skip
    p.add_argument("provider", nargs="?", help="one provider (default: every one)")
    p = verb(
        providers,
        "usage",
        "projects using a provider's datasets, their workspaces and release requests",
        providers_usage,
    )
    p.add_argument("provider")

    p = verb(verbs, "runs", "workspaces that ran, with their image digests", runs)
    p.add_argument("--project")
    p.add_argument("--user")

    ingress = verb(verbs, "ingress", "bring a file into a project, after review")
    ingress = ingress.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = verb(ingress, "request", "ask to bring a file into a project", ingress_request)
    p.add_argument("project")
    p.add_argument("file")
    p.add_argument("--reason", required=True, help="what the file is and why it is needed")
    by(p, required=True, what="the member asking")
    p = verb(ingress, "list", "list ingress requests", ingress_list)
    p.add_argument("--project")
    p.add_argument("--status", choices=["pending", "approved", "declined"])
    p = verb(ingress, "approve", "let the file into /project/incoming", ingress_approve)
    p.add_argument("id", type=int)
    p.add_argument("--reason")
    by(p, required=True, what="an operator, or a provider of the project's data")
    p = verb(ingress, "decline", "refuse the file, with a reason", ingress_decline)
    p.add_argument("id", type=int)
    p.add_argument("--reason", required=True)
    by(p, required=True, what="an operator, or a provider of the project's data")

    p = verb(verbs, "enforce", "stop workspaces past their project's or membership's end", enforce)
    p.add_argument(
        "--every", type=float, metavar="SECONDS", help="repeat forever (the hub's service does)"
    )
    p = verb(
        verbs,
        "kube-ahead",
        "Kubernetes: make members' folder claims before their first start",
        kube_ahead,
    )
    p.add_argument(
        "--every", type=float, metavar="SECONDS", help="repeat forever (the hub's service does)"
    )
    verb(verbs, "status", "running workspaces: project, user, image, CPU, memory", status)

    journal = verb(verbs, "journal", "the operators' and providers' hash-chained journal")
    journal = journal.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = verb(journal, "list", "list journal entries", journal_list)
    p.add_argument("--subject", help="only entries about this, e.g. project:press-quality")
    verb(journal, "verify", "check every entry's hash and link", journal_verify)


def add_dataset_verbs(datasets: Any, verb: Callable[..., Any]) -> None:
    """``datasets approve|revoke|approvals``: providers' decisions on dataset use."""
    for name, help_text, handler in [
        ("approve", "as the dataset's provider, let a project use it", datasets_approve),
        ("revoke", "as the dataset's provider, withdraw a project's use", datasets_revoke),
    ]:
        p = verb(datasets, name, help_text, handler)
        p.add_argument("project")
        p.add_argument("dataset")
        p.add_argument("--version", help="default: the version the project mounts")
        add_credential(p)
    p = verb(datasets, "approvals", "list providers' approvals", datasets_approvals)
    p.add_argument("--project")
    p = verb(
        datasets,
        "roles",
        "show, or as the provider confirm, the roles of a dataset's columns",
        datasets_roles,
    )
    p.add_argument("dataset")
    p.add_argument("assignments", nargs="*", metavar="COLUMN=ROLE")
    p.add_argument("--version", help="default: the newest version")
    add_credential(p)  # setting roles is the signed-in provider's decision


def add_end_verbs(projects: Any, members: Any, verb: Callable[..., Any]) -> None:
    """``projects end`` and ``members end``: move end dates (journaled)."""
    p = verb(projects, "end", "set a project's end date", projects_end)
    p.add_argument("name")
    p.add_argument("--on", type=_date, help="YYYY-MM-DD")
    p.add_argument("--never", action="store_true", help="no end date")
    add_credential(p)
    p = verb(members, "end", "set a membership's end date", members_end)
    p.add_argument("project")
    p.add_argument("user")
    p.add_argument("--on", type=_date, help="YYYY-MM-DD")
    p.add_argument("--never", action="store_true", help="no end date")
    add_credential(p)


IMAGE_VERBS = ("allow", "retire")


def images_main(rest: Sequence[str]) -> int | None:
    """``cleanroom images allow|retire``; None for the image module's own verbs."""
    if not rest or rest[0] not in IMAGE_VERBS:
        return None
    parser = argparse.ArgumentParser(prog="cleanroom images")
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("allow", help="allow an image (for the deployment, or one project)")
    p.add_argument("name")
    p.add_argument("--project", help="let this project run it")
    p.add_argument("--reason")
    add_credential(p)
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(handler=images_allow)
    p = sub.add_parser("retire", help="retire an image: no new workspace runs it")
    p.add_argument("name")
    p.add_argument("--reason", required=True)
    add_credential(p)
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(handler=images_retire)
    args = parser.parse_args(list(rest))
    args.registry = Registry()
    args.handler(args, args.registry)
    return 0
