"""The airlock's HTTP edge: tornado handlers for the pages and the submission API.

Pages authenticate with JupyterHub's OAuth (``HubOAuthenticated``); the API takes a
JupyterHub token in the ``Authorization`` header and asks the hub whose it is and what
scopes it carries (``HubAuth.user_for_token``). Every ``AirlockError`` is translated to
an HTTP answer in exactly one place, ``AirlockHandlerMixin.write_error``.

Pages carry no script at all, and a Content-Security-Policy that forbids any: a
notebook or HTML fragment that escaped sanitising still could not run.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar, cast
from urllib.parse import urlencode, urlsplit

from jupyterhub.services.auth import HubAuth, HubOAuthenticated
from prometheus_client import CONTENT_TYPE_LATEST
from tornado import httputil, web
from tornado.http1connection import HTTP1Connection
from tornado.ioloop import IOLoop

from . import metrics
from . import permissions as perm
from .domain import (
    AWAITING_REVIEW,
    OPERATOR_SCOPE,
    Actor,
    Comment,
    Decision,
    FileUpload,
    ProviderDecision,
    ReleaseRequest,
    State,
)
from .exceptions import (
    AirlockError,
    BadRequest,
    LimitExceeded,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
)
from .policy import Policy
from .render import (
    check_summary,
    finding_rows,
    kind_of,
    notebook_html_cached,
    table_page,
    text_preview,
)
from .service import Airlock, RequestPage

log = logging.getLogger(__name__)
T = TypeVar("T")


# Shown to a request's author in place of their own free text until an officer has
# reviewed it: text the workspace wrote must not come back out unreviewed (submit,
# read back, withdraw, repeat).
FREE_TEXT_HIDDEN = "(shown after review)"
_REVIEWED = {
    State.PROVIDER_REVIEW,
    State.APPROVED,
    State.REJECTED,
    State.RETURNED,
    State.RELEASED,
    State.DECLINED,
}


def free_text_hidden(viewer: str, request: ReleaseRequest) -> bool:
    """Whether ``viewer`` is the author of a request whose free text is not reviewed yet
    (a withdrawn request never was, in its last round)."""
    return viewer == request.author and request.state not in _REVIEWED


def check_free_text(limit: int, justification: str, descriptions: Sequence[str]) -> None:
    """Refuse free text beyond the policy's ``limits.text_characters``, naming which."""
    if len(justification) > limit:
        raise BadRequest(
            f"the justification is {len(justification):,} characters; the airlock takes at "
            f"most {limit:,} (limits.text_characters): shorten it"
        )
    for i, text in enumerate(descriptions):
        if len(text) > limit:
            raise BadRequest(
                f"the description of file {i + 1} is {len(text):,} characters; the airlock "
                f"takes at most {limit:,} (limits.text_characters): shorten it"
            )


def summary(request: ReleaseRequest, comments: Sequence[Comment], *, hide_text: bool) -> dict:
    """The JSON shape of a request in the submission API (its author's view: the free
    text is replaced with :data:`FREE_TEXT_HIDDEN` while ``hide_text``)."""
    return {
        "id": request.id,
        "project": request.project,
        "state": str(request.state),
        "round": request.round,
        "created": request.created.isoformat(),
        "updated": request.updated.isoformat(),
        "justification": FREE_TEXT_HIDDEN if hide_text else request.justification,
        "files": [
            {
                "path": f.path,
                "sha256": f.sha256,
                "size": f.size,
                "type": f.content_type,
                "description": FREE_TEXT_HIDDEN if hide_text else f.description,
            }
            for f in request.current_files()
        ],
        "checks": {f.path: f.checks for f in request.current_files()},
        "comments": [
            {"author": c.author, "text": c.text, "time": c.time.isoformat(), "file": c.file}
            for c in comments
        ],
    }


def dumps(data: object) -> str:
    """Compact JSON for API answers."""
    return json.dumps(data, separators=(",", ":"), default=str)


PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
# A rendered notebook: sandboxed even when opened on its own, no script, no fetches.
NOTEBOOK_CSP = (
    "sandbox; default-src 'none'; style-src 'self'; img-src data:; "
    "form-action 'none'; base-uri 'none'; frame-ancestors 'self'"
)
RAW_CSP = "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class AirlockHandlerMixin(web.RequestHandler):
    """What every airlock handler shares: the service, the thread pool, errors, headers."""

    airlock: Airlock
    executor: ThreadPoolExecutor

    def initialize(self, airlock: Airlock, executor: ThreadPoolExecutor, **_: Any) -> None:
        """Receive the shared service objects from the application."""
        self.airlock = airlock
        self.executor = executor

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking airlock call (database, disk, checks) off the event loop."""
        return await IOLoop.current().run_in_executor(self.executor, fn, *args)

    def set_default_headers(self) -> None:
        """Security headers on every answer."""
        self.set_header("Content-Security-Policy", PAGE_CSP)
        self.set_header("X-Content-Type-Options", "nosniff")
        # Not "no-referrer": under it browsers send "Origin: null" with our own forms,
        # and the decision endpoints check Origin. Nothing goes to other origins still.
        self.set_header("Referrer-Policy", "same-origin")
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("Cache-Control", "no-store")

    def wants_json(self) -> bool:
        """API handlers answer JSON; pages answer HTML."""
        return False

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """The single translation of errors into answers (JSON for the API, else HTML)."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, AirlockError):
            message = str(exc)
        elif isinstance(exc, web.HTTPError) and exc.log_message:
            message = exc.log_message % exc.args if exc.args else exc.log_message
        else:
            message = self._reason
        if self.wants_json():
            self.set_header("Content-Type", "application/json")
            body: dict[str, Any] = {"error": message}
            if isinstance(exc, LimitExceeded):
                body["limit"] = exc.limit
            self.finish(dumps(body))
            return
        actor = getattr(self, "_actor", None) or Actor(username="")
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(
            self.render_string(
                "error.html", status=status_code, message=message, actor=actor, prefix=self.prefix
            )
        )

    def _handle_request_exception(self, e: BaseException) -> None:
        # Domain refusals answer with their own status and message and are not logged as
        # server errors; malformed input that a library refused is one of them (400);
        # anything else goes to tornado (logged, a bare 500).
        translated = input_error(e)
        if translated is not None:
            e = translated
        if isinstance(e, AirlockError) and not self._finished:
            log.info("%s %s refused: %s", self.request.method, self.request.path, e)
            actor = getattr(self, "_actor", None)
            if actor is not None:
                # Refusals raised here at the edge (malformed input, a token rule checked
                # before the domain call) are audited like those the domain raises.
                self.airlock.audit_refusal(actor, f"{self.request.method} {self.request.path}", e)
            self.send_error(e.status, exc_info=(type(e), e, e.__traceback__))
            return
        super()._handle_request_exception(e)

    @property
    def prefix(self) -> str:
        """The URL prefix pages link under (the hub's ``/services/airlock/``)."""
        return str(self.settings.get("airlock_prefix", "/"))

    def get_template_namespace(self) -> dict[str, Any]:
        """Helpers every template may use."""
        ns = super().get_template_namespace()
        ns.update(prefix=self.prefix, check_summary=check_summary)
        return ns


def input_error(e: BaseException) -> BadRequest | None:
    """The 400 for an exception that only malformed input raises, else None.

    Libraries under the handlers (tornado's body parser, the JSON and text decoders)
    refuse bad bytes with their own exception types; each is a client's mistake, so it
    is answered like any other ``BadRequest``, with the library's message, instead of a
    500. Nothing else is translated: an unexpected fault stays a logged 500.
    """
    if isinstance(e, httputil.HTTPInputError):
        return BadRequest(f"malformed request: {e}")
    if isinstance(e, UnicodeError):
        return BadRequest(f"malformed request: the text is not valid UTF-8 ({e})")
    return None


