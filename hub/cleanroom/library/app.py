"""The data library's service process (``python -m cleanroom.library``).

Started by JupyterHub as a managed service, it reads the hub's service environment
(``JUPYTERHUB_SERVICE_URL``, ``JUPYTERHUB_SERVICE_PREFIX``, ``JUPYTERHUB_API_TOKEN``) and
the deployment's ``CLEANROOM_*`` settings, then serves the catalogue and the providers'
pages (:mod:`cleanroom.library.web`), the applications (:mod:`.applications_web`) and the
operators' console (:mod:`.console`) behind the hub's proxy at ``/services/library/``.
Who is signed in comes from the hub's OAuth; what they may do, from the registry.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from jupyterhub.services.auth import HubOAuth
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop

from cleanroom.airlock.app import OAuthCallbackHandler
from cleanroom.hub.cookies import cookie_options
from cleanroom.hub.lifeline import end_with_hub
from cleanroom.registry.store import Registry, shared_registry

from . import applications_web, console
from .web import HealthHandler, NoRouteHandler, routes

log = logging.getLogger("cleanroom.library")
HERE = Path(__file__).resolve().parent
AIRLOCK_STATIC = HERE.parent / "airlock" / "static"
"""The airlock's stylesheet: the library's pages share its look, from the one file."""


def make_app(
    registry: Registry, hub_auth: HubOAuth, *, prefix: str, origin: str, threads: int = 4
) -> web.Application:
    """The library's tornado application under ``prefix`` (forms only from ``origin``)."""
    executor = ThreadPoolExecutor(threads, thread_name_prefix="library")
    shared = {"registry": registry, "executor": executor, "hub_auth": hub_auth}
    cookies = cookie_options(origin)
    hub_auth.cookie_options = {**hub_auth.cookie_options, **cookies}
    handlers: list[Any] = [
        (prefix + "oauth_callback", OAuthCallbackHandler, {"hub_auth": hub_auth}),
        (prefix + "static/(airlock.css)", web.StaticFileHandler, {"path": str(AIRLOCK_STATIC)}),
        (prefix + "health", HealthHandler),
    ]
    pages = routes(prefix) + applications_web.routes(prefix) + console.routes(prefix)
    handlers += [(route, handler, shared) for route, handler in pages]
    return web.Application(
        handlers,
        template_path=str(HERE / "templates"),
        library_prefix=prefix,
        library_origin=origin,
        cookie_secret=os.urandom(32),
        xsrf_cookies=True,
        xsrf_cookie_kwargs=dict(cookies),
        login_url=hub_auth.login_url,
        default_handler_class=NoRouteHandler,
        default_handler_args=shared,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the service until SIGTERM."""
    logging.basicConfig(
        level=os.environ.get("CLEANROOM_LIBRARY_LOG_LEVEL", "INFO"),
        format="[library %(levelname)1.1s %(asctime)s %(name)s] %(message)s",
    )
    end_with_hub()
    if not os.environ.get("JUPYTERHUB_API_TOKEN"):
        raise SystemExit(
            "cleanroom library: JUPYTERHUB_API_TOKEN is not set; run it as a JupyterHub "
            "service (see cleanroom.library.hub_config.library_service_config)"
        )
    url = urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:8093"))
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/library/")
    origin = os.environ.get("CLEANROOM_PUBLIC_URL", "")
    hub_auth = HubOAuth(api_token=os.environ["JUPYTERHUB_API_TOKEN"], cache_max_age=60)
    app = make_app(shared_registry(), hub_auth, prefix=prefix, origin=origin)
    HTTPServer(app, xheaders=True, max_body_size=64 * 1024).listen(
        url.port or 80, url.hostname or "127.0.0.1"
    )
    log.info("pages on %s%s", url.geturl(), prefix)
    loop = IOLoop.current()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: loop.add_callback_from_signal(loop.stop))
    loop.start()
    return 0


if __name__ == "__main__":
    sys.exit(main())
