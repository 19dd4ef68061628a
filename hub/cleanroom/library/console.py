"""The operators' console at ``/services/library/operator/``: applications to decide
(:mod:`cleanroom.library.applications_web`), projects and their members, people's
standing, images, running workspaces, and a link to the airlock's egress pages.

Every page is for operators only (anyone else gets a 403 page and nothing changes).
Every act is the signed-in operator's, through the same domain code as the command line
(:class:`~cleanroom.registry.governance.Governance`, :class:`~cleanroom.registry.people.People`,
:mod:`cleanroom.workspace.stopping`), with ``actor`` the signed-in person, journaled by
the domain. Before each act the domain's rule for decisions is checked
(:meth:`~cleanroom.registry.people.People.check_may_act`: the operator role, a second
factor, verification, training, an active account), as the command line does for a
signed-in operator. A form re-sent after its act (the same status, the same date) is a
conflict that changes nothing. Forms post, then redirect to the page with a notice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TypeVar
from urllib.parse import quote, urlencode

from tornado import web

from cleanroom.errors import Conflict, InvalidInput, NotFound
from cleanroom.library import console_views as views
from cleanroom.library.web import LibraryHandler
from cleanroom.registry.backbone import PROJECT_STATUSES
from cleanroom.registry.events import WorkspaceStopped
from cleanroom.registry.governance import Governance
from cleanroom.registry.names import ROLES
from cleanroom.registry.people import People, shared_people

T = TypeVar("T")


def form_date(value: str, what: str) -> date | None:
    """A date from a form (empty: none, e.g. "no end date"), or a clear refusal."""
    value = value.strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{what} must be a date, YYYY-MM-DD, not {value!r}") from None


def unchanged(before: object, after: object, message: str) -> None:
    """Refuse an act that would change nothing (a form sent twice): ``message`` says so."""
    if before == after:
        raise Conflict(message + "; nothing changed")


class ConsoleHandler(LibraryHandler):
    """What every console page shares: operators only, the console's navigation."""

    def operator(self) -> str:
        """The signed-in person, refused (403) unless they hold the operator role."""
        me = self.me()
        if "operator" not in self.roles(me):
            raise web.HTTPError(403, f"{me!r} does not hold the operator role")
        return me

    @property
    def governance(self) -> Governance:
        """The registry's one writer."""
        return Governance(self.registry)

    @property
    def people(self) -> People:
        """People's standing and records."""
        return shared_people(self.registry)

    async def act(self, what: str, fn: Callable[[str], T]) -> T:
        """Run ``fn(me)`` off the loop once the signed-in operator may ``what`` (the
        domain's rule for decisions; a refusal changes nothing)."""
        me = self.operator()

        def checked() -> T:
            self.people.check_may_act(me, "operator", what=what)
            return fn(me)

        return await self.run(checked)

    def done(self, path: str, notice: str) -> None:
        """Redirect after an act to ``path`` (under the prefix) with its notice."""
        self.redirect(f"{self.prefix}{path}?" + urlencode({"notice": notice}))

    def paging(self) -> tuple[str, int]:
        """``?q=`` (words to look for) and ``?page=`` of a list."""
        q = self.get_query_argument("q", "").strip()[:100]
        return q, views.page_number(self.get_query_argument("page", "1"))


def _next_url(handler: ConsoleHandler, path: str, q: str, page: views.Page) -> str:
    if not page.more:
        return ""
    return f"{handler.prefix}{path}?" + urlencode({"q": q, "page": page.number + 1})


# -- projects ---------------------------------------------------------------------------
class ProjectsHandler(ConsoleHandler):
    """Every project, paged: status, end date, tier, mode, images, datasets, members."""

    @web.authenticated
    async def get(self) -> None:
        """The list (``?q=`` in the name or title, ``?page=``)."""
        self.operator()
        q, number = self.paging()
        found = await self.run(views.projects_page, self.registry, q, number)
        self.page(
            "console_projects.html", page=found, q=q,
            next_url=_next_url(self, "operator/projects", q, found),
        )  # fmt: skip


class ProjectHandler(ConsoleHandler):
    """One project with the forms that act on it."""

    @web.authenticated
    async def get(self, name: str) -> None:
        """The project's page."""
        from cleanroom.images.build import WORKSPACE_IMAGES
        from cleanroom.registry.access import ACCESS_MODES

        self.operator()
        project = await self.run(views.project_state, self.registry, name)
        if project is None:
            raise NotFound(f"there is no project {name!r}")
        self.page(
            "console_project.html", project=project,
            statuses=PROJECT_STATUSES, modes=ACCESS_MODES,
            images=[i for i in WORKSPACE_IMAGES if i not in project.images],
        )  # fmt: skip