def same_origin(handler: web.RequestHandler, expected: str) -> None:
    """Refuse (403) a state-changing request that did not come from our own pages.

    Browsers send ``Origin`` with every POST; where one does not, ``Referer`` stands in.
    ``expected`` is the deployment's public origin (``scheme://host[:port]``); when it is
    empty, the origin the request was addressed to (its ``Host``, as the proxy passes it
    on) is taken. A request with neither header is refused: our forms always send one.

    It raises an ``HTTPError``, not a ``PermissionDenied``: JupyterHub's cookie check
    calls it again while the error page is rendered, and there takes an ``HTTPError``
    to mean "no user" (anything else would turn the refusal into a 500).
    """
    sent = handler.request.headers.get("Origin")
    source = "Origin"
    if sent is None:
        sent = handler.request.headers.get("Referer")
        source = "Referer"
    if sent is None:
        raise web.HTTPError(
            403,
            "%s",
            "this form must be sent from the airlock's own pages (the request carries "
            "neither Origin nor Referer)",
        )
    allowed = origin_of(expected or f"{handler.request.protocol}://{handler.request.host}")
    if allowed == "null" or origin_of(sent) != allowed:
        raise web.HTTPError(
            403,
            "%s",
            f"cross-site request refused: {source} {sent[:200]!r} is not the airlock's "
            f"own origin {allowed!r}",
        )


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lower-cased, default ports left out; "null"
    for anything that has no such origin."""
    try:
        parsed = urlsplit(url.strip())
        host, port = (parsed.hostname or ""), parsed.port
    except ValueError:  # an unclosed IPv6 bracket, a port that is not a number
        return "null"
    scheme = parsed.scheme.lower()
    if scheme not in ("http", "https") or not host:
        return "null"
    default = {"http": 80, "https": 443}[scheme]
    suffix = f":{port}" if port is not None and port != default else ""
    return f"{scheme}://{host}{suffix}"


# -- the submission API ------------------------------------------------------------------


def max_body(policy: Policy) -> int:
    """The largest submission body taken: the policy's largest request plus room for the
    multipart framing and metadata, so the domain (not tornado) names the limit hit."""
    return policy.limits.bytes_per_request + 16 * 1024**2


# A body over max_body is still read (and thrown away) up to this many times max_body, so
# the client, which sends its whole body before it reads an answer, gets the JSON 413.
# Beyond that the connection is closed without reading it.
DRAIN_FACTOR = 4


@web.stream_request_body
class ApiRequestsHandler(AirlockHandlerMixin):
    """``POST /api/v1/requests`` (submit) and ``GET /api/v1/requests?project=P`` (list)."""

    hub_auth: HubAuth
    _actor: Actor | None = None
    _too_big: LimitExceeded | None = None

    def initialize(self, airlock: Airlock, executor: ThreadPoolExecutor, **kw: Any) -> None:
        """Also receive the ``HubAuth`` used to identify tokens."""
        super().initialize(airlock, executor)
        self.hub_auth = kw["hub_auth"]
        self._chunks: list[bytes] = []

    def prepare(self) -> None:
        """Before any body arrives: refuse a body the policy could never take."""
        limit = max_body(self.airlock.policy)
        declared = self.request.headers.get("Content-Length", "")
        size = int(declared) if declared.isdecimal() else None
        connection = cast(HTTP1Connection, self.request.connection)
        if size is not None and size > limit:
            self._too_big = LimitExceeded(
                "bytes_per_request",
                f"the request body is {size} bytes; the airlock takes at most {limit} "
                f"(bytes_per_request {self.airlock.policy.limits.bytes_per_request} plus "
                "room for the form)",
            )
            if size > DRAIN_FACTOR * limit:
                raise self._too_big
            connection.set_max_body_size(size)
        else:
            # A chunked body has no declared size: tornado cuts it at the limit.
            connection.set_max_body_size(limit)

    def data_received(self, chunk: bytes) -> None:
        """Keep the body's chunks (or drop them, when the body is refused anyway)."""
        if self._too_big is None:
            self._chunks.append(chunk)

    def _parse_body(self) -> None:
        """The form fields and files of the streamed body, as tornado would have parsed."""
        if self._too_big is not None:
            raise self._too_big
        body, self._chunks = b"".join(self._chunks), []
        self.request.body = body
        content_type = self.request.headers.get("Content-Type", "")
        if not content_type.lower().startswith("multipart/form-data"):
            raise BadRequest(
                "send the release request as multipart/form-data (a 'metadata' JSON part "
                f"and one part per file), not {content_type[:100] or 'no Content-Type'!r}"
            )
        try:
            httputil.parse_body_arguments(
                content_type,
                body,
                self.request.body_arguments,
                self.request.files,
                self.request.headers,
            )
        except httputil.HTTPInputError as exc:
            raise BadRequest(f"the multipart body is malformed: {exc}") from exc

    def wants_json(self) -> bool:
        """Always JSON."""
        return True

    def check_xsrf_cookie(self) -> None:
        """Token-authenticated: no cookie is ever consulted, so no cross-site risk."""

    async def token_model(self, what: str = "the workspace token") -> dict[str, Any]:
        """The hub's model of the ``Authorization: token ...`` token's owner, with scopes."""
        header = self.request.headers.get("Authorization", "")
        match = re.match(r"^(?:token|bearer)\s+(\S+)\s*$", header, re.IGNORECASE)
        if not match:
            raise NotAuthenticated(f"send {what} as 'Authorization: token <token>'")
        model = await self.hub_auth.user_for_token(match[1], sync=False)
        if not model:
            raise NotAuthenticated("the hub does not recognise this token")
        return dict(model)

    async def token_actor(self) -> Actor:
        """The user who owns the ``Authorization: token ...`` token, with its scopes."""
        model = await self.token_model()
        if model.get("kind", "user") != "user":
            raise PermissionDenied("only a user's workspace token may use this API")
        self._actor = await self.run(self.airlock.actor, model["name"], model.get("scopes") or [])
        return self._actor

    async def get(self) -> None:
        """This user's requests in one project, with the comments they may see."""
        actor = await self.token_actor()
        project = self.get_query_argument("project", "")
        if not project:
            raise BadRequest("give the project: ?project=<name>")
        found = await self.run(self.airlock.requests_of, actor, project)
        self.set_header("Content-Type", "application/json")
        self.finish(
            dumps(
                {
                    "requests": [
                        summary(
                            r,
                            self.airlock.visible_comments(actor, r),
                            hide_text=free_text_hidden(actor.username, r),
                        )
                        for r in found
                    ]
                }
            )
        )

    def _metadata(self) -> dict[str, Any]:
        raw: bytes | None = None
        if "metadata" in self.request.body_arguments:
            raw = self.request.body_arguments["metadata"][0]
        elif "metadata" in self.request.files:
            raw = self.request.files["metadata"][0]["body"]
        if raw is None:
            raise BadRequest("multipart part 'metadata' (JSON) is missing")
        try:
            meta = json.loads(raw)
        except ValueError as exc:  # includes bad UTF-8 (UnicodeDecodeError)
            raise BadRequest(f"part 'metadata' is not valid JSON: {exc}") from exc
        except RecursionError as exc:
            raise BadRequest("part 'metadata' is nested too deeply to be read") from exc
        if not isinstance(meta, dict):
            raise BadRequest("part 'metadata' must be a JSON object")
        return meta

    def _uploads(self, meta: dict[str, Any]) -> list[FileUpload]:
        files = meta.get("files")
        if not isinstance(files, list) or not files:
            raise BadRequest("metadata.files must be a non-empty list")
        uploads = []
        for i, entry in enumerate(files):
            if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
                raise BadRequest(f"metadata.files[{i}] needs a 'path' string")
            field = entry.get("field", f"file{i}")
            parts = self.request.files.get(str(field))
            if not parts:
                raise BadRequest(f"metadata.files[{i}] names part {field!r}, which is missing")
            description = entry.get("description", "")
            if not isinstance(description, str):
                raise BadRequest(f"metadata.files[{i}].description must be a string")
            uploads.append(FileUpload(entry["path"], parts[0]["body"], description))
        return uploads

    async def post(self, request_id: str | None = None) -> None:
        """Submit a request, or (``/<id>/resubmit``) resubmit one returned for changes."""
        self._parse_body()
        actor = await self.token_actor()
        meta = self._metadata()
        project = meta.get("project")
        justification = meta.get("justification", "")
        if not isinstance(project, str) or not project:
            raise BadRequest("metadata.project must name the workspace's project")
        if not isinstance(justification, str):
            raise BadRequest("metadata.justification must be a string")
        uploads = self._uploads(meta)
        check_free_text(
            self.airlock.policy.limits.text_characters,
            justification,
            [u.description for u in uploads],
        )
        if request_id is not None:
            request = await self.run(
                self.airlock.resubmit_from_workspace,
                actor,
                request_id,
                project,
                justification,
                uploads,
            )
            self.set_status(200)
        else:
            key = self.request.headers.get("Idempotency-Key")
            done = await self.run(self.airlock.submit, actor, project, justification, uploads, key)
            request = done.request
            self.set_status(201 if done.created else 200)
            if not done.created:
                self.set_header("X-Airlock-Duplicate", "true")
        self.set_header("Content-Type", "application/json")
        comments = self.airlock.visible_comments(actor, request)
        hidden = free_text_hidden(actor.username, request)
        self.finish(dumps(summary(request, comments, hide_text=hidden)))


