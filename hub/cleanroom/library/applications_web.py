"""The applications' pages: a researcher drafts and submits an application, each named
member signs the pledge, the providers of the wanted data decide each use (on their own
page, :mod:`cleanroom.library.web`), an operator records the assessment and decides.

Every act is the signed-in person's, through the registry's one writer
(:class:`~cleanroom.registry.governance.Governance`), which checks their role and standing
and journals it; a refusal is a :class:`~cleanroom.errors.CleanroomError`, answered by
:meth:`~cleanroom.library.web.LibraryHandler.write_error` with its message, nothing changed.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any
from urllib.parse import urlencode

from tornado import web

from cleanroom.errors import InvalidInput, NotFound
from cleanroom.library import catalogue
from cleanroom.library.classification import Controls, combine, load_policy
from cleanroom.library.web import LibraryHandler, page_number
from cleanroom.registry import Registry
from cleanroom.registry.applications import (
    PENDING,
    PLEDGE,
    ApplicationInfo,
    check_may_see,
)
from cleanroom.registry.governance import Governance
from cleanroom.registry.people import shared_people

OUTCOMES = ("approved", "approved-with-conditions", "rejected")
"""Outcomes the operator's assessment form offers (the policy says which approve)."""


def _date(value: str, what: str, *, required: bool) -> date | None:
    value = value.strip()
    if not value and not required:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{what} must be a date, YYYY-MM-DD, not {value!r}") from None


def application_fields(handler: web.RequestHandler) -> dict[str, Any]:
    """The applicant's form as the domain's keyword arguments (dates parsed, members
    split on commas or spaces); everything else is the domain's to check."""
    arg = handler.get_body_argument
    return {
        "title": arg("title", ""),
        "purpose": arg("purpose", ""),
        "datasets": handler.get_body_arguments("dataset"),
        "members": [m for m in re.split(r"[\s,]+", arg("members", "")) if m],
        "starts_on": _date(arg("starts_on", ""), "the period's start", required=False),
        "ends_on": _date(arg("ends_on", ""), "the period's end", required=True),
        "assessment_reference": arg("assessment_reference", ""),
    }


OFFERED = 100
"""Usable versions the application form lists (search for the others)."""


def offered_versions(registry: Registry, q: str, chosen: set[str]) -> dict[str, Any]:
    """What the form's "Datasets wanted" lists (``versions``): the versions already
    chosen, then up to :data:`OFFERED` usable versions matching ``q`` (``listed``), and
    how many match in all (``offered_total``)."""
    found, total = catalogue.find_cards(registry, q, limit=OFFERED, usable_only=True)
    shown = {f"{c.name}@{c.version}" for c in found}
    extra = []
    for item in sorted(chosen - shown):
        name, _, version = item.partition("@")
        try:
            extra.append(catalogue.get_card(registry, name, version or None))
        except (NotFound, InvalidInput):
            continue  # the form offers what exists; the domain refuses the rest on submit
    return {"versions": extra + found, "listed": len(found), "offered_total": total}


def _search(handler: web.RequestHandler) -> tuple[str, set[str]]:
    q = handler.get_query_argument("q", "").strip()[:200]
    return q, set(handler.get_query_arguments("dataset")[:50])


def _mine(registry: Registry, user: str) -> list[ApplicationInfo]:
    return Governance(registry).list_applications(person=user)


class ApplicationsHandler(LibraryHandler):
    """The signed-in person's applications: those they made and those naming them."""

    @web.authenticated
    async def get(self) -> None:
        """Their applications with the stage of each."""
        apps = await self.run(_mine, self.registry, self.me())
        self.page("applications.html", applications=apps)


class NewApplicationHandler(LibraryHandler):
    """The form of a new application, and its saving (as a draft) or submission."""

    @web.authenticated
    async def get(self) -> None:
        """An empty form (``?dataset=NAME@VERSION`` chosen already, ``?q=`` words to find
        the versions it lists); the datasets offered are the catalogue's usable versions."""
        q, chosen = _search(self)
        offered = await self.run(offered_versions, self.registry, q, chosen)
        self.page("application_form.html", application=None, chosen=chosen, q=q, **offered)

    @web.authenticated
    async def post(self) -> None:
        """``action=draft`` saves it for later; ``action=submit`` submits it now."""
        me, fields = self.me(), application_fields(self)
        governance = Governance(self.registry)
        if self.get_body_argument("action", "") == "submit":
            app = await self.run(lambda: governance.submit_application(**fields, actor=me))
            notice = f"application {app.id} submitted: each member signs the pledge next"
        else:
            app = await self.run(lambda: governance.save_draft(**fields, actor=me))
            notice = f"application {app.id} saved as a draft"
        self.redirect(f"{self.prefix}applications/{app.id}?" + urlencode({"notice": notice}))


