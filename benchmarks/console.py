"""The operators' console's lists with many rows stored: ``python -m benchmarks.console``.

A fresh SQLite registry gets ``rows`` projects (each with one member and one image) and
``rows`` people, then the console's reads (:mod:`cleanroom.library.console_views`) are
timed for the first page, a page deep in the list, and a search: what each console
page asks of the database, whose cost grows with the rows stored (rendering a page of
50 rows does not). The rows are written in one journaled transaction of the registry's
writer (``RegistryDatabase.write``), not one domain call each, so that seeding 10,000
of each takes seconds, not minutes; the reads are the pages' own.

It reports; it never fails on time.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cleanroom.library import console_views as views

from benchmarks.stats import summary


def seed(url: str, rows: int) -> float:
    """Store ``rows`` projects and people; seconds it took."""
    from cleanroom.registry import Registry, events
    from cleanroom.registry.models import Membership, Project, ProjectImage, User

    start = time.perf_counter()
    registry = Registry(url)
    with registry.db.write() as tx:
        for i in range(rows):
            tx.session.add(User(name=f"u{i:05d}", roles="researcher"))
            project = Project(name=f"p{i:05d}", title=f"Project {i}", created_by="bench")
            project.images = [ProjectImage(image="notebook")]
            project.memberships = [Membership(user_name=f"u{i:05d}", added_by="bench")]
            tx.session.add(project)
        tx.journal(events.UserAdded(actor="bench", user="bulk", roles=(), password=False))
    return time.perf_counter() - start


def measure(rows: int = 10_000, repeats: int = 20) -> dict[str, Any]:
    """Milliseconds of each console read with ``rows`` projects and people stored."""
    from cleanroom.registry import Registry

    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("CLEANROOM_STATE_DIR", str(Path(tmp) / "state"))
        url = f"sqlite:///{tmp}/registry.sqlite"
        seconds = seed(url, rows)
        registry = Registry(url)
        deep = max(1, rows // views.PAGE_SIZE)
        cases: dict[str, Callable[[], Any]] = {
            "projects, first page": lambda: views.projects_page(registry, "", 1),
            f"projects, page {deep}": lambda: views.projects_page(registry, "", deep),
            "projects, search": lambda: views.projects_page(registry, "p09", 2),
            "people, first page": lambda: views.people_page(registry, "", 1),
            f"people, page {deep}": lambda: views.people_page(registry, "", deep),
            "people, search": lambda: views.people_page(registry, "u0", 3),
        }
        out: dict[str, Any] = {"rows": rows, "seed_seconds": round(seconds, 1), "reads_ms": {}}
        for name, read in cases.items():
            read()  # warm the connection pool and caches
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                read()
                times.append((time.perf_counter() - start) * 1000)
            out["reads_ms"][name] = summary(times)
        return out


def main() -> None:
    """Print the measurements as JSON."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.console")
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    print(json.dumps(measure(args.rows, args.repeats), indent=2))


if __name__ == "__main__":
    main()