class MetricsHandler(ApiRequestsHandler):
    """``GET /metrics``: Prometheus metrics, for tokens with ``read:metrics`` or operators."""

    async def get(self) -> None:
        """Queue depth and time in each state, computed from storage now."""
        model = await self.token_model("a token with read:metrics")
        scopes = set(model.get("scopes") or [])
        if "read:metrics" not in scopes and OPERATOR_SCOPE not in scopes:
            raise PermissionDenied("metrics need the read:metrics scope or the operator role")
        body = await self.run(
            lambda: metrics.render(self.airlock.storage.list_requests(), self.airlock.clock())
        )
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(body)


class HealthHandler(AirlockHandlerMixin):
    """``GET /health``: answers when the service is up (no data, no login)."""

    def wants_json(self) -> bool:
        """Always JSON (a wrong method gets a JSON 405)."""
        return True

    def get(self) -> None:
        """Say so."""
        self.finish({"ok": True})


class NoRouteHandler(AirlockHandlerMixin):
    """Whatever no route matches: a 404 in the listener's own language (JSON on the
    submission listener, a page on the public one), never tornado's bare HTML."""

    def initialize(self, airlock: Airlock, executor: ThreadPoolExecutor, **kw: Any) -> None:
        """Also receive whether this listener speaks JSON."""
        super().initialize(airlock, executor)
        self._json = bool(kw.get("json", True))

    def wants_json(self) -> bool:
        """As the listener says."""
        return self._json

    def prepare(self) -> None:
        """Refuse every method on every unknown path."""
        raise NotFound(f"nothing is served at {self.request.path[:200]!r}")