def application_view(
    registry: Registry, application_id: int, user: str, roles: frozenset[str], q: str = ""
) -> dict[str, Any]:
    """What the application's page shows ``user`` (Forbidden when it is not theirs to
    read): the application, its assessment, and what the user may do on it now."""
    governance = Governance(registry)
    app = governance.get_application(application_id)
    providers = governance.providers_of(user)
    check_may_see(app, user, roles, providers)
    people = shared_people(registry)
    operator = "operator" in roles and user != app.applicant and user not in app.members
    controls, tier = _controls(registry, app)
    chosen = {f"{u.dataset}@{u.version}" for u in app.uses}
    offered = (
        offered_versions(registry, q, chosen)
        if app.status == "draft"
        else {"versions": [], "listed": 0, "offered_total": 0}
    )
    return {
        "controls": controls,
        "default_tier": tier,
        "application": app,
        "assessment": people.assessment(app.id),
        "may_edit": app.status == "draft" and user == app.applicant,
        "may_sign": app.status == PENDING and user in app.unsigned,
        "may_decide": operator and app.status == PENDING,
        "may_withdraw": user == app.applicant and app.status in ("draft", PENDING),
        **offered,
        "q": q,
        "chosen": chosen,
        "pledge": PLEDGE,
        "outcomes": OUTCOMES,
        "tiers": _tiers(),
    }


def _controls(registry: Registry, app: ApplicationInfo) -> tuple[Controls | None, str]:
    """The controls the wanted versions' classifications ask of the project (None when it
    wants none), and the quota tier the approval form proposes: ``standard``, or the
    data's lowest tier when that ranks higher."""
    policy = load_policy()
    versions = []
    for use in app.uses:
        try:
            card = catalogue.get_card(registry, use.dataset, use.version)
        except NotFound:  # deleted since: the approval says so
            continue
        versions.append((use.dataset, use.version, card.classification))
    if not versions:
        return None, "standard"
    controls = combine(policy, versions)
    low, standard = policy.tier_rank(controls.min_tier or ""), policy.tier_rank("standard")
    higher = low is not None and standard is not None and low > standard
    return controls, str(controls.min_tier) if higher else "standard"


def _tiers() -> list[str]:
    from cleanroom.workspace.quotas import load_tiers

    return sorted(load_tiers())


def _application_id(value: str) -> int:
    if not re.fullmatch(r"[0-9]{1,12}", value):
        raise InvalidInput(f"{value!r} is not an application number")
    return int(value)


class ApplicationHandler(LibraryHandler):
    """One application, for its applicant, its members, operators and the providers of
    the data it wants."""

    @web.authenticated
    async def get(self, number: str) -> None:
        """The application, its stage and the forms the signed-in person may use."""
        me = self.me()
        q, _ = _search(self)
        view = await self.run(
            application_view, self.registry, _application_id(number), me, self.roles(me), q
        )
        self.page("application.html", **view)