class ProjectActionHandler(ConsoleHandler):
    """An act on one project: status, end date, access mode, members, images."""

    @web.authenticated
    async def post(self, name: str, action: str) -> None:
        """Act as the signed-in operator; the domain refuses what may not be."""
        self.operator()
        arg = self.get_body_argument
        gov = self.governance
        project = await self.run(views.project_state, self.registry, name)
        if project is None:  # the domain would say the same; said before any check
            raise NotFound(f"there is no project {name!r}")
        if action == "status":
            status = arg("status", "")
            unchanged(project.status, status, f"project {name} is {status} already")
            await self.act(
                "change a project's status",
                lambda me: gov.set_project_status(name, status, actor=me),
            )
            notice = f"project {name} is {status}"
        elif action == "end":
            ends = form_date(arg("ends_on", ""), "the project's end")
            unchanged(project.ends_on, ends, f"project {name} ends {ends or 'never'} already")
            await self.act("change end dates", lambda me: gov.set_project_end(name, ends, actor=me))
            notice = f"project {name} ends {ends or 'never'}"
        elif action == "mode":
            mode = arg("mode", "")
            unchanged(project.access_mode, mode, f"project {name} runs in {mode} mode already")
            await self.act(
                "change access modes", lambda me: gov.set_access_mode(name, mode, actor=me)
            )
            notice = f"project {name} runs in {mode} mode from each workspace's next start"
        elif action == "add-member":
            user = arg("user", "").strip()
            ends = form_date(arg("ends_on", ""), "the membership's end")
            await self.act(
                "add members", lambda me: gov.add_member(name, user, actor=me, ends_on=ends)
            )
            notice = f"{user} is now a member of {name}"
        elif action == "remove-member":
            user = arg("user", "")
            await self.act("remove members", lambda me: gov.remove_member(name, user, actor=me))
            # As `cleanroom members remove`: their running workspace stops too.
            stopped = await self.run(_stop, user, name)
            notice = f"{user} removed from {name}" + (
                "; their running workspace was stopped" if stopped else ""
            )
        elif action == "member-end":
            user = arg("user", "")
            ends = form_date(arg("ends_on", ""), "the membership's end")
            member, before = await self.run(views.member_end, self.registry, name, user)
            if member:
                unchanged(before, ends, f"{user}'s membership of {name} ends {ends or 'never'}")
            await self.act(
                "change end dates", lambda me: gov.set_member_end(name, user, ends, actor=me)
            )
            notice = f"{user}'s membership of {name} ends {ends or 'never'}"
        else:
            image = arg("image", "")
            await self.act(
                "allow images", lambda me: gov.allow_project_image(name, image, actor=me)
            )
            notice = f"{name} may run {image}"
        self.done(f"operator/projects/{quote(name)}", notice)


def _stop(user: str, project: str) -> bool:
    from cleanroom.workspace.stopping import stop_workspace

    return stop_workspace(user, project)


# -- people -----------------------------------------------------------------------------
class PeopleHandler(ConsoleHandler):
    """Every person, paged: roles, verification, training, second factor, account."""

    @web.authenticated
    async def get(self) -> None:
        """The list (``?q=`` in the name, ``?page=``)."""
        self.operator()
        q, number = self.paging()
        found = await self.run(views.people_page, self.registry, q, number)
        self.page(
            "console_people.html", page=found, q=q,
            next_url=_next_url(self, "operator/users", q, found),
        )  # fmt: skip


class PersonHandler(ConsoleHandler):
    """One person with the forms that act on their account and records."""

    @web.authenticated
    async def get(self, name: str) -> None:
        """The person's page."""
        self.operator()
        row = await self.run(views.person_row, self.registry, name)
        if row is None:
            raise NotFound(f"there is no user {name!r}")
        self.page(
            "console_person.html", person=row, all_roles=sorted(ROLES),
            methods=self.people.policy.verification_methods, today=date.today().isoformat(),
        )  # fmt: skip


class PersonActionHandler(ConsoleHandler):
    """An act on one person: roles, account state, verification, training, lock, second
    factor."""

    @web.authenticated
    async def post(self, name: str, action: str) -> None:
        """Act as the signed-in operator; the domain refuses what may not be."""
        self.operator()
        arg = self.get_body_argument
        gov, people = self.governance, self.people
        try:
            roles = await self.run(lambda: self.registry.get_user(name).roles)
        except NotFound:
            raise NotFound(f"there is no user {name!r}") from None
        if action == "roles":
            wanted = self.get_body_arguments("role")
            unchanged(set(roles), set(wanted), f"{name} has exactly these roles already")
            await self.act(
                "change people's roles", lambda me: gov.set_roles(name, wanted, actor=me)
            )
            notice = f"{name} now has the roles {', '.join(sorted(wanted)) or 'none'}"
        elif action == "disable":
            reason = arg("reason", "")
            await self.act(
                "disable or enable accounts",
                lambda me: people.set_disabled(name, True, actor=me, reason=reason),
            )
            notice = f"{name} is disabled"
        elif action == "enable":
            await self.act(
                "disable or enable accounts", lambda me: people.set_disabled(name, False, actor=me)
            )
            notice = f"{name} is enabled"
        elif action == "verify":
            method, reference = arg("method", ""), arg("reference", "").strip()
            await self.act(
                "verify identities",
                lambda me: people.record_verification(name, method, actor=me, reference=reference),
            )
            notice = f"{name}'s identity is recorded as verified ({method})"
        elif action == "train":
            course = arg("course", "")
            passed = form_date(arg("passed_on", ""), "the day the course was passed")
            expires = form_date(arg("expires_on", ""), "the training's expiry")
            passed = passed or date.today()
            await self.act(
                "record training",
                lambda me: people.record_training(
                    name, course, passed_on=passed, expires_on=expires, actor=me
                ),
            )
            notice = f"{name} passed {course.strip()}"
        elif action == "unlock":
            await self.act("unlock accounts", lambda me: people.unlock(name, actor=me))
            notice = f"{name} may sign in again"
        elif action == "expiry":
            on = form_date(arg("expires_on", ""), "the account's expiry")
            before = await self.run(views.account_expiry, self.registry, name)
            unchanged(before, on, f"{name}'s account expires {on or 'never'} already")
            await self.act("set account expiry", lambda me: people.set_expiry(name, on, actor=me))
            notice = f"{name}'s account expires {on or 'never'}"
        else:
            reason = arg("reason", "")
            await self.act(
                "reset second factors", lambda me: people.reset_mfa(name, actor=me, reason=reason)
            )
            notice = f"{name}'s second factor is removed; they enrol again at their next log-in"
        self.done(f"operator/users/{quote(name)}", notice)


