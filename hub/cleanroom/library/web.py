"""The data library's pages: the catalogue (every signed-in person) and the providers'
page, served by the deployment at ``/services/library/`` with the airlock's look.

Pages show each version's card (provider, description, terms, classification and the
controls it needs, files with checksums, columns with types and roles, the quality
report), never the data. Providers approve or decline their datasets' uses and accept
quarantined versions through the same domain code as the command line
(:class:`~cleanroom.registry.governance.Governance`), as the signed-in person; every
refusal is a :class:`~cleanroom.errors.CleanroomError`, answered in one place
(:meth:`LibraryHandler.write_error`) with its status and message. Pages carry no script,
under a Content-Security-Policy that forbids any.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import urlencode

from jupyterhub.services.auth import HubOAuthenticated
from tornado import web
from tornado.ioloop import IOLoop

from cleanroom.airlock.web import PAGE_CSP, same_origin
from cleanroom.errors import CleanroomError, InvalidInput, NotFound
from cleanroom.library import catalogue
from cleanroom.library.catalogue import CardInfo
from cleanroom.registry import Registry
from cleanroom.registry.governance import Governance

T = TypeVar("T")
PAGE_SIZE = 100
"""Cards on one catalogue page."""


def page_number(handler: web.RequestHandler, name: str = "page") -> int:
    """The ``name`` query argument as a page number from 1 (InvalidInput otherwise)."""
    value = handler.get_query_argument(name, "1")
    if not value.isdecimal() or not 1 <= int(value) <= 1_000_000:
        raise InvalidInput(f"{name} must be a whole number from 1, not {value!r}")
    return int(value)


def human_size(n: int) -> str:
    """``n`` bytes for people (KiB, MiB, GiB)."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


class LibraryHandler(HubOAuthenticated, web.RequestHandler):
    """What every page shares: the signed-in person, the registry, errors, headers."""

    registry: Registry
    executor: ThreadPoolExecutor

    def initialize(self, registry: Registry, executor: ThreadPoolExecutor, **kw: Any) -> None:
        """Receive the registry, the thread pool and the service's ``HubOAuth``."""
        self.registry = registry
        self.executor = executor
        self.hub_auth = kw["hub_auth"]

    @property
    def prefix(self) -> str:
        """The service's URL prefix (``/services/library/``)."""
        return str(self.settings["library_prefix"])

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking registry call off the event loop."""
        return await IOLoop.current().run_in_executor(self.executor, fn, *args)

    def set_default_headers(self) -> None:
        """The airlock's security headers on every answer."""
        self.set_header("Content-Security-Policy", PAGE_CSP)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "same-origin")
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("Cache-Control", "no-store")

    def check_xsrf_cookie(self) -> None:
        """A form must come from our own origin, then carry the XSRF token."""
        if self.request.method not in ("GET", "HEAD", "OPTIONS"):
            same_origin(self, str(self.settings.get("library_origin", "")))
        super().check_xsrf_cookie()

    def me(self) -> str:
        """The signed-in person's name (the hub's OAuth identity)."""
        model = self.current_user
        if not model:
            raise web.HTTPError(403, "log in through the hub")
        return str(model["name"])

    def roles(self, name: str) -> frozenset[str]:
        """The person's roles in the registry (none when unknown there)."""
        try:
            return self.registry.get_user(name).roles
        except NotFound:
            return frozenset()

    def page(self, template: str, **ns: Any) -> None:
        """Render a page for the signed-in person."""
        name = self.me()
        # Every page sets the XSRF cookie, so that any form (or a forged one) meets the
        # same check, whichever page it came from.
        self.xsrf_token  # noqa: B018
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(
            self.render_string(
                template,
                prefix=self.prefix,
                who=name,
                roles=self.roles(name),
                human_size=human_size,
                notice=self.get_query_argument("notice", ""),
                **ns,
            )
        )

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """The single translation of errors into pages: status and a message."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, CleanroomError):
            message = str(exc)
        elif isinstance(exc, web.HTTPError) and exc.log_message:
            message = exc.log_message % exc.args if exc.args else exc.log_message
        else:
            message = self._reason
        self.set_header("Content-Type", "text/html; charset=utf-8")
        model = self.current_user if status_code != 403 else None
        self.finish(
            self.render_string(
                "library_error.html",
                status=status_code,
                message=message,
                prefix=self.prefix,
                who=(model or {}).get("name", ""),
                roles=frozenset(),
                notice="",
                human_size=human_size,
            )
        )

    def _handle_request_exception(self, e: BaseException) -> None:
        # Refusals of the domain answer with their own status; nothing else is hidden.
        if isinstance(e, CleanroomError) and not self._finished:
            self.send_error(e.status, exc_info=(type(e), e, e.__traceback__))
            return
        super()._handle_request_exception(e)


class CatalogueHandler(LibraryHandler):
    """Every dataset's versions with their card summary, searchable, in pages."""

    @web.authenticated
    async def get(self) -> None:
        """The catalogue page (``?q=`` words to look for, ``?page=``)."""
        q = self.get_query_argument("q", "").strip()[:200]
        number = page_number(self)
        start = (number - 1) * PAGE_SIZE
        shown, total = await self.run(
            lambda: catalogue.find_cards(self.registry, q, offset=start, limit=PAGE_SIZE)
        )
        more = start + PAGE_SIZE < total
        next_url = f"{self.prefix}?" + urlencode({"q": q, "page": number + 1}) if more else ""
        self.page("catalogue.html", cards=shown, total=total, q=q, next_url=next_url)


