"""One plain-HTTP request to a workspace and the answer the gateway gives for it.

Shared by both ways a request reaches a workspace (``cleanroom.gateway.front``'s lean
path and ``cleanroom.gateway.proxy``'s tornado handler), so that the rules after
admission are one piece of code: the request goes to the container with the gateway's
token for that server and a fresh nonce, and nothing of the answer goes further unless
it proves it comes from the real server, fits the caps and the budget, and passes the
content rules. Refusals are rendered, counted and journaled here too.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tornado import httputil

from cleanroom.gateway import content, jsonio, metrics, pages, proof
from cleanroom.gateway.routes import Backend
from cleanroom.gateway.upstream import NoAnswer, TooLarge

if TYPE_CHECKING:
    from cleanroom.gateway.app import Gateway

log = logging.getLogger("cleanroom.gateway")

FORWARD_REQUEST_HEADERS = (
    "Accept",
    "Accept-Language",
    "Content-Type",
    "If-None-Match",
    "If-Modified-Since",
    "X-Requested-With",
)
FORWARD_RESPONSE_HEADERS = ("Content-Type", "Cache-Control", "Etag", "Last-Modified", "Location")
# The workspace server's own XSRF cookie (JupyterHub's signed, urlsafe-base64 token).
_SERVER_XSRF = re.compile(r"_xsrf=([A-Za-z0-9_-]{1,1024})(?:;|$)")

Header = Callable[[str], "str | None"]
"""Reads one request header by name (any case), None when absent."""


class Refused(Exception):
    """A refusal; answered by :func:`refusal`."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


@dataclass
class Answer:
    """What goes back to the browser: status, headers (Content-Length aside), body."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


def route_kind(rest: str) -> str:
    """The accounting kind of a path below the server's prefix."""
    if rest.startswith(("static/", "lab/static/", "lab/extensions/", "lab/api/themes")):
        return "static"
    if rest.startswith("api/contents"):
        return "contents"
    if rest.startswith("api/kernels") or rest.startswith("api/sessions"):
        return "kernel"
    if rest.startswith(("terminals/", "api/terminals")):
        return "terminal"
    if rest.startswith("lab/api/settings"):
        return "settings"
    if rest.startswith("lab/api/workspaces"):
        return "workspaces"
    if rest.startswith(("api/kernelspecs", "kernelspecs/")):
        return "kernelspecs"
    if rest.startswith("api/events"):
        return "events"
    if rest.startswith("cleanroom/"):
        return "releases"
    if rest.startswith("api"):
        return "api"
    return "page"


@functools.lru_cache(maxsize=64)
def page_csp(host: str) -> str:
    """The pages' policy for ``host``: websockets to this host only (one per host)."""
    return content.CSP.replace("connect-src 'self'", f"connect-src 'self' ws://{host} wss://{host}")


def security_headers(host: str) -> list[tuple[str, str]]:
    """Headers on every answer from a workspace."""
    return [
        ("Content-Security-Policy", page_csp(host)),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "same-origin"),
    ]


def refusal(
    gw: Gateway,
    exc: Refused,
    *,
    owner: str,
    server: str,
    rest: str,
    method: str,
    path: str,
    header: Header,
) -> Answer:
    """The answer to a refusal, counted and put on the record."""
    user, project = owner or "-", server or "-"
    metrics.REFUSALS.labels(user, project, exc.reason).inc()
    gw.ledger.refusal(user, project, exc.reason, path=rest[:200], method=method)
    log.info("refused %s %s: %s (%s)", method, path, exc.reason, exc.message)
    headers = [("Content-Security-Policy", content.CSP), ("X-Content-Type-Options", "nosniff")]
    if pages.wants_page(header("Accept") or "", rest, header("Sec-Fetch-Mode") or ""):
        headers.append(("Content-Type", "text/html; charset=utf-8"))
        body = pages.refusal_page(exc.status, exc.message)
    else:
        headers.append(("Content-Type", "application/json"))
        body = pages.refusal_json(exc.message)
    return Answer(exc.status, httputil.responses.get(exc.status, "Unknown"), headers, body.encode())


def upstream_headers(
    gw: Gateway, backend: Backend, header: Header, host: str, nonce: str
) -> httputil.HTTPHeaders:
    """The headers towards the server: a few of the request's, never a browser cookie,
    the gateway's token for this server, the nonce, and the server's own XSRF cookie."""
    headers = httputil.HTTPHeaders()
    for name in FORWARD_REQUEST_HEADERS:
        value = header(name)
        if value is not None:
            headers[name] = value
    headers["Host"] = host
    headers["Authorization"] = f"token {backend.token}"
    headers[proof.NONCE_HEADER] = nonce
    kept = gw.server_cookies.get((backend.owner, backend.server))
    if kept is not None and kept[0] == backend.secret:
        headers["Cookie"] = kept[1]
    return headers