class ApplicationActionHandler(LibraryHandler):
    """An act on one application from its page: the applicant saves, submits or withdraws,
    a member signs, an operator records the assessment, approves or declines."""

    @web.authenticated
    async def post(self, number: str, action: str) -> None:
        """Act as the signed-in person; the domain checks who may."""
        me, app_id = self.me(), _application_id(number)
        governance = Governance(self.registry)
        arg = self.get_body_argument
        if action == "save":
            fields = application_fields(self)
            await self.run(lambda: governance.save_draft(**fields, application=app_id, actor=me))
            notice = f"application {app_id} saved"
        elif action == "submit":
            await self.run(lambda: governance.submit_draft(app_id, actor=me))
            notice = f"application {app_id} submitted: each member signs the pledge next"
        elif action == "sign":
            await self.run(lambda: governance.sign_pledge(app_id, actor=me))
            notice = f"you signed the pledge for application {app_id}"
        elif action == "assess":
            people = shared_people(self.registry)
            reference, outcome = arg("reference", ""), arg("outcome", "")
            await self.run(
                lambda: people.record_assessment(
                    app_id, reference=reference, outcome=outcome, actor=me
                )
            )
            notice = f"assessment {reference.strip()} recorded: {outcome}"
        elif action == "approve":
            project, tier, reason = arg("project", ""), arg("tier", "standard"), arg("reason", "")
            await self.run(
                lambda: governance.approve_application(
                    app_id, project=project, quota_tier=tier, reason=reason, actor=me
                )
            )
            notice = f"application {app_id} approved: project {project} exists"
        elif action == "withdraw":
            reason = arg("reason", "")
            await self.run(lambda: governance.withdraw_application(app_id, reason=reason, actor=me))
            notice = f"application {app_id} withdrawn"
        else:
            reason = arg("reason", "")
            await self.run(lambda: governance.decline_application(app_id, reason=reason, actor=me))
            notice = f"application {app_id} declined"
        self.redirect(f"{self.prefix}applications/{app_id}?" + urlencode({"notice": notice}))


class ProviderUseHandler(LibraryHandler):
    """A provider's decision on an application's use of one of their datasets."""

    @web.authenticated
    async def post(self, action: str) -> None:
        """Approve or decline (with a reason) as the signed-in person."""
        me = self.me()
        app_id = _application_id(self.get_body_argument("application", ""))
        dataset = self.get_body_argument("dataset", "")
        governance = Governance(self.registry)
        if action == "approve":
            await self.run(lambda: governance.approve_application_use(app_id, dataset, actor=me))
            notice = f"application {app_id} may use {dataset}"
        else:
            reason = self.get_body_argument("reason", "")
            await self.run(
                lambda: governance.decline_application_use(app_id, dataset, reason, actor=me)
            )
            notice = f"application {app_id} may not use {dataset}"
        self.redirect(f"{self.prefix}provider?" + urlencode({"notice": notice}))


OPERATOR_PAGE = 100
"""Applications a page of the operators' lists shows."""
DECIDED = ("approved", "declined", "withdrawn")


def operator_view(registry: Registry, page: int = 1, decided_page: int = 1) -> dict[str, Any]:
    """The operators' lists, a page of each: submitted applications, those waiting for an
    operator first, then the decided (and withdrawn) ones, newest first."""
    governance = Governance(registry)
    queue = governance.list_application_queue()
    start = (page - 1) * OPERATOR_PAGE
    ids = queue[start : start + OPERATOR_PAGE]
    by_id = {a.id: a for a in governance.list_applications(ids=ids)}
    decided_total = governance.get_application_count(DECIDED)
    decided_start = (decided_page - 1) * OPERATOR_PAGE
    decided = governance.list_applications(
        DECIDED, newest_first=True, offset=decided_start, limit=OPERATOR_PAGE
    )
    return {
        "pending": [by_id[i] for i in ids if i in by_id],
        "pending_total": len(queue),
        "page": page,
        "more_pending": start + OPERATOR_PAGE < len(queue),
        "decided": decided,
        "decided_total": decided_total,
        "decided_page": decided_page,
        "more_decided": decided_start + OPERATOR_PAGE < decided_total,
    }


class OperatorHandler(LibraryHandler):
    """Applications to decide, for operators."""

    @web.authenticated
    async def get(self) -> None:
        """The list; refused to anyone without the operator role."""
        me = self.me()
        if "operator" not in self.roles(me):
            raise web.HTTPError(403, f"{me!r} does not hold the operator role")
        page, decided = page_number(self), page_number(self, "decided")
        self.page("operator.html", **await self.run(operator_view, self.registry, page, decided))


def routes(prefix: str) -> list[tuple[str, type[web.RequestHandler]]]:
    """The applications' pages under ``prefix``."""
    return [
        (prefix + "applications", ApplicationsHandler),
        (prefix + "applications/new", NewApplicationHandler),
        (prefix + r"applications/([0-9]+)", ApplicationHandler),
        (
            prefix + r"applications/([0-9]+)/(save|submit|sign|assess|approve|decline|withdraw)",
            ApplicationActionHandler,
        ),
        (prefix + "provider/applications/(approve|decline)", ProviderUseHandler),
        (prefix + "operator", OperatorHandler),
    ]
