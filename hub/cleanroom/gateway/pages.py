"""How the gateway refuses: the clean room's 403 JSON for scripts, a page for browsers."""

from __future__ import annotations

import html
import json

RELEASE_HINT = (
    "To take results out of the clean room, request a release "
    "(right-click a file in the file browser, then \u201cRequest release\u2026\u201d)."
)
REASON = "Blocked by the clean room"


def wants_page(accept: str, path: str, fetch_mode: str) -> bool:
    """Whether the refusal should be an HTML page (a browser navigation)."""
    if fetch_mode == "navigate":
        return True
    return "text/html" in accept and not path.startswith("api/")


def refusal_json(message: str) -> str:
    """The JSON body of a refusal (the workspace extension's shape)."""
    return json.dumps({"message": f"{message} {RELEASE_HINT}", "reason": REASON})


def refusal_page(status: int, message: str) -> str:
    """A small HTML page of a refusal (no script; styles inline are allowed by our CSP)."""
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{status} {REASON}</title></head>"
        "<body style='font-family:sans-serif;max-width:40em;margin:4em auto'>"
        f"<h1>{REASON}</h1><p>{html.escape(message)}</p><p>{html.escape(RELEASE_HINT)}</p>"
        "<p><a href='/hub/home'>Back to your projects</a></p></body></html>"
    )
