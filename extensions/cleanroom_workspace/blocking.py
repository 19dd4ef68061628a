"""Routes the workspace answers with a refusal whatever else is installed.

These handlers are added by the extension for the download, view, export and proxy
routes. Extension handlers are matched before the server's own, so they stand even if
a handler further down were ever served without the authorizer's check.
"""

from __future__ import annotations

import html
import json

from tornado import web

from .errors import BLOCKED_REASON, RELEASE_HINT

# (route below the base URL, what it was for)
BLOCKED_ROUTES = [
    (r"files/.*", "Files cannot be downloaded from a clean-room workspace."),
    (r"view/.*", "Files cannot be opened in a new browser tab from a clean-room workspace."),
    (r"nbconvert/.*", "Notebooks cannot be exported or downloaded from a clean-room workspace."),
    (r"proxy/.*", "Ports inside a clean-room workspace are not reachable through the browser."),
]

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Blocked by the clean room</title>
<style>body{{font-family:sans-serif;max-width:40em;margin:4em auto;line-height:1.5}}</style>
</head><body><h1>403: blocked by the clean room</h1><p>{message}</p><p>{hint}</p></body></html>
"""


def wants_json(handler: web.RequestHandler) -> bool:
    """Whether the client is a script (JSON) rather than a browser navigation (a page)."""
    accept = handler.request.headers.get("Accept", "")
    if "text/html" in accept:
        return False
    return "json" in accept or "/api/" in handler.request.path or not accept


class BlockedRouteHandler(web.RequestHandler):
    """Answers every method with 403 and how to request a release instead."""

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

    def initialize(self, message: str) -> None:
        """Keep the route's message."""
        self.message = message

    def check_xsrf_cookie(self) -> None:
        """No XSRF check: the answer is a refusal whoever asks."""

    def _refuse(self, *args: str, **kwargs: str) -> None:
        self.set_status(403, BLOCKED_REASON)
        self.set_header("Cache-Control", "no-store")
        if wants_json(self):
            self.set_header("Content-Type", "application/json")
            body = {"message": f"{self.message} {RELEASE_HINT}", "reason": BLOCKED_REASON}
            self.finish(json.dumps(body))
        else:
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.finish(
                PAGE.format(message=html.escape(self.message), hint=html.escape(RELEASE_HINT))
            )

    get = post = put = patch = delete = options = _refuse

    def head(self, *args: str, **kwargs: str) -> None:
        """HEAD gets the status without a body."""
        self.set_status(403, BLOCKED_REASON)
        self.finish()
