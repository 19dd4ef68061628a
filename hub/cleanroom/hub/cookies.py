"""The attributes every cookie of the deployment carries (the hub's and the airlock's)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse


def cookie_options(public_url: str) -> dict[str, Any]:
    """``SameSite=Lax`` on every cookie, and ``Secure`` when browsers use https.

    Lax keeps the cookies off requests that another site's page makes the browser send
    (a forged form's POST, a script's fetch), which is what matters for forgery. Not
    Strict: a researcher who follows a link from elsewhere (an e-mail, a notice) must
    arrive logged in, and the hub's OAuth log-in comes back to a service by a top-level
    redirect that has to carry its state cookie.
    """
    options: dict[str, Any] = {"samesite": "Lax"}
    if urlparse(public_url).scheme == "https":
        options["secure"] = True
    return options
