"""The gateway process: settings (traitlets), state, the internal API, the event loop.

Started by the hub as a managed service (``python -m cleanroom.gateway``). Two listeners
on loopback: the public one, which the proxy sends ``/user/<name>/<project>/`` and the
gateway's OAuth callback to, and the internal API, which only holders of the gateway's
API token (the spawner, the command line) may call: routes, readiness, usage, grants and
metrics.

Why tornado: it is already the stack of JupyterHub, jupyter_server and their OAuth client
(``HubOAuth``), it has an async HTTP client and a websocket client and server, and it
carries JupyterLab within the overheads measured in ``docs/benchmarks.md``.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import uvloop
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from tornado import httputil, web
from traitlets import Integer, Unicode, default
from traitlets.config import Application

from cleanroom import paths
from cleanroom.errors import CleanroomError, Forbidden, InvalidInput
from cleanroom.gateway import metrics, proof
from cleanroom.gateway.budget import Budgets
from cleanroom.gateway.deciders import GrantDecider
from cleanroom.gateway.front import Admissions, Front
from cleanroom.gateway.ledger import Ledger, journal_writer
from cleanroom.gateway.messages import TokenBucket
from cleanroom.gateway.policy import EgressPolicy, load_policy
from cleanroom.gateway.proxy import GatewayOAuth, public_handlers
from cleanroom.gateway.relay import Relay
from cleanroom.gateway.routes import RouteTable, backend_from
from cleanroom.gateway.upstream import NoAnswer, UpstreamClient
from cleanroom.hub.lifeline import end_with_hub

SERVICE_NAME = "cleanroom-gateway"
# A route's readiness: checked this often, for at most this long per API request.
READY_CHECK_SECONDS = 0.05
READY_WAIT_MAX = 10.0
log = logging.getLogger("cleanroom.gateway")


class Gateway:
    """The gateway's state, shared by its handlers."""

    def __init__(
        self,
        policy: EgressPolicy,
        routes: RouteTable,
        budgets: Budgets,
        ledger: Ledger,
        hub_auth: Any,
        *,
        api_token: str,
        service_name: str = SERVICE_NAME,
        service_prefix: str = f"/services/{SERVICE_NAME}/",
        usage_path: Path | None = None,
        decider: GrantDecider | None = None,
    ) -> None:
        self.policy = policy
        self.routes = routes
        self.budgets = budgets
        self.ledger = ledger
        self.hub_auth = hub_auth
        self.api_token = api_token
        self.service_name = service_name
        self.service_prefix = service_prefix
        self.usage_path = usage_path
        self.decider = decider or GrantDecider(paths.registry_url())
        self.buckets: dict[tuple[str, str], TokenBucket] = {}
        # Each server start's own XSRF cookie, kept by the gateway (proxy.py): (owner,
        # server) -> (that start's secret, "_xsrf=..."); never sent to a browser.
        self.server_cookies: dict[tuple[str, str], tuple[str, str]] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        # Open websocket relays (cleanroom.gateway.relay), closed when the front closes.
        self.relays: set[Relay] = set()
        # Credentials the full handler admitted, for the lean path (front.py).
        self.admissions = Admissions()
        self._client: UpstreamClient | None = None

    @property
    def client(self) -> UpstreamClient:
        """The client towards workspace servers (:mod:`cleanroom.gateway.upstream`):
        connections kept alive per server, answers over the cap refused as they arrive."""
        if self._client is None:
            self._client = UpstreamClient(max_body_size=self.policy.http.max_response_bytes)
        return self._client

    def bucket(self, user: str, project: str) -> TokenBucket:
        """The output rate bucket of one researcher x project (shared by all sockets)."""
        key = (user, project)
        if key not in self.buckets:
            ws = self.policy.websocket
            self.buckets[key] = TokenBucket(ws.rate_bytes_per_second, ws.rate_burst_bytes)
        return self.buckets[key]

    def close_relays(self, owner: str, server: str, keep_secret: str | None = None) -> int:
        """Close the open websockets of a workspace whose route went (or changed to
        another start of its server: those of ``keep_secret``'s start stay); how many."""
        closing = [
            relay
            for relay in self.relays
            if (relay.rules.owner, relay.rules.server) == (owner, server)
            and relay.secret != keep_secret
        ]
        for relay in closing:
            relay.close(1001, "the workspace stopped")
        return len(closing)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` in the background, keeping a reference until it ends."""
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # -- bookkeeping every second ---------------------------------------------------
    def account(self) -> None:
        """Move closed hours and alerts into the ledger; set the remaining-bytes gauges
        (here, not per message: they also move when a window refills); save usage."""
        for user, project in list(self.budgets.usage):
            metrics.REMAINING.labels(user, project).set(self.budgets.remaining(user, project))
        for total in self.budgets.take_closed():
            self.ledger.record(
                "egress.hour",
                f"{total.user}/{total.project}",
                hour=total.hour,
                bytes=total.bytes,
                by_kind=total.by_kind,
                exempt_bytes=total.exempt_bytes,
            )
        for user, project, used, limit in self.budgets.take_alerts():
            metrics.ALERTS.labels(user, project).inc()
            self.ledger.record(
                "egress.alert",
                f"{user}/{project}",
                day_bytes=used,
                day_limit=limit,
                threshold=self.policy.budget.alert_at_fraction,
            )
        self.save_usage()

    def save_usage(self) -> None:
        """Write the budgets' counters (mode 0600), so a restart keeps them."""
        if self.usage_path is None:
            return
        tmp = self.usage_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(self.budgets.to_json(), f)
        os.replace(tmp, self.usage_path)

    async def ticker(self) -> None:
        """Every second: accounting and the journal."""
        while True:
            await asyncio.sleep(1)
            try:
                self.account()
                await self.ledger.flush()
                if self._client is not None:
                    self._client.prune()
            except Exception:
                log.exception("gateway bookkeeping failed")

    async def wait_ready(self, owner: str, server: str, seconds: float) -> bool:
        """Whether the registered server answers with a valid proof within ``seconds``,
        checked every ``READY_CHECK_SECONDS`` here, next to the server (one API request
        from the spawner instead of one per check: on a small host those requests took
        CPU the booting server needed). False at once when the route goes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            if await self.is_ready(owner, server):
                return True
            if self.routes.get(owner, server) is None or loop.time() >= deadline:
                return False
            await asyncio.sleep(READY_CHECK_SECONDS)

    async def is_ready(self, owner: str, server: str) -> bool:
        """Whether the registered server answers with a valid proof."""
        backend = self.routes.get(owner, server)
        if backend is None:
            return False
        nonce = proof.new_nonce()
        headers = httputil.HTTPHeaders(
            {"Authorization": f"token {backend.token}", proof.NONCE_HEADER: nonce}
        )
        try:
            reply = await self.client.fetch(
                f"{backend.target}{backend.prefix}api", headers=headers, timeout=5
            )
        except NoAnswer:  # refused, reset, timed out or cut short
            return False
        if not (
            reply.code < 500
            and proof.is_valid(backend.secret, nonce, reply.headers.get(proof.PROOF_HEADER))
        ):
            return False
        if backend.viewer:
            # Restricted mode: ready once the viewer serves its page too.
            try:
                page = await self.client.fetch(f"{backend.viewer}/index.html", timeout=5)
            except NoAnswer:
                return False
            return page.code == 200
        return True


# -- the internal API -------------------------------------------------------------
class _ApiHandler(web.RequestHandler):
    def initialize(self, gateway: Gateway) -> None:
        self.gw = gateway

    def prepare(self) -> None:
        sent = self.request.headers.get("Authorization", "")
        expected = f"token {self.gw.api_token}"
        if not hmac.compare_digest(sent.encode(), expected.encode()):
            raise web.HTTPError(403, "the gateway's API needs its token")

    def check_xsrf_cookie(self) -> None:
        return  # token-authenticated API, no cookies

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = getattr(exc, "log_message", None) or str(exc or self._reason)
        if isinstance(exc, web.HTTPError) and exc.log_message and exc.args:
            message = exc.log_message % exc.args
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"message": message}))

    def body(self) -> Any:
        try:
            return json.loads(self.request.body or b"null")
        except ValueError as exc:
            raise web.HTTPError(400, "the body must be JSON") from exc

    def answer(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))


class RouteApiHandler(_ApiHandler):
    """``PUT``/``DELETE /api/routes/<owner>/<server>``; ``GET`` says whether it is ready."""

    def put(self, owner: str, server: str) -> None:
        try:
            backend = backend_from(owner, server, self.body())
        except InvalidInput as exc:
            raise web.HTTPError(400, str(exc)) from exc
        self.gw.routes.put(backend)
        # Sockets to an earlier start of this server do not outlive its route.
        self.gw.close_relays(owner, server, keep_secret=backend.secret)
        metrics.ROUTES.set(len(self.gw.routes.routes))
        self.gw.ledger.record(
            "egress.route",
            f"{owner}/{server}",
            target=backend.target,
            manifest_files=len(backend.manifest),
        )
        self.answer({"owner": owner, "server": server, "target": backend.target})

    def delete(self, owner: str, server: str) -> None:
        found = self.gw.routes.remove(owner, server)
        self.gw.server_cookies.pop((owner, server), None)
        self.gw.close_relays(owner, server)
        metrics.ROUTES.set(len(self.gw.routes.routes))
        self.answer({"removed": found})

    async def get(self, owner: str, server: str) -> None:
        """``?wait=SECONDS`` (at most ``READY_WAIT_MAX``): answer once the server is
        ready or the time is up; without it, at once."""
        try:
            wait = float(self.get_argument("wait", "0"))
        except ValueError:
            wait = -1.0
        if not 0 <= wait <= READY_WAIT_MAX:  # also refuses nan
            raise web.HTTPError(400, f"wait must be 0 to {READY_WAIT_MAX:g} seconds")
        if self.gw.routes.get(owner, server) is None:
            raise web.HTTPError(404, f"no route for {owner}/{server}")
        ready = await self.gw.wait_ready(owner, server, wait)
        self.answer({"ready": ready}, 200 if ready else 503)


class UsageApiHandler(_ApiHandler):
    """``GET /api/usage``: every researcher x project's usage (``?user=``, ``?project=``)."""

    def get(self) -> None:
        user = self.get_argument("user", "")
        project = self.get_argument("project", "")
        if user and project:
            self.answer([self.gw.budgets.status(user, project)])
            return
        rows = [
            s
            for s in self.gw.budgets.all_status()
            if (not user or s["user"] == user) and (not project or s["project"] == project)
        ]
        self.answer(rows)


class GrantApiHandler(_ApiHandler):
    """``POST /api/grants`` ``{user, project, bytes, reason}`` and the deciding person's
    own credential, ``cli_token`` (``cleanroom login``) or ``hub_token`` (the signed-in
    officer's, forwarded by the airlock's pages): more budget today. The gateway finds
    out who decides from that credential (:mod:`cleanroom.gateway.deciders`); it takes
    no name of a decider from the body."""

    async def post(self) -> None:
        body = self.body()
        if not isinstance(body, dict):
            raise web.HTTPError(400, "the body must be a JSON object")
        if "by" in body:
            raise web.HTTPError(
                400,
                "a grant names no decider: send the deciding person's credential "
                "(cli_token or hub_token) and the gateway records who they are",
            )
        user, project, nbytes = body.get("user"), body.get("project"), body.get("bytes")
        reason = body.get("reason", "")
        for name, value in (("user", user), ("project", project)):
            if not isinstance(value, str) or not value:
                raise web.HTTPError(400, f"{name} must be a name")
        if isinstance(nbytes, bool) or not isinstance(nbytes, int) or not 0 < nbytes <= 2**40:
            raise web.HTTPError(400, "bytes must be a whole number > 0")
        if not isinstance(reason, str) or not reason.strip() or len(reason) > 500:
            raise web.HTTPError(400, "reason must be text of 1 to 500 characters")
        assert isinstance(user, str) and isinstance(project, str)
        by = await self.decider(user, body)
        self.gw.budgets.grant(user, project, nbytes)
        self.gw.ledger.record(
            "egress.grant", f"{user}/{project}", bytes=nbytes, by=by, reason=reason
        )
        self.gw.save_usage()
        self.answer(self.gw.budgets.status(user, project))

    async def decider(self, grantee: str, body: dict[str, Any]) -> str:
        """The person deciding, from their own credential, once they may (else 403)."""
        cli_token, hub_token = body.get("cli_token"), body.get("hub_token")
        given = [t for t in (cli_token, hub_token) if t is not None]
        if len(given) != 1 or not isinstance(given[0], str) or not given[0].strip():
            raise web.HTTPError(
                403, "a grant needs the deciding person's credential: cli_token or hub_token"
            )
        loop = asyncio.get_running_loop()
        try:
            if cli_token is not None:
                person = await loop.run_in_executor(
                    None, self.gw.decider.person_of_cli_token, cli_token
                )
            else:
                model = await self.gw.hub_auth.user_for_token(hub_token, sync=False)
                if not model or model.get("kind", "user") != "user":
                    raise Forbidden("this hub token is unknown, expired or not a person's")
                person = str(model["name"])
            return str(await loop.run_in_executor(None, self.gw.decider.check, person, grantee))
        except CleanroomError as exc:
            raise web.HTTPError(exc.status, "%s", str(exc)) from exc


class MetricsHandler(_ApiHandler):
    """``GET /metrics`` for Prometheus (with the gateway's token)."""

    def get(self) -> None:
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest())


def api_handlers(gateway: Gateway) -> list[Any]:
    """The internal application's routes."""
    args = {"gateway": gateway}
    return [
        (r"/api/routes/([^/]+)/([^/]+)", RouteApiHandler, args),
        (r"/api/usage", UsageApiHandler, args),
        (r"/api/grants", GrantApiHandler, args),
        (r"/metrics", MetricsHandler, args),
    ]


# -- the process ----------------------------------------------------------------------
class GatewayApp(Application):
    """``python -m cleanroom.gateway``: the egress gateway of one deployment."""

    name = "cleanroom-gateway"
    description = "The clean room's egress gateway (a JupyterHub managed service)."

    port = Integer(
        help="""Port of the public listener on 127.0.0.1 (the proxy sends workspace
        routes here). Default: $CLEANROOM_GATEWAY_PORT or 8003.""",
    ).tag(config=True)

    api_port = Integer(
        help="""Port of the internal API on 127.0.0.1 (routes, usage, grants, metrics;
        token-protected). Default: $CLEANROOM_GATEWAY_API_PORT or 8004.""",
    ).tag(config=True)

    state_dir = Unicode(
        help="Folder of the gateway's state (routes, usage). Default: <state>/gateway.",
    ).tag(config=True)

    policies_dir = Unicode(
        help="Folder holding egress.yaml. Default: the deployment's policies folder.",
    ).tag(config=True)

    registry_url = Unicode(
        help="The registry whose journal gets the gateway's records. Default: the state's.",
    ).tag(config=True)

    group = Unicode(
        "cleanroom-gateway",
        help="""System group the gateway runs as (when started as root): the host firewall
        lets only sockets of this group open connections to workspace servers. Empty:
        keep the hub's group (Kubernetes, where NetworkPolicies guard the server port).""",
    ).tag(config=True)

    @default("port")
    def _default_port(self) -> int:
        return int(os.environ.get("CLEANROOM_GATEWAY_PORT") or 8003)

    @default("api_port")
    def _default_api_port(self) -> int:
        return int(os.environ.get("CLEANROOM_GATEWAY_API_PORT") or 8004)

    @default("state_dir")
    def _default_state_dir(self) -> str:
        return str(paths.state_dir() / "gateway")

    @default("policies_dir")
    def _default_policies_dir(self) -> str:
        return str(paths.policies_dir())

    @default("registry_url")
    def _default_registry_url(self) -> str:
        return paths.registry_url()

    def build(self) -> Gateway:
        """The gateway's state from its settings (raises on a bad policy)."""
        from cleanroom.settings import secret

        policy = load_policy(self.policies_dir)
        state = Path(self.state_dir)
        state.mkdir(parents=True, exist_ok=True)
        os.chmod(state, 0o700)
        budgets = Budgets(policy.budget)
        usage_path = state / "usage.json"
        if usage_path.exists():
            budgets.load_json(json.loads(usage_path.read_text() or "{}"))
        service_name = os.environ.get("JUPYTERHUB_SERVICE_NAME", SERVICE_NAME)
        return Gateway(
            policy,
            RouteTable(state / "routes.json"),
            budgets,
            Ledger(journal_writer(self.registry_url)),
            GatewayOAuth.instance(),
            api_token=secret("gateway-api-token"),
            service_name=service_name,
            service_prefix=os.environ.get(
                "JUPYTERHUB_SERVICE_PREFIX", f"/services/{service_name}/"
            ),
            usage_path=usage_path,
            decider=GrantDecider(self.registry_url),
        )

    def start(self) -> None:
        """Run until SIGTERM."""
        from cleanroom.settings import secret_file

        logging.basicConfig(level=logging.INFO, format="[gateway %(levelname)s] %(message)s")
        # tornado's access log at INFO is a line for every request that passed (most of the
        # cost of a small answer's logging); 4xx and 5xx stay logged, and every refusal is
        # logged and journaled by the gateway itself.
        logging.getLogger("tornado.access").setLevel(logging.WARNING)
        try:
            gateway = self.build()
        except CleanroomError as exc:
            print(f"cleanroom gateway: {exc}", file=sys.stderr)
            raise SystemExit(2) from exc
        cookie_secret = secret_file("gateway-cookie-secret").read_bytes().strip()
        public = web.Application(public_handlers(gateway), cookie_secret=cookie_secret)
        internal = web.Application(api_handlers(gateway))
        drop_group(self.group)
        end_with_hub()  # after the group changed: the kernel forgets the request then

        uvloop.run(self._serve(gateway, public, internal))

    async def _serve(
        self, gateway: Gateway, public: web.Application, internal: web.Application
    ) -> None:
        # The lean front takes every connection; the tornado application answers the
        # requests it passes on, websocket handshakes included (front.py).
        front = Front(gateway, public)
        front.listen(self.port, "127.0.0.1")
        internal.listen(self.api_port, "127.0.0.1")
        metrics.ROUTES.set(len(gateway.routes.routes))
        log.info("listening on 127.0.0.1:%d (API on %d)", self.port, self.api_port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        ticker = asyncio.ensure_future(gateway.ticker())
        await stop.wait()
        ticker.cancel()
        front.close()
        gateway.account()
        await gateway.ledger.flush()


def drop_group(name: str) -> None:
    """Run as the gateway's system group (the firewall's mark), when started as root.

    The gateway keeps the hub's user: it writes the registry's journal, which that user
    owns. What the firewall matches is the group of the socket's owner.
    """
    if not name or os.geteuid() != 0:
        return  # "": no host firewall matches the group (the Kubernetes backend)
    import grp

    try:
        gid = grp.getgrnam(name).gr_gid
    except KeyError as exc:
        raise SystemExit(
            f"cleanroom gateway: system group {name!r} is missing "
            "(`cleanroom firewall install` creates it)"
        ) from exc
    os.setgroups([])
    os.setgid(gid)
    os.setegid(gid)


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m cleanroom.gateway``."""
    app = GatewayApp()
    app.initialize(argv)
    app.start()