def keep_server_cookie(gw: Gateway, backend: Backend, headers: httputil.HTTPHeaders) -> None:
    """Keep the server's own XSRF cookie for this server start, as a browser would.

    Without it the server makes a new token, sets it and logs a line on every page
    (the gateway forwards no cookie either way). It goes back to that server only,
    with the gateway's token (so the server checks no XSRF on it), never to the
    browser; called only for answers whose proof was valid.
    """
    for value in headers.get_list("Set-Cookie"):
        found = _SERVER_XSRF.match(value)
        if found:
            gw.server_cookies[(backend.owner, backend.server)] = (
                backend.secret,
                f"_xsrf={found.group(1)}",
            )


async def forward(
    gw: Gateway,
    backend: Backend,
    *,
    kind: str,
    method: str,
    uri: str,
    body: bytes | None,
    header: Header,
    host: str,
) -> Answer:
    """Send one admitted request to ``backend`` and make the browser's answer of its
    reply (raises :class:`Refused`)."""
    if body is not None and len(body) > gw.policy.http.max_request_bytes:
        raise Refused(413, "too_large", "The request is larger than the clean room allows.")
    nonce = proof.new_nonce()
    try:
        # No Accept-Encoding: the body arrives as the bytes the cap and budget count.
        reply = await gw.client.fetch(
            backend.target + (uri or "/"),
            method=method,
            headers=upstream_headers(gw, backend, header, host, nonce),
            body=body,
            timeout=300,
        )
    except NoAnswer as exc:
        raise _no_answer(gw, exc) from exc
    if not proof.is_valid(backend.secret, nonce, reply.headers.get(proof.PROOF_HEADER)):
        raise Refused(
            502,
            "proof",
            "The workspace's server could not prove it is the clean room's server; "
            "nothing of its answer was sent. Restart the workspace.",
        )
    if "Set-Cookie" in reply.headers:
        keep_server_cookie(gw, backend, reply.headers)
    data = reply.body
    ctype = reply.headers.get("Content-Type", "")
    if kind == "contents" and "json" in ctype and data and method == "GET":
        data = check_contents(gw, data)
    out = [(k, reply.headers[k]) for k in FORWARD_RESPONSE_HEADERS if k in reply.headers]
    location = reply.headers.get("Location")
    if location and not location.startswith(("/user/", "/hub/")):
        out = [(k, v) for k, v in out if k != "Location"]
    counted = len(data) + sum(len(k) + len(v) + 4 for k, v in out)
    user, project = backend.owner, backend.server
    exempt = (
        kind == "static"
        and reply.code == 200
        and hashlib.sha256(data).hexdigest() in gw.routes.manifest(user, project)
    )
    if exempt:
        gw.budgets.exempt(user, project, counted)
        metrics.EXEMPT_BYTES.labels(user, project).inc(counted)
    elif not gw.budgets.spend(user, project, counted, kind):
        raise Refused(429, "budget", gw.budgets.exhausted_message(user, project))
    else:
        metrics.BYTES.labels(user, project, kind).inc(counted)
    out.extend(security_headers(host))
    if reply.code in (204, 304) or method == "HEAD":
        data = b""
    return Answer(reply.code, reply.reason or "Unknown", out, data)


def _no_answer(gw: Gateway, error: NoAnswer) -> Refused:
    """The refusal for an upstream request that brought no answer to pass on."""
    if isinstance(error, TooLarge):
        return Refused(
            403,
            "too_large",
            "The answer is larger than the clean room sends to a browser "
            f"({gw.policy.http.max_response_bytes} bytes).",
        )
    return Refused(502, "backend", f"The workspace server did not answer ({error}).")


def check_contents(gw: Gateway, data: bytes) -> bytes:
    """Notebooks lose script-carrying outputs; base64 answers must be real images."""
    try:
        model = jsonio.loads(data)
    except ValueError as exc:
        raise Refused(502, "content", "The workspace sent an unreadable contents answer.") from exc
    if not isinstance(model, dict) or model.get("content") is None:
        return data
    rules = gw.policy
    if model.get("type") == "notebook":
        if content.sanitize_notebook(
            model, rules.websocket.blocked_mime_types, rules.http.max_image_bytes
        ):
            return jsonio.dumps_bytes(model)
        return data  # nothing changed: the bytes as they came, not re-serialised
    if model.get("format") == "base64":
        mime = str(model.get("mimetype") or "")
        raw = content._decode_b64(model.get("content"))
        problem = (
            "not base64"
            if raw is None
            else content.image_problem(mime, raw, rules.http.max_image_bytes)
        )
        if problem:
            raise Refused(
                403,
                "content",
                f"{model.get('path', 'this file')} is not shown in the browser: {problem}.",
            )
    return data
