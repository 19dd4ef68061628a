"""The public side of the gateway: ``/user/<owner>/<server>/...`` from the proxy.

One handler class carries plain HTTP and websockets (a websocket upgrade is a GET). In
order, for every request: the hub says who it is (the gateway's own OAuth cookie or a
token); only the workspace's owner passes; browser writes must carry the gateway's
double-submit XSRF token; the route must be on the policy's allowlist; the workspace must
be registered. Then the request goes to the container with the gateway's token for that
server and a fresh nonce, and nothing of the answer goes further unless the answer
proves it comes from the real server, fits the caps and the budget, and passes the
content rules.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import re
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from jupyterhub.services.auth import HubOAuth, HubOAuthenticated
from tornado import httputil, web
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketClosedError, WebSocketHandler, websocket_connect

from cleanroom.gateway import content, jsonio, metrics, pages, proof, viewer
from cleanroom.gateway.frames import SocketRules, frame_size
from cleanroom.gateway.messages import KernelRules
from cleanroom.gateway.policy import Route
from cleanroom.gateway.routes import Backend
from cleanroom.gateway.upstream import NoAnswer, TooLarge

if TYPE_CHECKING:
    from cleanroom.gateway.app import Gateway

log = logging.getLogger("cleanroom.gateway")

XSRF_COOKIE = "_xsrf"
_FORWARD_REQUEST_HEADERS = (
    "Accept",
    "Accept-Language",
    "Content-Type",
    "If-None-Match",
    "If-Modified-Since",
    "X-Requested-With",
)
_FORWARD_RESPONSE_HEADERS = ("Content-Type", "Cache-Control", "Etag", "Last-Modified", "Location")
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# The workspace server's own XSRF cookie (JupyterHub's signed, urlsafe-base64 token).
_SERVER_XSRF = re.compile(r"_xsrf=([A-Za-z0-9_-]{1,1024})(?:;|$)")


class GatewayOAuth(HubOAuth):
    """The gateway's hub OAuth client; its cookie covers every ``/user/`` path.

    The OAuth callback lives under the service's prefix, the workspaces under ``/user/``:
    the cookie (and the short-lived state cookie) are set on ``/`` so both see them. The
    cookie never reaches a container: the gateway forwards no browser cookie.
    """

    @property
    def cookie_path(self) -> str:
        return "/"


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


class Refused(Exception):
    """A refusal, answered once in :meth:`WorkspaceHandler.refuse`."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


