"""The airlock service process: settings, the two listeners, start-up.

Started by JupyterHub as a managed service (``python -m cleanroom.airlock``), it reads
the hub's service environment (``JUPYTERHUB_SERVICE_URL``, ``JUPYTERHUB_SERVICE_PREFIX``,
``JUPYTERHUB_API_TOKEN``, ...) and its own ``CLEANROOM_AIRLOCK_*`` settings, then serves:

- the public listener at ``JUPYTERHUB_SERVICE_URL``, which the hub's proxy routes
  ``/services/airlock/`` to: the pages and the same API;
- the submission listener at ``CLEANROOM_AIRLOCK_SUBMIT_BIND`` (e.g. ``0.0.0.0:8082``),
  which serves only ``/api/v1/requests`` for workspaces (the host firewall lets project
  networks reach only this port and the hub API).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from cleanroom import paths
from cleanroom.hub.cookies import cookie_options
from cleanroom.hub.lifeline import end_with_hub
from cleanroom.lifecycle.keys import Keyring
from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from traitlets import Bool, Integer, Unicode, default
from traitlets.config import Configurable

from . import render
from .blobs import BlobStore
from .co_review import DataOwners, RegistryDataOwners, StaticDataOwners
from .database import open_storage
from .egress import egress_routes
from .exceptions import AirlockError, Misconfigured
from .membership import Membership, StaticMembership
from .policy import Policy, load_policy
from .service import Airlock
from .web import NoRouteHandler, api_routes, page_routes
from .web import max_body as web_max_body

log = logging.getLogger("cleanroom.airlock")
HERE = Path(__file__).resolve().parent


def _state_dir() -> Path:
    return paths.state_dir()


class AirlockSettings(Configurable):
    """Where the airlock keeps its data and where it listens.

    Each option defaults from an environment variable so the hub's service definition
    (``hub_config.airlock_service_config``) can set them.
    """

    db_url = Unicode(
        help="""SQLAlchemy URL of the airlock database ($CLEANROOM_AIRLOCK_DB_URL).

        Default: SQLite (WAL) at <state>/airlock/airlock.sqlite. PostgreSQL:
        postgresql://user:password@host/dbname.""",
    ).tag(config=True)

    @default("db_url")
    def _default_db_url(self) -> str:
        env = os.environ.get("CLEANROOM_AIRLOCK_DB_URL")
        if env:
            return env
        folder = _state_dir() / "airlock"
        folder.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{folder / 'airlock.sqlite'}"

    blob_dir = Unicode(
        help="Folder of the content-addressed blob store ($CLEANROOM_AIRLOCK_BLOB_DIR).",
    ).tag(config=True)

    @default("blob_dir")
    def _default_blob_dir(self) -> str:
        return os.environ.get("CLEANROOM_AIRLOCK_BLOB_DIR") or str(
            _state_dir() / "airlock" / "blobs"
        )

    encrypt_blobs = Bool(
        help="""Seal every stored file with its project's key (AES-256-GCM; see
        docs/lifecycle.md). Default: on, unless $CLEANROOM_ENCRYPTION is ``off``.""",
    ).tag(config=True)

    @default("encrypt_blobs")
    def _default_encrypt_blobs(self) -> bool:
        return os.environ.get("CLEANROOM_ENCRYPTION", "on") != "off"

    policy_file = Unicode(
        help="""The airlock policy YAML ($CLEANROOM_AIRLOCK_POLICY; default
        policies/airlock.yaml, or airlock.yaml in $CLEANROOM_POLICIES_DIR).""",
    ).tag(config=True)

    @default("policy_file")
    def _default_policy_file(self) -> str:
        from .policy import default_policy_path

        return str(default_policy_path())

    membership = Unicode(
        help="""Where project membership comes from ($CLEANROOM_AIRLOCK_MEMBERSHIP):

        - ``registry`` (default): the cleanroom registry ($CLEANROOM_REGISTRY_URL);
        - ``file:<path>``: a JSON object mapping project to a list of members;
        - ``module:callable``: a callable returning a ``Membership``.""",
    ).tag(config=True)

    @default("membership")
    def _default_membership(self) -> str:
        return os.environ.get("CLEANROOM_AIRLOCK_MEMBERSHIP", "registry")

    data_owners = Unicode(
        help="""Where the data's owners come from, for providers' co-review of releases
        ($CLEANROOM_AIRLOCK_DATA_OWNERS):

        - ``registry``: the cleanroom registry (the default when membership comes from it):
          each dataset version's provider, its classification's ``co_review`` and the
          registry's provider accounts;
        - ``file:<path>``: JSON ``{"accounts": {provider: [users]}, "uses": {project:
          [{"dataset", "version", "provider", "co_review"}]}}`` (tests, demos);
        - ``none``: no data asks for co-review (the default with any other membership,
          which has no data library behind it).""",
    ).tag(config=True)

    @default("data_owners")
    def _default_data_owners(self) -> str:
        fallback = "registry" if self.membership == "registry" else "none"
        return os.environ.get("CLEANROOM_AIRLOCK_DATA_OWNERS", fallback)

    public_url = Unicode(
        help="Where the public listener binds ($JUPYTERHUB_SERVICE_URL, set by the hub).",
    ).tag(config=True)

    @default("public_url")
    def _default_public_url(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:8090")

    prefix = Unicode(
        help="URL prefix of pages and API ($JUPYTERHUB_SERVICE_PREFIX, set by the hub).",
    ).tag(config=True)

    @default("prefix")
    def _default_prefix(self) -> str:
        prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/airlock/")
        return prefix if prefix.endswith("/") else prefix + "/"

    submit_bind = Unicode(
        help="""host:port of the submission-only listener ($CLEANROOM_AIRLOCK_SUBMIT_BIND,
        e.g. 0.0.0.0:8082); empty for none.""",
    ).tag(config=True)

    @default("submit_bind")
    def _default_submit_bind(self) -> str:
        return os.environ.get("CLEANROOM_AIRLOCK_SUBMIT_BIND", "")

    browser_url = Unicode(
        help="""The deployment's public URL as browsers see it ($CLEANROOM_PUBLIC_URL, else
        $JUPYTERHUB_PUBLIC_URL; the hub's configuration passes it on).

        Forms that change a request (votes, release, withdraw, comments) are accepted
        only with this Origin; cookies are marked Secure when it is https. Empty: the
        origin each request was addressed to (its Host header) is taken instead.""",
    ).tag(config=True)

    @default("browser_url")
    def _default_browser_url(self) -> str:
        return os.environ.get("CLEANROOM_PUBLIC_URL") or os.environ.get("JUPYTERHUB_PUBLIC_URL", "")

    threads = Integer(
        4, help="Worker threads for database, disk and check work off the event loop."
    ).tag(config=True)


def load_membership(spec: str) -> Membership:
    """A ``Membership`` from a settings string (see ``AirlockSettings.membership``)."""
    if spec.startswith("file:"):
        try:
            data = json.loads(Path(spec[5:]).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise Misconfigured(f"membership file {spec[5:]}: {exc}") from exc
        if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
            raise Misconfigured(f"membership file {spec[5:]}: expected {{project: [users]}}")
        return StaticMembership(data)
    if spec == "registry":
        from .membership import RegistryMembership

        return RegistryMembership()
    module, _, attr = spec.partition(":")
    if not attr:
        raise Misconfigured(
            f"CLEANROOM_AIRLOCK_MEMBERSHIP={spec!r}: use registry, file:<path> or module:callable"
        )
    try:
        make = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise Misconfigured(
            f"CLEANROOM_AIRLOCK_MEMBERSHIP={spec!r}: {module}:{attr} cannot be loaded ({exc})"
        ) from exc
    return make()


def load_data_owners(spec: str) -> DataOwners:
    """The ``DataOwners`` of a settings string (see ``AirlockSettings.data_owners``)."""
    if spec == "none":
        return StaticDataOwners()
    if spec == "registry":
        return RegistryDataOwners()
    if spec.startswith("file:"):
        try:
            return StaticDataOwners.from_json(
                json.loads(Path(spec[5:]).read_text(encoding="utf-8"))
            )
        except (OSError, ValueError) as exc:
            raise Misconfigured(f"data owners file {spec[5:]}: {exc}") from exc
    raise Misconfigured(
        f"CLEANROOM_AIRLOCK_DATA_OWNERS={spec!r}: use registry, file:<path> or none"
    )


def blob_store(settings: AirlockSettings) -> BlobStore:
    """The blob store of these settings: sealed per project unless encryption is off."""
    keyring = Keyring() if settings.encrypt_blobs else None
    return BlobStore(Path(settings.blob_dir), keyring)


def build_airlock(settings: AirlockSettings, policy: Policy | None = None) -> Airlock:
    """The service object from settings (also used by the command line)."""
    # Cheapest and most likely to be wrong first: the policy, then membership, then storage.
    policy = policy or load_policy(Path(settings.policy_file))
    membership = load_membership(settings.membership)
    data_owners = load_data_owners(settings.data_owners)
    return Airlock(
        storage=open_storage(settings.db_url),
        blobs=blob_store(settings),
        membership=membership,
        policy=policy,
        data_owners=data_owners,
    )


class OAuthCallbackHandler(HubOAuthCallbackHandler):
    """The hub's OAuth callback, with the service's own ``HubOAuth`` (and its cookie
    options), not the process-wide instance the handler would make for itself."""

    def initialize(self, hub_auth: HubOAuth) -> None:
        """Receive the service's ``HubOAuth``."""
        self.hub_auth = hub_auth


def make_apps(
    settings: AirlockSettings, airlock: Airlock, hub_auth: HubOAuth
) -> tuple[web.Application, web.Application]:
    """The public application (pages + API) and the submission-only application."""
    executor = ThreadPoolExecutor(settings.threads, thread_name_prefix="airlock")
    shared = {"airlock": airlock, "executor": executor, "hub_auth": hub_auth}
    prefix = settings.prefix
    cookies = cookie_options(settings.browser_url)
    # The OAuth state and token cookies (set by HubOAuth) and the XSRF cookie alike.
    hub_auth.cookie_options = {**hub_auth.cookie_options, **cookies}
    common: dict[str, Any] = {
        "template_path": str(HERE / "templates"),
        "airlock_prefix": prefix,
        "airlock_origin": settings.browser_url,
        "cookie_secret": os.urandom(32),
        "xsrf_cookie_kwargs": dict(cookies),
    }
    public_routes: list[Any] = [
        (prefix + "oauth_callback", OAuthCallbackHandler, {"hub_auth": hub_auth}),
        (
            prefix + "static/(.*)",
            web.StaticFileHandler,
            {"path": str(HERE / "static")},
        ),
    ]
    public_routes += [
        (r, h, shared) for r, h in api_routes(prefix) + page_routes(prefix) + egress_routes(prefix)
    ]
    public = web.Application(
        public_routes,
        xsrf_cookies=True,
        login_url=hub_auth.login_url,
        default_handler_class=NoRouteHandler,
        default_handler_args={**shared, "json": False},
        **common,
    )
    submit = web.Application(
        [(r, h, shared) for r, h in api_routes("/")],
        default_handler_class=NoRouteHandler,
        default_handler_args={**shared, "json": True},
        **common,
    )
    return public, submit


def _split_bind(bind: str) -> tuple[str, int]:
    host, _, port = bind.rpartition(":")
    return host or "0.0.0.0", int(port)


def main(argv: list[str] | None = None) -> int:
    """Run the service until SIGTERM (``python -m cleanroom.airlock``)."""
    logging.basicConfig(
        level=os.environ.get("CLEANROOM_AIRLOCK_LOG_LEVEL", "INFO"),
        format="[airlock %(levelname)1.1s %(asctime)s %(name)s] %(message)s",
    )
    end_with_hub()
    settings = AirlockSettings()
    if not os.environ.get("JUPYTERHUB_API_TOKEN"):
        raise SystemExit(
            "cleanroom airlock: JUPYTERHUB_API_TOKEN is not set; run it as a JupyterHub "
            "service (see cleanroom.airlock.hub_config.airlock_service_config)"
        )
    try:
        airlock = build_airlock(settings)
    except AirlockError as exc:
        # A bad policy or setting stops the service with its message, not a traceback.
        raise SystemExit(f"cleanroom airlock: {exc}") from None
    airlock.warm_up()
    # nbconvert's first conversion takes seconds; do it off the start-up path.
    threading.Thread(target=render.warm_up, name="warm-nbconvert", daemon=True).start()
    hub_auth = HubOAuth(
        api_token=os.environ["JUPYTERHUB_API_TOKEN"],
        cache_max_age=60,
    )
    public, submit = make_apps(settings, airlock, hub_auth)
    url = urlparse(settings.public_url)
    max_body = web_max_body(airlock.policy)
    # The submission handler sets each request's body limit itself (it streams the
    # body); these are the limits for every other handler.
    HTTPServer(public, xheaders=True, max_body_size=max_body, max_buffer_size=max_body).listen(
        url.port or 80, url.hostname or "127.0.0.1"
    )
    log.info("pages and API on %s%s", settings.public_url, settings.prefix)
    if settings.submit_bind:
        host, port = _split_bind(settings.submit_bind)
        HTTPServer(submit, max_body_size=max_body, max_buffer_size=max_body).listen(port, host)
        log.info("submission API on http://%s:%d/api/v1/requests", host, port)
    loop = IOLoop.current()
    # The hub stops managed services with SIGTERM (then SIGINT/SIGKILL): stop cleanly.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: loop.add_callback_from_signal(loop.stop))
    loop.start()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
