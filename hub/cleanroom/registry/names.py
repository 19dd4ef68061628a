"""Validation of the names that end up in container names, URLs and paths."""

from __future__ import annotations

import re

from cleanroom.errors import InvalidInput

_PROJECT = re.compile(r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$")
_USER = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
ROLES = frozenset({"researcher", "officer", "operator", "provider"})


def project_name(value: str) -> str:
    """A project or dataset name: 3-40 lowercase letters, digits and dashes."""
    if not _PROJECT.match(value or ""):
        raise InvalidInput(
            f"invalid name {value!r}: use 3-40 lowercase letters, digits and dashes, "
            "starting with a letter and not ending with a dash"
        )
    return value


dataset_name = project_name


def user_name(value: str) -> str:
    """A user name: up to 32 lowercase letters, digits, '_' and '-', starting with a letter."""
    if not _USER.match(value or ""):
        raise InvalidInput(
            f"invalid user name {value!r}: use up to 32 lowercase letters, digits, '_' or '-', "
            "starting with a letter"
        )
    return value


def version(value: str) -> str:
    """A dataset version label such as ``v1`` or ``2026-11-01``."""
    if not _VERSION.match(value or ""):
        raise InvalidInput(
            f"invalid version {value!r}: use up to 32 letters, digits, '.', '_' or '-'"
        )
    return value


def roles(values: list[str] | tuple[str, ...] | set[str]) -> list[str]:
    """Known roles only, sorted; an unknown role is an error naming the known ones."""
    unknown = set(values) - ROLES
    if unknown:
        raise InvalidInput(
            f"unknown role(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(ROLES))}"
        )
    return sorted(set(values))