async def _card(handler: LibraryHandler, name: str, version: str) -> CardInfo:
    return await handler.run(catalogue.get_card, handler.registry, name, version)


def _roles_of(registry: Registry, card: CardInfo) -> dict[str, str]:
    from cleanroom.cli.library import roles_of

    return roles_of(
        card.name, card.version, registry.get_dataset(card.name, card.version).index_location
    )


class CardHandler(LibraryHandler):
    """One version's card: everything the catalogue knows of it, never the data."""

    @web.authenticated
    async def get(self, name: str, version: str) -> None:
        """The card page."""
        from cleanroom.library import cards
        from cleanroom.library.classification import load_policy

        card = await _card(self, name, version)
        roles = await self.run(_roles_of, self.registry, card)
        controls = load_policy().classifications.get(card.classification)
        self.page(
            "card.html",
            card=card,
            columns=cards.columns(card, roles),
            controls=controls,
            versions=await self.run(catalogue.versions_of, self.registry, card.name),
        )


class ExportHandler(LibraryHandler):
    """A version's card as Croissant JSON-LD or as a Frictionless Data Package."""

    @web.authenticated
    async def get(self, name: str, version: str, kind: str) -> None:
        """``croissant.json`` or ``datapackage.json``."""
        from cleanroom.library import cards

        card = await _card(self, name, version)
        roles = await self.run(_roles_of, self.registry, card)
        if kind == "croissant":
            origin = str(self.settings.get("library_origin", "")).rstrip("/")
            url = f"{origin}{self.prefix}datasets/{card.name}/{card.version}"
            document = await self.run(lambda: cards.croissant(card, url=url, roles=roles))
        else:
            document = await self.run(lambda: cards.data_package(card, roles=roles))
        self.set_header("Content-Type", "application/json")
        self.set_header(
            "Content-Disposition", f'attachment; filename="{card.name}-{card.version}-{kind}.json"'
        )
        self.finish(json.dumps(document, indent=2, sort_keys=True, default=str))


PROVIDER_PAGE = 50
"""Dataset versions (and applications) a page of "Your datasets" shows."""


def _uses(use: dict[str, Any]) -> list[dict[str, Any]]:
    current = {a.project for a in use.get("approvals", []) if a.current}
    mounted = set(use.get("mounted_by", []))
    return [
        {"project": p, "approved": p in current, "mounted": p in mounted}
        for p in sorted(mounted | current)
    ]


def provider_view(registry: Registry, user: str, page: int = 1, q: str = "") -> dict[str, Any]:
    """What the providers' page shows ``user``: for the providers they act for, one page
    of their versions (matching ``q``) with each card, the projects that mount or were
    approved for it (whether their use is approved now, and their members), workspace
    runs; who acts for each provider; the submitted applications that want their data;
    and the declines on record. Read a page at a time, whatever the library holds."""
    governance = Governance(registry)
    providers = governance.providers_of(user)
    start = (page - 1) * PROVIDER_PAGE
    cards, total = (
        catalogue.find_cards(registry, q, offset=start, limit=PROVIDER_PAGE, providers=providers)
        if providers
        else ([], 0)
    )
    by_version: dict[tuple[str, str], dict[str, Any]] = {}
    for provider in providers:
        versions = [(c.name, c.version) for c in cards if c.provider == provider]
        if versions:
            usage = governance.provider_usage(provider, versions)
            by_version.update({(d["name"], d["version"]): d for d in usage["datasets"]})
    out = []
    for card in cards:
        use = by_version.get((card.name, card.version), {})
        out.append({"card": card, "uses": _uses(use), "runs": use.get("runs", [])})
    projects = {u["project"] for d in out for u in d["uses"]}
    members = {p: registry.get_project(p).members for p in sorted(projects)}
    accounts = governance.provider_accounts()
    people = {provider: [a for a in accounts if a.provider == provider] for provider in providers}
    principal_of = [a.provider for a in accounts if a.user == user and not a.delegate]
    declines = [
        e
        for e in governance.journal_entries(action="dataset.decline_use")
        if e.detail.get("provider") in providers
    ]
    # Submitted applications that want their data; decided ones drop off (their uses'
    # decisions stay on the application's page).
    applications = (
        governance.list_applications("pending", providers=providers, limit=PROVIDER_PAGE)
        if providers
        else []
    )
    return {
        "providers": providers,
        "datasets": out,
        "total": total,
        "page": page,
        "q": q,
        "more": start + PROVIDER_PAGE < total,
        "declines": declines[-PROVIDER_PAGE:][::-1],
        "applications": applications,
        "applications_total": (
            governance.get_application_count("pending", providers=providers) if providers else 0
        ),
        "people": people,
        "principal_of": principal_of,
        "members": members,
    }


