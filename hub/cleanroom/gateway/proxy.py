"""The public side of the gateway: ``/user/<owner>/<server>/...`` from the proxy.

One handler class carries plain HTTP and websockets (a websocket upgrade is a GET; kernel
and terminal sockets are relayed by :mod:`cleanroom.gateway.relay`, the viewer's VNC
stream by tornado's websocket classes). In
order, for every request: the hub says who it is (the gateway's own OAuth cookie or a
token); only the workspace's owner passes; browser writes must carry the gateway's
double-submit XSRF token; the route must be on the policy's allowlist; the workspace must
be registered. Then the request goes to the container with the gateway's token for that
server and a fresh nonce, and nothing of the answer goes further unless the answer
proves it comes from the real server, fits the caps and the budget, and passes the
content rules.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from jupyterhub.services.auth import HubOAuth, HubOAuthenticated
from tornado import httputil, web
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketClosedError, WebSocketHandler, websocket_connect

from cleanroom.gateway import forward, metrics, pages, proof, relay, viewer
from cleanroom.gateway.forward import Refused, route_kind
from cleanroom.gateway.frames import SocketRules
from cleanroom.gateway.front import credential_key
from cleanroom.gateway.messages import KernelRules
from cleanroom.gateway.policy import Route
from cleanroom.gateway.routes import Backend
from cleanroom.gateway.upstream import NoAnswer

if TYPE_CHECKING:
    from cleanroom.gateway.app import Gateway

log = logging.getLogger("cleanroom.gateway")

XSRF_COOKIE = "_xsrf"
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class GatewayOAuth(HubOAuth):
    """The gateway's hub OAuth client; its cookie covers every ``/user/`` path.

    The OAuth callback lives under the service's prefix, the workspaces under ``/user/``:
    the cookie (and the short-lived state cookie) are set on ``/`` so both see them. The
    cookie never reaches a container: the gateway forwards no browser cookie.
    """

    @property
    def cookie_path(self) -> str:
        return "/"


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

    # tornado's own XSRF check is not used: see _check_csrf.
    def check_xsrf_cookie(self) -> None:
        return

    # -- refusals ------------------------------------------------------------------
    def refuse(self, exc: Refused) -> None:
        """Answer a refusal, count it and put it on the record."""
        answer = forward.refusal(
            self.gw,
            exc,
            owner=self.owner,
            server=self.server,
            rest=self.rest,
            method=self.request.method or "GET",
            path=self.request.path,
            header=self.request.headers.get,
        )
        self.clear()
        self._write_answer(answer)

    def _write_answer(self, answer: forward.Answer) -> None:
        self.set_status(answer.status, answer.reason)
        self.clear_header("Content-Type")
        for name, value in answer.headers:
            self.set_header(name, value)
        if answer.body:
            self.write(answer.body)
        self.finish()

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
        key = credential_key(
            self.request.headers.get("Authorization"),
            self.request.headers.get("Cookie"),
            by_token=not self.cookie_auth,
        )
        if key is not None:  # the lean path may now take these credentials (front.py)
            self.gw.admissions.admit(key, self.owner, self.server)
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
        return forward.upstream_headers(
            self.gw, self.backend, self.request.headers.get, self.request.host, nonce
        )

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
        answer = await forward.forward(
            self.gw,
            self.backend,
            kind=self.kind,
            method=method,
            uri=self.request.uri or "/",
            body=self.request.body if method in ("POST", "PUT", "PATCH") else None,
            header=self.request.headers.get,
            host=self.request.host,
        )
        self.clear()
        self._set_xsrf_cookie()
        self._write_answer(answer)

    def _security_headers(self) -> None:
        for name, value in forward.security_headers(self.request.host):
            self.set_header(name, value)
        self._set_xsrf_cookie()

    def _set_xsrf_cookie(self) -> None:
        if self.cookie_auth and not self.get_cookie(XSRF_COOKIE):
            # The gateway's own double-submit token: JupyterLab reads this cookie and
            # sends it back as X-XSRFToken on every write.
            self.set_cookie(
                XSRF_COOKIE,
                secrets.token_hex(16),
                path=f"/user/{self.owner}/{self.server}/",
                samesite="Strict",
            )

    # -- websockets ----------------------------------------------------------------
    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        if self.viewer_path is not None:
            # noVNC asks for websockify's "binary": the VNC stream is not Jupyter's.
            return "binary" if "binary" in subprotocols else None
        # No subprotocol: the server (and so the browser) speaks Jupyter's JSON protocol,
        # which the gateway reads; v1.kernel.websocket.jupyter.org is never chosen.
        return None

    async def _open_websocket(self) -> None:
        """A kernel's or a terminal's websocket: the workspace's server is connected and
        proven, then the browser answered and both sockets handed to a relay
        (:mod:`cleanroom.gateway.relay`) that puts every frame through the rules."""
        assert self.backend is not None
        problem = relay.handshake_problem(self.request.headers.get)
        if problem is not None:
            self.refuse(Refused(400, "not_allowed", problem))
            return
        if self._check_cross_origin(self.check_origin) is not None:
            self.refuse(Refused(403, "csrf", "Websockets from other sites are refused."))
            return
        take_socket = getattr(self.request.connection, "take_socket", None)
        if take_socket is None:  # only the lean front (front.py) hands sockets over
            self.refuse(Refused(400, "not_allowed", "Websockets come through the front."))
            return
        nonce = proof.new_nonce()
        try:
            upstream = await relay.connect(
                self.backend.target,
                self.request.uri or "/",
                self._upstream_headers(nonce),
                self.backend.secret,
                nonce,
            )
        except relay.ProofFailed:
            self.refuse(Refused(502, "proof", "The workspace's server could not prove it is real."))
            return
        except relay.HandshakeFailed as exc:
            self.refuse(Refused(502, "backend", f"The workspace did not accept ({exc})."))
            return
        kernel = None
        if self.rest.startswith("api/kernels/"):
            kernel = KernelRules(self.gw.policy.websocket, self.gw.policy.http.max_image_bytes)
        rules = SocketRules(
            self.gw,
            self.owner,
            self.server,
            "kernel" if kernel else ("terminal" if self.kind == "terminal" else self.kind),
            self.rest,
            kernel,
        )
        sock, unread, unsent = take_socket()
        # The answer is the relay's from here on (what RequestHandler.detach does).
        self._finished = True
        greeting = unsent + relay.accept_head(self.request.headers["Sec-WebSocket-Key"])
        relay.Relay(self.gw, rules, sock, unread, greeting, upstream, self.backend.secret)

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
        self.gw.spawn(self._pump_viewer())

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
        """The viewer's VNC stream: keys and pointer, passed on."""
        if self.upstream is None:
            return
        if len(message) > self.gw.policy.http.max_request_bytes:
            self.close(1009, "message too large")
            return
        try:
            self.upstream.write_message(message, binary=isinstance(message, bytes))
        except WebSocketClosedError:
            self.close()

    def on_close(self) -> None:
        if self.upstream is not None:
            self.upstream.close()

    async def _send(self, frame: str | bytes) -> None:
        """Write one frame towards the browser, waiting only while the browser's socket
        is backed up (the wait keeps the backpressure)."""
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