class WorkspaceHandler(HubOAuthenticated, WebSocketHandler):
    """Everything below ``/user/<owner>/<server>/``."""

    hub_auth_class = GatewayOAuth

    def initialize(self, gateway: Gateway) -> None:
        self.gw = gateway
        self.hub_auth = gateway.hub_auth
        self.owner = self.server = self.rest = ""
        self.backend: Backend | None = None
        self.route: Route | None = None
        self.kind = "page"
        self.cookie_auth = False
        self.upstream: Any = None
        # Restricted mode: the viewer's path for this request (None: not a viewer route).
        self.viewer_path: str | None = None
        self.frames: SocketRules | None = None

    # tornado's own XSRF check is not used: see _check_csrf.
    def check_xsrf_cookie(self) -> None:
        return

    # -- refusals ------------------------------------------------------------------
    def refuse(self, exc: Refused) -> None:
        """Answer a refusal, count it and put it on the record."""
        user, project = self.owner or "-", self.server or "-"
        metrics.REFUSALS.labels(user, project, exc.reason).inc()
        self.gw.ledger.refusal(
            user, project, exc.reason, path=self.rest[:200], method=self.request.method
        )
        log.info(
            "refused %s %s: %s (%s)",
            self.request.method,
            self.request.path,
            exc.reason,
            exc.message,
        )
        self.clear()
        self.set_status(exc.status)
        self.set_header("Content-Security-Policy", content.CSP)
        self.set_header("X-Content-Type-Options", "nosniff")
        mode = self.request.headers.get("Sec-Fetch-Mode", "")
        if pages.wants_page(self.request.headers.get("Accept", ""), self.rest, mode):
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.finish(pages.refusal_page(exc.status, exc.message))
        else:
            self.set_header("Content-Type", "application/json")
            self.finish(pages.refusal_json(exc.message))

    # -- before anything reaches the container --------------------------------------
    async def prepare(self) -> None:
        try:
            await self._admit()
        except Refused as exc:
            self.refuse(exc)

    async def _admit(self) -> None:
        self.owner, self.server = self.path_args[0], self.path_args[1]
        self.rest = (self.path_args[2] or "").lstrip("/")
        self.kind = route_kind(self.rest)
        user = await self.hub_auth.get_user(self, sync=False)
        if not user:
            if (
                self.request.method == "GET"
                and pages.wants_page(
                    self.request.headers.get("Accept", ""),
                    self.rest,
                    self.request.headers.get("Sec-Fetch-Mode", ""),
                )
                and self.request.headers.get("Upgrade", "").lower() != "websocket"
            ):
                self.redirect(self.get_login_url())
                return
            raise Refused(403, "unauthenticated", "Log in to the clean room first.")
        self.cookie_auth = not getattr(self, "_token_authenticated", False)
        if user.get("kind", "user") != "user" or user.get("name") != self.owner:
            raise Refused(
                403, "not_owner", f"This workspace belongs to {self.owner}; only they may use it."
            )
        wanted = {
            f"access:servers!server={self.owner}/{self.server}",
            f"access:services!service={self.gw.service_name}",
        }
        if not self.hub_auth.check_scopes(wanted, user):
            raise Refused(403, "not_owner", "This token does not give access to this workspace.")
        self._check_csrf()
        self.backend = self.gw.routes.get(self.owner, self.server)
        if self.backend is None:
            raise Refused(
                404,
                "no_route",
                f"{self.owner}'s workspace {self.server!r} is not running. Start it from "
                "your projects page.",
            )
        upgrade = self.request.headers.get("Upgrade", "").lower() == "websocket"
        if self.backend.viewer:
            self._admit_restricted(upgrade)
            if self.viewer_path is not None:
                return
        self.route = self.gw.policy.route_for(self.request.method or "GET", self.rest)
        if self.route is None or (upgrade and not self.route.websocket):
            raise Refused(
                403,
                "not_allowed",
                f"{self.request.method} {self.rest or '/'} is not a route the clean room allows.",
            )

    def _admit_restricted(self, upgrade: bool) -> None:
        """Restricted mode: the viewer's page and stream only (cleanroom.gateway.viewer);
        everything else is refused, but for the hub's health check with the server's
        own token (``GET api``), which then goes on like any request."""
        assert self.backend is not None
        method = self.request.method or "GET"
        self.viewer_path = viewer.upstream_path(method, self.rest, upgrade)
        if self.viewer_path is not None:
            self.kind = "viewer"
            return
        health = method == "GET" and self.rest == "api" and not upgrade
        if health and viewer.is_server_token(
            self.request.headers.get("Authorization", ""), self.backend.token
        ):
            return
        raise Refused(
            403,
            "restricted",
            viewer.RESTRICTED_MESSAGE.format(owner=self.owner, server=self.server),
        )

    def _check_csrf(self) -> None:
        """Writes in a browser (cookie) session must come from our own pages."""
        if not self.cookie_auth:
            return
        site = self.request.headers.get("Sec-Fetch-Site")
        if site is not None and site not in ("same-origin", "none"):
            raise Refused(403, "csrf", "Requests from other sites are refused.")
        if self.request.method in _SAFE_METHODS:
            return
        cookie = self.get_cookie(XSRF_COOKIE) or ""
        sent = (
            self.request.headers.get("X-XSRFToken") or self.request.headers.get("X-CSRFToken") or ""
        )
        if not cookie or not hmac.compare_digest(cookie.encode(), sent.encode()):
            raise Refused(403, "csrf", "The request lacks the page's XSRF token; reload.")

    def check_origin(self, origin: str) -> bool:
        """Websockets of a browser session only from our own origin."""
        if not self.cookie_auth:
            return True
        return urlparse(origin).netloc == self.request.host

    # -- HTTP ----------------------------------------------------------------------
    async def get(self, *args: str) -> None:
        if self._finished:
            return
        if self.request.headers.get("Upgrade", "").lower() == "websocket":
            if self.viewer_path is not None:
                await self._open_viewer_websocket()
            else:
                await self._open_websocket()
        else:
            await self._proxy()

    async def post(self, *args: str) -> None:
        await self._proxy()

    async def put(self, *args: str) -> None:
        await self._proxy()

    async def patch(self, *args: str) -> None:
        await self._proxy()

    async def delete(self, *args: str) -> None:
        await self._proxy()

    async def head(self, *args: str) -> None:
        await self._proxy()

    def _upstream_headers(self, nonce: str) -> httputil.HTTPHeaders:
        assert self.backend is not None
        headers = httputil.HTTPHeaders()
        for name in _FORWARD_REQUEST_HEADERS:
            value = self.request.headers.get(name)
            if value is not None:
                headers[name] = value
        headers["Host"] = self.request.host
        headers["Authorization"] = f"token {self.backend.token}"
        headers[proof.NONCE_HEADER] = nonce
        kept = self.gw.server_cookies.get((self.owner, self.server))
        if kept is not None and kept[0] == self.backend.secret:
            headers["Cookie"] = kept[1]
        return headers

    def _keep_server_cookie(self, headers: httputil.HTTPHeaders) -> None:
        """Keep the server's own XSRF cookie for this server start, as a browser would.

        Without it the server makes a new token, sets it and logs a line on every page
        (the gateway forwards no cookie either way). It goes back to that server only,
        with the gateway's token (so the server checks no XSRF on it), never to the
        browser; called only for answers whose proof was valid.
        """
        assert self.backend is not None
        for value in headers.get_list("Set-Cookie"):
            found = _SERVER_XSRF.match(value)
            if found:
                pair = f"_xsrf={found.group(1)}"
                self.gw.server_cookies[(self.owner, self.server)] = (self.backend.secret, pair)

    async def _proxy(self) -> None:
        if self._finished:
            return
        try:
            if self.viewer_path is not None:
                await self._forward_viewer()
            else:
                await self._forward()
        except Refused as exc:
            self.refuse(exc)

    async def _forward_viewer(self) -> None:
        """A file of the viewer's page, only if it is a root-owned file of the viewer image."""
        assert self.backend is not None and self.viewer_path is not None
        user, project = self.owner, self.server
        if self.viewer_path == "":
            target = viewer.page_url(user, project)
            self.gw.budgets.force(user, project, len(target), "viewer")
            metrics.BYTES.labels(user, project, "viewer").inc(len(target))
            self.redirect(target)
            return
        try:
            reply = await self.gw.client.fetch(self.backend.viewer + self.viewer_path, timeout=30)
        except NoAnswer as exc:
            raise Refused(502, "backend", f"The viewer did not answer ({exc}).") from exc
        data = reply.body
        if reply.code != 200:
            raise Refused(404, "not_allowed", f"{self.rest} is not a file of the viewer.")
        if hashlib.sha256(data).hexdigest() not in self.gw.routes.viewer_manifest(user, project):
            raise Refused(
                403, "content", f"{self.rest} is not a file of the viewer image; not sent."
            )
        # Bytes of the image's own files: accounted as exempt, like JupyterLab's bundles.
        self.gw.budgets.exempt(user, project, len(data))
        metrics.EXEMPT_BYTES.labels(user, project).inc(len(data))
        self.clear()
        self.set_status(200)
        self.set_header("Content-Type", viewer.content_type(self.viewer_path))
        self.set_header("Cache-Control", "no-cache")
        self._security_headers()
        self.set_header("Permissions-Policy", viewer.PERMISSIONS_POLICY)
        if self.request.method != "HEAD":
            self.write(data)
        self.finish()

    async def _forward(self) -> None:
        assert self.backend is not None
        method = self.request.method or "GET"
        body = self.request.body if method in ("POST", "PUT", "PATCH") else None
        if body is not None and len(body) > self.gw.policy.http.max_request_bytes:
            raise Refused(413, "too_large", "The request is larger than the clean room allows.")
        nonce = proof.new_nonce()
        try:
            # No Accept-Encoding: the body arrives as the bytes the cap and budget count.
            reply = await self.gw.client.fetch(
                self.backend.target + (self.request.uri or "/"),
                method=method,
                headers=self._upstream_headers(nonce),
                body=body,
                timeout=300,
            )
        except NoAnswer as exc:
            raise self._no_answer(exc) from exc
        if not proof.is_valid(self.backend.secret, nonce, reply.headers.get(proof.PROOF_HEADER)):
            raise Refused(
                502,
                "proof",
                "The workspace's server could not prove it is the clean room's server; "
                "nothing of its answer was sent. Restart the workspace.",
            )
        if "Set-Cookie" in reply.headers:
            self._keep_server_cookie(reply.headers)
        data = reply.body
        ctype = reply.headers.get("Content-Type", "")
        if self.kind == "contents" and "json" in ctype and data and method == "GET":
            data = self._check_contents(data)
        out = [(k, reply.headers[k]) for k in _FORWARD_RESPONSE_HEADERS if k in reply.headers]
        location = reply.headers.get("Location")
        if location and not location.startswith(("/user/", "/hub/")):
            out = [(k, v) for k, v in out if k != "Location"]
        counted = len(data) + sum(len(k) + len(v) + 4 for k, v in out)
        user, project = self.owner, self.server
        exempt = (
            self.kind == "static"
            and reply.code == 200
            and hashlib.sha256(data).hexdigest() in self.gw.routes.manifest(user, project)
        )
        if exempt:
            self.gw.budgets.exempt(user, project, counted)
            metrics.EXEMPT_BYTES.labels(user, project).inc(counted)
        elif not self.gw.budgets.spend(user, project, counted, self.kind):
            raise Refused(429, "budget", self.gw.budgets.exhausted_message(user, project))
        else:
            metrics.BYTES.labels(user, project, self.kind).inc(counted)
        self.clear()
        self.set_status(reply.code, reply.reason or "Unknown")
        for name, value in out:
            self.set_header(name, value)
        if "Content-Type" not in dict(out):
            self.clear_header("Content-Type")
        self._security_headers()
        if reply.code not in (204, 304) and method != "HEAD":
            self.write(data)
        self.finish()

    def _no_answer(self, error: NoAnswer) -> Refused:
        """The refusal for an upstream request that brought no answer to pass on."""
        if isinstance(error, TooLarge):
            return Refused(
                403,
                "too_large",
                "The answer is larger than the clean room sends to a browser "
                f"({self.gw.policy.http.max_response_bytes} bytes).",
            )
        return Refused(502, "backend", f"The workspace server did not answer ({error}).")

    def _security_headers(self) -> None:
        self.set_header("Content-Security-Policy", _page_csp(self.request.host))
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "same-origin")
        if self.cookie_auth and not self.get_cookie(XSRF_COOKIE):
            # The gateway's own double-submit token: JupyterLab reads this cookie and
            # sends it back as X-XSRFToken on every write.
            self.set_cookie(
                XSRF_COOKIE,
                secrets.token_hex(16),
                path=f"/user/{self.owner}/{self.server}/",
                samesite="Strict",
            )

    def _check_contents(self, data: bytes) -> bytes:
        """Notebooks lose script-carrying outputs; base64 answers must be real images."""
        try:
            model = jsonio.loads(data)
        except ValueError as exc:
            raise Refused(
                502, "content", "The workspace sent an unreadable contents answer."
            ) from exc
        if not isinstance(model, dict) or model.get("content") is None:
            return data
        rules = self.gw.policy
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

    # -- websockets ----------------------------------------------------------------
    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        if self.viewer_path is not None:
            # noVNC asks for websockify's "binary": the VNC stream is not Jupyter's.
            return "binary" if "binary" in subprotocols else None
        # No subprotocol: the server (and so the browser) speaks Jupyter's JSON protocol,
        # which the gateway reads; v1.kernel.websocket.jupyter.org is never chosen.
        return None

    async def _open_websocket(self) -> None:
        assert self.backend is not None
        nonce = proof.new_nonce()
        url = "ws" + self.backend.target[len("http") :] + self.request.uri
        request = HTTPRequest(url, headers=self._upstream_headers(nonce), request_timeout=60)
        try:
            self.upstream = await websocket_connect(
                request, max_message_size=self.gw.policy.http.max_response_bytes
            )
        except (OSError, StreamClosedError, HTTPClientError) as exc:
            self.refuse(Refused(502, "backend", f"The workspace did not accept ({exc})."))
            return
        if not proof.is_valid(
            self.backend.secret, nonce, self.upstream.headers.get(proof.PROOF_HEADER)
        ):
            self.upstream.close()
            self.refuse(Refused(502, "proof", "The workspace's server could not prove it is real."))
            return
        # Towards the workspace too, each frame at once (tornado leaves a client's
        # stream with Nagle's algorithm on after the handshake).
        self.upstream.protocol.set_nodelay(True)
        kernel = None
        if self.rest.startswith("api/kernels/"):
            kernel = KernelRules(self.gw.policy.websocket, self.gw.policy.http.max_image_bytes)
        self.frames = SocketRules(
            self.gw,
            self.owner,
            self.server,
            "kernel" if kernel else ("terminal" if self.kind == "terminal" else self.kind),
            self.rest,
            kernel,
        )
        await WebSocketHandler.get(self)

    async def _open_viewer_websocket(self) -> None:
        """The VNC stream of a restricted session (websockify in the viewer)."""
        assert self.backend is not None and self.viewer_path is not None
        url = "ws" + self.backend.viewer[len("http") :] + self.viewer_path
        try:
            self.upstream = await websocket_connect(
                HTTPRequest(url, request_timeout=30),
                subprotocols=["binary"],
                max_message_size=self.gw.policy.http.max_response_bytes,
            )
        except (OSError, StreamClosedError, HTTPClientError) as exc:
            self.refuse(Refused(502, "backend", f"The viewer did not accept ({exc})."))
            return
        await WebSocketHandler.get(self)

    def open(self, *args: str) -> None:
        # Each frame goes out as soon as it is written: with Nagle's algorithm a message
        # written right after another waits for the browser's delayed ACK (up to 40 ms).
        self.set_nodelay(True)
        if self.viewer_path is not None:
            self.gw.spawn(self._pump_viewer())
            return
        self.gw.spawn(self._pump())

    async def _pump_viewer(self) -> None:
        """VNC frames towards the browser: each counted (kind ``viewer``) against the
        budget and rate-limited like kernel output; when the budget is spent the stream
        closes (a notice cannot be drawn into a binary stream)."""
        bucket = self.gw.bucket(self.owner, self.server)
        user, project, budgets = self.owner, self.server, self.gw.budgets
        try:
            while True:
                message = await self.upstream.read_message()
                if message is None:
                    break
                data = message if isinstance(message, bytes) else message.encode()
                if not budgets.spend(user, project, len(data), "viewer"):
                    metrics.REFUSALS.labels(user, project, "budget").inc()
                    self.gw.ledger.refusal(
                        user, project, "budget", path=(self.viewer_path or "")[:200]
                    )
                    self.close(4429, "the egress budget is spent")
                    break
                metrics.BYTES.labels(user, project, "viewer").inc(len(data))
                await bucket.take(len(data))
                await self._send(data)
        except (WebSocketClosedError, StreamClosedError):
            pass
        except Exception:
            log.exception("viewer stream of %s/%s failed", self.owner, self.server)
        finally:
            if self.ws_connection is not None:
                self.close()

    def on_message(self, message: str | bytes) -> None:
        if self.upstream is None:
            return
        if len(message) > self.gw.policy.http.max_request_bytes:
            self.close(1009, "message too large")
            return
        if self.frames is None:  # the viewer's VNC stream: keys and pointer, passed on
            passing: str | bytes | None = message
        else:
            passing = self.frames.towards_workspace(message)  # binary frames: same rules
        if passing is None:
            return
        try:
            self.upstream.write_message(passing, binary=isinstance(passing, bytes))
        except WebSocketClosedError:
            self.close()

    def on_close(self) -> None:
        if self.upstream is not None:
            self.upstream.close()

    async def _pump(self) -> None:
        bucket = self.gw.bucket(self.owner, self.server)
        try:
            while True:
                message = await self.upstream.read_message()
                if message is None:
                    break
                assert self.frames is not None
                for frame in self.frames.towards_browser(message):
                    await bucket.take(frame_size(frame))
                    await self._send(frame)
        except (WebSocketClosedError, StreamClosedError):
            pass
        except Exception:
            log.exception("websocket pump of %s/%s failed", self.owner, self.server)
        finally:
            if self.ws_connection is not None:
                self.close()

    async def _send(self, frame: str | bytes) -> None:
        """Write one frame towards the browser, waiting only while the browser's socket
        is backed up. Awaiting every write (tornado makes each a task) costs the pump
        two turns of the event loop per message, the latency of every kernel reply;
        the wait where data is still queued keeps the backpressure."""
        sent = self.write_message(frame, binary=isinstance(frame, bytes))
        connection = self.ws_connection
        stream = getattr(connection, "stream", None)
        if stream is not None and stream.writing():
            await sent
        else:
            sent.add_done_callback(_retrieve)

    def get_compression_options(self) -> None:
        return None

    def on_finish(self) -> None:
        return


@functools.lru_cache(maxsize=64)
def _page_csp(host: str) -> str:
    """The pages' policy for ``host``: websockets to this host only (one per host)."""
    return content.CSP.replace("connect-src 'self'", f"connect-src 'self' ws://{host} wss://{host}")


def _retrieve(done: Any) -> None:
    """Take a finished write's outcome (a closed socket is seen by the pump's next write)."""
    if not done.cancelled():
        done.exception()


def public_handlers(gateway: Gateway) -> list[Any]:
    """The public application's routes."""
    from jupyterhub.services.auth import HubOAuthCallbackHandler

    class Callback(HubOAuthCallbackHandler):
        hub_auth_class = GatewayOAuth

        def initialize(self) -> None:
            self.hub_auth = gateway.hub_auth

    return [
        (gateway.service_prefix + "oauth_callback", Callback),
        (r"/user/([^/]+)/([^/]+)(/.*)?", WorkspaceHandler, {"gateway": gateway}),
        (r".*", _NotHere),
    ]


class _NotHere(web.RequestHandler):
    def prepare(self) -> None:
        self.set_status(404)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"message": "not a workspace route"}))