class ProviderHandler(LibraryHandler):
    """The providers' page: their datasets' uses to approve or decline, and usage."""

    @web.authenticated
    async def get(self) -> None:
        """The page of the providers the signed-in person acts for."""
        q = self.get_query_argument("q", "").strip()[:200]
        view = await self.run(provider_view, self.registry, self.me(), page_number(self), q)
        self.page("provider.html", **view)


class ProviderActionHandler(LibraryHandler):
    """A provider's decision from a form: approve, decline or accept."""

    @web.authenticated
    async def post(self, action: str) -> None:
        """Decide as the signed-in person; the domain checks their role and standing."""
        me = self.me()
        governance = Governance(self.registry)
        dataset = self.get_body_argument("dataset", "")
        version = self.get_body_argument("version", "")
        project = self.get_body_argument("project", "")
        reason = self.get_body_argument("reason", "")
        if not dataset or not version:
            raise InvalidInput("the form names no dataset version")
        if action == "approve":
            await self.run(
                lambda: governance.approve_dataset_use(project, dataset, version, actor=me)
            )
            notice = f"{project} may use {dataset} {version}"
        elif action == "decline":
            await self.run(
                lambda: governance.decline_dataset_use(project, dataset, version, reason, actor=me)
            )
            notice = (
                f"{project} may not use {dataset} {version}: its running workspaces with "
                "it stop at the enforcer's next round"
            )
        else:
            await self.run(
                lambda: governance.accept_dataset_version(dataset, version, reason, actor=me)
            )
            notice = f"{dataset} {version} accepted"
        self.redirect(f"{self.prefix}provider?" + urlencode({"notice": notice}))


class ProviderDelegateHandler(LibraryHandler):
    """A principal names or removes one of their provider's delegates."""

    @web.authenticated
    async def post(self, action: str) -> None:
        """As the signed-in person; the domain checks they are a principal in standing."""
        me = self.me()
        governance = Governance(self.registry)
        provider = self.get_body_argument("provider", "")
        user = self.get_body_argument("user", "").strip()
        if not provider:
            raise InvalidInput("the form names no provider")
        if action == "add":
            await self.run(lambda: governance.name_provider_delegate(provider, user, actor=me))
            notice = f"{user} now acts for {provider} as your delegate"
        else:
            await self.run(lambda: governance.remove_provider_account(provider, user, actor=me))
            notice = f"{user} no longer acts for {provider}"
        self.redirect(f"{self.prefix}provider?" + urlencode({"notice": notice}))


class HealthHandler(web.RequestHandler):
    """``/health``: the service answers (no authentication, no content)."""

    def get(self) -> None:
        """200 and ``ok``."""
        self.finish("ok")


class NoRouteHandler(LibraryHandler):
    """Anything else: 404, as a page."""

    def prepare(self) -> None:
        """Refuse before authentication: there is nothing here."""
        raise web.HTTPError(404, "there is no such page in the data library")


def routes(prefix: str) -> list[tuple[str, type[web.RequestHandler]]]:
    """The pages under ``prefix``."""
    name, version = r"([a-z][a-z0-9-]*)", r"([A-Za-z0-9][A-Za-z0-9._-]*)"
    return [
        (prefix, CatalogueHandler),
        (prefix + f"datasets/{name}/{version}", CardHandler),
        (prefix + f"datasets/{name}/{version}/(croissant|datapackage).json", ExportHandler),
        (prefix + "provider", ProviderHandler),
        (prefix + "provider/(approve|decline|accept)", ProviderActionHandler),
        (prefix + "provider/delegates/(add|remove)", ProviderDelegateHandler),
    ]