# -- pages -------------------------------------------------------------------------------


class PageHandler(HubOAuthenticated, AirlockHandlerMixin):
    """A page for a logged-in hub user."""

    _actor: Actor | None = None

    def initialize(self, airlock: Airlock, executor: ThreadPoolExecutor, **kw: Any) -> None:
        """Also receive the ``HubOAuth`` that identifies the browser's user."""
        super().initialize(airlock, executor)
        self.hub_auth = kw["hub_auth"]

    async def actor(self) -> Actor:
        """The logged-in user as an ``Actor`` (memberships from the registry)."""
        if self._actor is None:
            model = self.current_user
            if not model:
                raise NotAuthenticated("log in through the hub")
            self._actor = await self.run(
                self.airlock.actor, model["name"], model.get("scopes") or []
            )
        return self._actor

    def check_xsrf_cookie(self) -> None:
        """Before the hub's XSRF token check: a form must come from our own origin."""
        if self.request.method not in ("GET", "HEAD", "OPTIONS"):
            same_origin(self, str(self.settings.get("airlock_origin", "")))
        super().check_xsrf_cookie()

    def page(self, template: str, **ns: Any) -> None:
        """Render a page for the current actor."""
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(self.render_string(template, actor=self._actor, **ns))

    def page_number(self) -> int:
        """The ``?page=`` argument: a whole number from 1 (400 otherwise)."""
        number = self.get_query_argument("page", "1")
        if not number.isdecimal() or not 1 <= int(number) <= 1_000_000:
            raise BadRequest(f"page must be a whole number from 1, not {number!r}")
        return int(number)

    def back_to(self, request_id: str, notice: str = "") -> None:
        """After a form: back to the request page (POST, redirect, GET)."""
        suffix = "?" + urlencode({"notice": notice}) if notice else ""
        self.redirect(f"{self.prefix}requests/{request_id}{suffix}")


PAGE_SIZE = 50


