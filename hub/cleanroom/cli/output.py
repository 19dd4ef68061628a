"""How every ``cleanroom`` verb prints: text for people, ``--json`` for scripts."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, is_dataclass
from typing import Any, TypeVar

T = TypeVar("T")


def emit(args: argparse.Namespace, value: Any, text: str | None = None) -> None:
    """Print ``value`` as JSON when ``--json`` was given, else ``text`` (if any)."""
    if getattr(args, "json", False):
        print(json.dumps(jsonable(value), indent=2, default=str))
    elif text is not None:
        print(text)


def emit_rows(args: argparse.Namespace, rows: Sequence[T], line: Callable[[T], str]) -> None:
    """Print ``rows`` as a JSON list with ``--json``, else one ``line`` of text each."""
    emit(args, rows, "\n".join(line(r) for r in rows))


def jsonable(value: Any) -> Any:
    """Dataclasses, mappings and collections as JSON-ready values (sets sorted)."""
    if is_dataclass(value) and not isinstance(value, type):
        return jsonable(asdict(value))
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [jsonable(v) for v in value]
        return sorted(items) if isinstance(value, set | frozenset) else items
    return value
