"""The docs name only files, folders, modules and tests that exist.

Every backticked name in ``README.md`` and ``docs/*.md`` that reads as a repository path
(it starts with a top-level entry of the checkout, or ends in ``.py``), a pytest node id
(``path::test``) or a module of the ``cleanroom`` package (``cleanroom.x.y``, with
attributes after the module) must resolve. Paths the deployment creates at run time (the
root-anchored entries of ``.gitignore``, such as ``state/``) are not in the checkout and
are left out.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

import pytest
from cleanroom.paths import repo_root

ROOT = repo_root()
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
TOP = {p.name for p in ROOT.iterdir() if not p.name.startswith(".")}
GENERATED = tuple(
    line.strip().strip("/") + "/"
    for line in (ROOT / ".gitignore").read_text().splitlines()
    if line.startswith("/")
)
TICKED = re.compile(r"`([^`\n]+)`")
FENCED = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def named(doc: Path) -> list[str]:
    """The backticked names of a document, outside fenced code blocks."""
    text = FENCED.sub("", doc.read_text(encoding="utf-8"))
    return [m.group(1).strip() for m in TICKED.finditer(text)]


def _is_generated(path: str) -> bool:
    return any(path == g.rstrip("/") or path.startswith(g) for g in GENERATED)


def missing_path(name: str) -> str | None:
    """Why ``name`` is a repository path (or node id) that does not exist, else None."""
    if " " in name or any(c in name for c in "<>*${}|=") or name.startswith(("/", "~")):
        return None
    path, _, test = name.partition("::")
    first = path.split("/")[0]
    if not (first in TOP or first == "state" or ("/" in path and path.endswith(".py"))):
        return None
    if first == "state" or _is_generated(path):
        return None
    if not (ROOT / path).exists():
        return f"{path} does not exist"
    if test:
        source = (ROOT / path).read_text(encoding="utf-8")
        if not re.search(rf"^\s*(?:async\s+)?def {re.escape(test.split('[')[0])}\(", source, re.M):
            return f"{path} has no test {test}"
    return None


def missing_module(name: str) -> str | None:
    """Why ``name`` (``cleanroom.a.b[.attr][()]``) names no module or attribute, else None.

    ``cleanroom.<x>`` alone, where ``<x>`` is no module, is a container label (such as
    ``cleanroom.user``), not a module reference.
    """
    if not re.fullmatch(r"cleanroom(\.\w+)+(\(.*\))?", name):
        return None
    parts = name.split("(")[0].split(".")
    for size in range(len(parts), 1, -1):
        module = ".".join(parts[:size])
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:
            found = False
        if found:
            break
    else:
        return None if len(parts) == 2 else f"no module {'.'.join(parts[:2])}"
    obj = importlib.import_module(module)
    for attr in parts[size:]:
        if not hasattr(obj, attr):
            return f"{module} has no {'.'.join(parts[size:])}"
        obj = getattr(obj, attr)
    return None


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_the_docs_name_only_what_exists(doc: Path) -> None:
    wrong = sorted(
        {
            f"`{name}`: {why}"
            for name in named(doc)
            if (why := missing_path(name) or missing_module(name)) is not None
        }
    )
    assert wrong == [], f"{doc.relative_to(ROOT)} names what does not exist:\n" + "\n".join(wrong)


def test_the_checker_sees_what_it_checks() -> None:
    """The rules find real names and refuse made-up ones (so the test above can fail)."""
    assert missing_path("hub/cleanroom/airlock/web.py") is None
    assert missing_path("hub/cleanroom/airlock/nope.py") is not None
    assert (
        missing_path("tests/unit/test_docs_paths.py::test_the_checker_sees_what_it_checks") is None
    )
    assert missing_path("tests/unit/test_docs_paths.py::test_nothing") is not None
    assert missing_path("cleanroom/images/build.py") is not None
    assert missing_path("state/secrets/") is None and missing_path("benchmarks/results/") is None
    assert missing_path("work/out/table.csv") is None  # a workspace path, not the repo's
    assert missing_module("cleanroom.airlock.web.same_origin") is None
    assert missing_module("cleanroom.airlock.web.nothing_here") is not None
    assert missing_module("cleanroom.nope.module") is not None
    assert missing_module("cleanroom.user") is None  # a container label
    assert sum(len(named(d)) for d in DOCS) > 100
