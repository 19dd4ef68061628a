"""Read-only view of the airlock's release requests, for data providers.

A release request "touches" a dataset when its project used that dataset: the request
came out of a workspace that mounted it. The airlock database is opened as it is (no
creation, no migration); a deployment without one simply has no releases yet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def releases_of_projects(projects: list[str]) -> list[dict[str, Any]]:
    """Every release request of ``projects``, with its state and files (newest last)."""
    try:
        from cleanroom.airlock.app import AirlockSettings
        from cleanroom.airlock.storage import SqlStorage, make_engine
    except ImportError:
        return []
    url = AirlockSettings().db_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return []
    storage = SqlStorage(make_engine(url))
    found = []
    for project in projects:
        for r in storage.list_requests(project=project):
            found.append(
                {
                    "id": r.id,
                    "project": r.project,
                    "author": r.author,
                    "state": str(r.state),
                    "created": r.created,
                    "files": [{"path": f.path, "sha256": f.sha256} for f in r.current_files()],
                }
            )
    return sorted(found, key=lambda x: str(x["created"]))