def paging(found: RequestPage, number: int, url: str, kept: dict[str, str]) -> dict[str, Any]:
    """What ``paging.html`` shows for page ``number`` of ``found``: the range shown, the
    whole count and links to the neighbouring pages (keeping the filters in ``kept``)."""
    last = max(1, -(-found.total // PAGE_SIZE))

    def link(page: int) -> str:
        return url + "?" + urlencode({**{k: v for k, v in kept.items() if v}, "page": page})

    return {
        "total": found.total,
        "first": found.offset + 1,
        "last_shown": found.offset + len(found.requests),
        # Past the end, "previous" leads back to the last page that has requests.
        "previous": link(min(number - 1, last)) if number > 1 else "",
        "next": link(number + 1) if number < last else "",
    }


class HomeHandler(PageHandler):
    """``/``: officers to their queue, providers' people to theirs, everyone else to
    their requests."""

    @web.authenticated
    async def get(self) -> None:
        """Redirect by role."""
        actor = await self.actor()
        if actor.is_officer:
            self.redirect(self.prefix + "queue")
        elif actor.acts_for:
            self.redirect(self.prefix + "provider")
        else:
            self.redirect(self.prefix + "requests")


def _age(moment: datetime) -> str:
    seconds = int((datetime.now(UTC) - moment).total_seconds())
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


class QueueHandler(PageHandler):
    """The officers' queue, oldest first, with filters, 50 requests a page."""

    @web.authenticated
    async def get(self) -> None:
        """List requests an officer may act on (operators: all)."""
        actor = await self.actor()
        state = self.get_query_argument("state", "")
        project = self.get_query_argument("project", "").strip()
        author = self.get_query_argument("author", "").strip()
        if state == "all":
            states = None
        elif state:
            try:
                states = [State(state)]
            except ValueError as exc:
                raise BadRequest(f"unknown state {state!r}") from exc
        else:
            states = [
                *sorted(AWAITING_REVIEW),
                State.IN_REVIEW,
                State.PROVIDER_REVIEW,
                State.APPROVED,
            ]
        number = self.page_number()
        found = await self.run(
            lambda: self.airlock.queue(
                actor,
                states,
                project=project,
                author=author,
                limit=PAGE_SIZE,
                offset=(number - 1) * PAGE_SIZE,
            )
        )
        rows = []
        for r in found.requests:
            verdicts = Counter(check_summary(f.checks) for f in r.current_files())
            mine = (
                "finished"
                if r.has_reviewed(actor.username)
                else f"{len(r.votes_of(actor.username))} vote(s)"
            )
            rows.append(
                {
                    "request": r,
                    "age": _age(r.created),
                    "checks": sorted(verdicts.items()),
                    "mine": mine,
                }
            )
        filters = {"state": state, "project": project, "author": author}
        self.page(
            "queue.html",
            rows=rows,
            states=[str(s) for s in State],
            filters=filters,
            **paging(found, number, self.prefix + "queue", filters),
        )


class ProviderHandler(PageHandler):
    """For people who act for data providers: the requests waiting for their vote, and
    every request their providers were asked about or told of, 50 a page."""

    @web.authenticated
    async def get(self) -> None:
        """List them (a person who acts for no provider gets a page that says so)."""
        actor = await self.actor()
        number = self.page_number()
        waiting, found = await self.run(
            lambda: self.airlock.provider_requests(
                actor, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE
            )
        )
        self.page(
            "provider.html",
            waiting=waiting,
            requests=found.requests,
            mine=lambda r: [c for c in r.co_reviewers if c.provider in actor.acts_for],
            **paging(found, number, self.prefix + "provider", {}),
        )


class RequestsHandler(PageHandler):
    """A researcher's view: the requests of their projects."""

    @web.authenticated
    async def get(self) -> None:
        """List them, newest first, 50 a page."""
        actor = await self.actor()
        number = self.page_number()
        found = await self.run(
            lambda: self.airlock.project_requests(
                actor, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE
            )
        )
        self.page(
            "requests.html",
            requests=found.requests,
            **paging(found, number, self.prefix + "requests", {}),
        )


class RequestHandler(PageHandler):
    """One request: files, checks, votes (as allowed), comments and the actions open."""

    @web.authenticated
    async def get(self, request_id: str) -> None:
        """Show it; an independent officer's first look opens the review."""
        actor = await self.actor()
        request = await self.run(self.airlock.view, actor, request_id)
        votes = self.airlock.visible_votes(actor, request)
        hidden = free_text_hidden(actor.username, request)
        text_checks = [] if hidden else await self.run(self._free_text_checks, request)
        self.page(
            "request.html",
            request=request,
            free_text_hidden=hidden,
            hidden_text=FREE_TEXT_HIDDEN,
            text_checks=text_checks,
            notice=self.get_query_argument("notice", ""),
            votes=votes,
            show_votes=bool(votes),
            my_votes={v.path: str(v.decision) for v in request.votes_of(actor.username)},
            comments=self.airlock.visible_comments(actor, request),
            can_view_content=perm.can_view_content(actor, request),
            can_review=perm.can_review(actor, request) and request.state is State.IN_REVIEW,
            can_release=perm.can_release(actor, request),
            can_withdraw=perm.can_withdraw(actor, request),
            can_resubmit=perm.can_resubmit(actor, request),
            can_comment=perm.can_comment(actor, request),
            can_download=perm.can_download(actor, request),
            provider_votes_open=[
                p
                for p in perm.votes_for(actor, request)
                if perm.can_provider_vote(actor, request, p)
            ],
        )

    def _free_text_checks(self, request: ReleaseRequest) -> list[tuple[str, dict[str, Any]]]:
        """The disclosure checks' text check on the justification and each description,
        for whoever reads them (officers see findings beside the text)."""
        texts = [("justification", request.justification)] + [
            (f"description of {f.path}", f.description)
            for f in request.current_files()
            if f.description
        ]
        return [
            (label, self.airlock.checks(text.encode(), "free-text.txt", request.project))
            for label, text in texts
        ]


class FileHandler(PageHandler):
    """One file of a request, rendered for review, with its checks and the vote form."""

    @web.authenticated
    async def get(self, request_id: str) -> None:
        """Render by detected type; tables are paged and sortable through the URL."""
        actor = await self.actor()
        path = self.get_query_argument("path")
        f, data = await self.run(self.airlock.file_content, actor, request_id, path)
        request = await self.run(self.airlock.storage.get_request, request_id)
        kind = kind_of(f.content_type)
        table = text = preview_error = None
        try:
            if kind == "table":
                page = self.page_number()
                sort = self.get_query_argument("sort", "") or None
                desc = self.get_query_argument("desc", "") == "1"
                table = await self.run(table_page, data, f.content_type, page, sort, desc)
            elif kind == "text":
                text = text_preview(data, f.content_type)
        except Exception as exc:  # a malformed file is the author's problem, not a 500
            preview_error = f"could not read this file as {f.content_type}: {exc}"
            kind = "none"

        def page_url(page: int, sort: str | None, desc: bool) -> str:
            query = {"path": f.path, "page": page}
            if sort:
                query |= {"sort": sort, "desc": "1" if desc else ""}
            return f"{self.prefix}requests/{request_id}/file?{urlencode(query)}"

        my_vote = next((v for v in request.votes_of(actor.username) if v.path == f.path), None)
        self.page(
            "file.html",
            request=request,
            file=f,
            findings=finding_rows(f.checks),
            kind=kind,
            table=table,
            text=text,
            preview_error=preview_error,
            page_url=page_url,
            can_review=perm.can_review(actor, request) and request.state is State.IN_REVIEW,
            my_vote=my_vote,
            decisions=[str(d) for d in Decision],
        )


class NotebookHandler(PageHandler):
    """A notebook as static, sanitised HTML, in its own sandboxed, script-free document."""

    def set_default_headers(self) -> None:
        """The notebook's own, stricter policy (framed only by our pages)."""
        super().set_default_headers()
        self.set_header("Content-Security-Policy", NOTEBOOK_CSP)
        self.set_header("X-Frame-Options", "SAMEORIGIN")

    @web.authenticated
    async def get(self, request_id: str) -> None:
        """Convert and sanitise; never execute."""
        actor = await self.actor()
        f, data = await self.run(
            self.airlock.file_content, actor, request_id, self.get_query_argument("path")
        )
        if kind_of(f.content_type) != "notebook":
            raise BadRequest(f"{f.path} is not a notebook")
        body = await self.run(notebook_html_cached, f.sha256, data)
        self.page("notebook.html", body=body)


class RawHandler(PageHandler):
    """An unreleased file's bytes, for officers: images inline, everything else attached."""

    @web.authenticated
    async def get(self, request_id: str) -> None:
        """Serve verified bytes with a type taken from the content, never sniffed."""
        actor = await self.actor()
        f, data = await self.run(
            self.airlock.file_content, actor, request_id, self.get_query_argument("path")
        )
        _send_bytes(self, f.path, f.content_type, data, inline=kind_of(f.content_type) == "image")


class DownloadHandler(PageHandler):
    """A released file, for the project's members; each download audited."""

    @web.authenticated
    async def get(self, request_id: str) -> None:
        """Serve the released, verified bytes as an attachment."""
        actor = await self.actor()
        f, data = await self.run(
            self.airlock.download, actor, request_id, self.get_query_argument("path")
        )
        _send_bytes(self, f.path, f.content_type, data, inline=False)


def _send_bytes(
    handler: web.RequestHandler, path: str, content_type: str, data: bytes, inline: bool
) -> None:
    name = _SAFE_NAME.sub("_", path.rsplit("/", 1)[-1]) or "file"
    handler.set_header("Content-Security-Policy", RAW_CSP)
    handler.set_header("Content-Type", content_type if inline else "application/octet-stream")
    handler.set_header(
        "Content-Disposition", f'{"inline" if inline else "attachment"}; filename="{name}"'
    )
    handler.finish(data)


class ActionHandler(PageHandler):
    """The forms on the request pages: vote, finish, release, withdraw, resubmit, comment."""

    @web.authenticated
    async def post(self, request_id: str, action: str) -> None:
        """Do the act, then go back to the request (or file) page."""
        actor = await self.actor()
        a = self.airlock
        if action == "vote":
            path = self.get_body_argument("path")
            try:
                decision = Decision(self.get_body_argument("decision", ""))
            except ValueError as exc:
                raise BadRequest("choose approve, reject or changes") from exc
            await self.run(
                a.vote, actor, request_id, path, decision, self.get_body_argument("comment", "")
            )
            self.redirect(f"{self.prefix}requests/{request_id}/file?{urlencode({'path': path})}")
            return
        if action == "complete":
            done = await self.run(a.complete_review, actor, request_id)
            self.back_to(request_id, f"Review finished; the request is {done.state}.")
        elif action == "release":
            await self.run(a.release, actor, request_id)
            self.back_to(request_id, "Released: the project's members may download the files.")
        elif action == "withdraw":
            await self.run(a.withdraw, actor, request_id)
            self.back_to(request_id, "Withdrawn.")
        elif action == "resubmit":
            justification = self.get_body_argument("justification", "")
            check_free_text(a.policy.limits.text_characters, justification, [])
            await self.run(a.resubmit, actor, request_id, justification)
            self.back_to(request_id, "Resubmitted for a new review round.")
        elif action == "provider-vote":
            await self._provider_vote(actor, request_id)
        elif action == "comment":
            await self.run(
                a.comment,
                actor,
                request_id,
                self.get_body_argument("text", ""),
                self.get_body_argument("file", "") or None,
            )
            self.back_to(request_id, "Comment added.")
        else:
            raise NotFound(f"no action {action!r}")

    async def _provider_vote(self, actor: Actor, request_id: str) -> None:
        """A provider's vote from the request page: for one provider, on one round."""
        try:
            decision = ProviderDecision(self.get_body_argument("decision", ""))
        except ValueError as exc:
            raise BadRequest("choose approve or decline") from exc
        round_ = self.get_body_argument("round", "")
        if not round_.isdecimal() or not 0 < int(round_) < 1_000_000:
            raise BadRequest(f"round must be a whole number from 1, not {round_[:20]!r}")
        reason = self.get_body_argument("reason", "")
        check_free_text(self.airlock.policy.limits.text_characters, reason, [])
        done = await self.run(
            self.airlock.provider_vote,
            actor,
            request_id,
            self.get_body_argument("provider", ""),
            decision,
            reason,
            int(round_),
        )
        self.back_to(request_id, f"Your vote is recorded; the request is {done.state}.")


class AuditHandler(PageHandler):
    """Operators: verify the chain, see the policy, export the log."""

    @web.authenticated
    async def get(self) -> None:
        """Verify now and show the result."""
        actor = await self.actor()
        perm.check_can_operate(actor)
        result = await self.run(self.airlock.verify_audit)
        self.page("audit.html", result=result, policy=repr(self.airlock.policy))


class AuditExportHandler(PageHandler):
    """Operators: the audit log as JSON lines."""

    @web.authenticated
    async def get(self) -> None:
        """Stream the export."""
        actor = await self.actor()
        perm.check_can_export_audit(actor)
        lines = await self.run(lambda: list(self.airlock.export_audit()))
        self.set_header("Content-Type", "application/x-ndjson")
        self.set_header("Content-Disposition", 'attachment; filename="airlock-audit.jsonl"')
        for line in lines:
            self.write(line)
        self.finish()


def page_routes(prefix: str) -> list[tuple[str, type[web.RequestHandler]]]:
    """The public listener's pages under ``prefix`` (e.g. ``/services/airlock/``)."""
    rid = r"([0-9a-f]{16})"
    return [
        (prefix, HomeHandler),
        (prefix + "queue", QueueHandler),
        (prefix + "requests", RequestsHandler),
        (prefix + "provider", ProviderHandler),
        (prefix + f"requests/{rid}", RequestHandler),
        (prefix + f"requests/{rid}/file", FileHandler),
        (prefix + f"requests/{rid}/notebook", NotebookHandler),
        (prefix + f"requests/{rid}/raw", RawHandler),
        (prefix + f"requests/{rid}/download", DownloadHandler),
        (
            prefix
            + f"requests/{rid}/(vote|complete|release|withdraw|resubmit|comment|provider-vote)",
            ActionHandler,
        ),
        (prefix + "audit", AuditHandler),
        (prefix + "audit/export", AuditExportHandler),
        (prefix + "metrics", MetricsHandler),
    ]


def api_routes(prefix: str) -> list[tuple[str, type[web.RequestHandler]]]:
    """The submission API under ``prefix`` (``/`` on the submission listener)."""
    return [
        (prefix + "api/v1/requests", ApiRequestsHandler),
        (prefix + r"api/v1/requests/([0-9a-f]{16})/resubmit", ApiRequestsHandler),
        (prefix + "health", HealthHandler),
    ]
