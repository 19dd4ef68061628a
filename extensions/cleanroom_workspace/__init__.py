"""cleanroom-workspace: the Jupyter server extension of a clean-room workspace.

It refuses the ordinary ways of taking bytes out of a workspace through the browser
(downloads, views, exports, contents reads of data, raw reads), limits what comes in
(uploads) and what kernel output reaches the browser, and offers the one sanctioned way
out: a release request forwarded to the airlock. See docs/workspace-routes.md.
"""

from __future__ import annotations

from typing import Any

from .extension import link_extension, load_extension

__version__ = "0.1.0"


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "cleanroom_workspace"}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "cleanroom-workspace"}]


def _link_jupyter_server_extension(serverapp: Any) -> None:
    link_extension(serverapp)


def _load_jupyter_server_extension(serverapp: Any) -> None:
    load_extension(serverapp)