# -- images -----------------------------------------------------------------------------
class ImagesHandler(ConsoleHandler):
    """Every workspace image with its state, and the forms to allow or retire it."""

    @web.authenticated
    async def get(self) -> None:
        """The images' page."""
        self.operator()
        rows = await self.run(views.images_view, self.registry)
        self.page("console_images.html", images=rows)


class ImageActionHandler(ConsoleHandler):
    """Allow or retire an image for the whole deployment, with a reason."""

    @web.authenticated
    async def post(self, name: str, action: str) -> None:
        """Act as the signed-in operator (``images allow|retire`` on the command line)."""
        from cleanroom.registry.backbone import check_known_image

        self.operator()
        reason = self.get_body_argument("reason", "").strip()
        status = "allowed" if action == "allow" else "retired"
        if status == "retired" and not reason:
            raise InvalidInput("retiring an image needs a reason")  # as `images retire`
        check_known_image(name)
        before = await self.run(views.image_status, self.registry, name)
        unchanged(before, status, f"image {name} is {status} already")
        await self.act(
            "allow or retire images",
            lambda me: self.governance.set_image_state(name, status, actor=me, reason=reason),
        )
        notice = f"image {name} is {status}" + (
            ": no new workspace runs it" if status == "retired" else ""
        )
        self.done("operator/images", notice)


# -- running workspaces -----------------------------------------------------------------
class WorkspacesHandler(ConsoleHandler):
    """What runs now (``cleanroom status``), read from the backend, with a stop form."""

    @web.authenticated
    async def get(self) -> None:
        """The running workspaces' page."""
        self.operator()
        view = await self.run(views.running_view, _instance())
        self.page("console_workspaces.html", **view)


class StopWorkspaceHandler(ConsoleHandler):
    """Stop one person's workspace of one project, with a reason (journaled)."""

    @web.authenticated
    async def post(self) -> None:
        """Stop it through the hub and by label, as ``members remove`` and the enforcer do."""
        from cleanroom.workspace.stopping import stop_workspace

        self.operator()
        user, project = self.get_body_argument("user", ""), self.get_body_argument("project", "")
        reason = self.get_body_argument("reason", "").strip()
        if not reason:
            raise InvalidInput("stopping a workspace needs a reason (its user sees it)")
        instance = _instance()

        def stop(me: str) -> None:
            if not stop_workspace(user, project, instance):
                raise NotFound(f"no workspace of {user!r} on {project!r} is running")
            self.governance.record(
                WorkspaceStopped(actor=me, project=project, user=user, reason=reason), actor=me
            )

        await self.act("stop workspaces", stop)
        self.done("operator/workspaces", f"the workspace of {user} on {project} was stopped")


def _instance() -> str:
    from cleanroom.settings import Settings

    return Settings.from_env().instance


def routes(prefix: str) -> list[tuple[str, type[web.RequestHandler]]]:
    """The console's pages under ``prefix`` (``operator`` itself: applications_web)."""
    base, one = prefix + "operator/", r"([^/]+)"
    return [
        (base + "projects", ProjectsHandler),
        (base + f"projects/{one}", ProjectHandler),
        (
            base
            + f"projects/{one}/(status|end|mode|add-member|remove-member|member-end|allow-image)",
            ProjectActionHandler,
        ),
        (base + "users", PeopleHandler),
        (base + f"users/{one}", PersonHandler),
        (
            base + f"users/{one}/(roles|disable|enable|verify|train|unlock|expiry|reset-mfa)",
            PersonActionHandler,
        ),
        (base + "images", ImagesHandler),
        (base + f"images/{one}/(allow|retire)", ImageActionHandler),
        (base + "workspaces", WorkspacesHandler),
        (base + "workspaces/stop", StopWorkspaceHandler),
    ]
