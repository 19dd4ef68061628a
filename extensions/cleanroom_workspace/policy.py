"""The workspace policy: limits on what the browser may move in and out.

The policy is data (``policies/workspace.yaml``); this module reads and validates it.
Every problem is reported with the dotted key that holds it, and a policy with any
problem is refused as a whole: a workspace never starts on half a policy.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

POLICY_FILE_NAME = "workspace.yaml"
POLICIES_DIR_ENV = "CLEANROOM_POLICIES_DIR"


class PolicyError(ValueError):
    """The workspace policy file is missing, unreadable or invalid."""


@dataclass(frozen=True)
class Folders:
    """Work folders (read-write, releasable) and data folders (never served as files)."""

    work: tuple[str, ...]
    data: tuple[str, ...]


@dataclass(frozen=True)
class ContentsRules:
    """Limits on reads through the contents API."""

    max_read_bytes: int
    base64_allowlist: tuple[str, ...]
    max_base64_bytes: int


@dataclass(frozen=True)
class UploadRules:
    """Limits on content written from the browser (uploads and saves)."""

    max_bytes: int
    allow_binary: bool
    max_notebook_bytes: int


@dataclass(frozen=True)
class OutputRules:
    """Limits on kernel output forwarded to the browser."""

    max_output_bytes: int
    iopub_msg_rate_limit: float
    iopub_data_rate_limit: float
    rate_limit_window: float


@dataclass(frozen=True)
class ReleaseRules:
    """Limits on one release request."""

    max_files: int
    max_file_bytes: int
    max_request_bytes: int
    max_justification_chars: int
    max_description_chars: int


@dataclass(frozen=True)
class WorkspacePolicy:
    """The whole, validated workspace policy."""

    folders: Folders
    contents: ContentsRules
    uploads: UploadRules
    outputs: OutputRules
    releases: ReleaseRules
    source: str


class _Reader:
    """Reads typed values out of one mapping, remembering its dotted location."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, Mapping):
            raise PolicyError(f"{where or 'the policy'} must be a mapping, not {_kind(data)}")
        self.data = data
        self.where = where
        self.used: set[str] = set()

    def _key(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def _get(self, key: str) -> Any:
        self.used.add(key)
        if key not in self.data:
            raise PolicyError(f"{self._key(key)} is missing")
        return self.data[key]

    def section(self, key: str) -> _Reader:
        return _Reader(self._get(key), self._key(key))

    def positive_int(self, key: str) -> int:
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise PolicyError(f"{self._key(key)} must be a positive whole number, not {value!r}")
        return value

    def positive_number(self, key: str) -> float:
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise PolicyError(f"{self._key(key)} must be a positive number, not {value!r}")
        return float(value)

    def boolean(self, key: str) -> bool:
        value = self._get(key)
        if not isinstance(value, bool):
            raise PolicyError(f"{self._key(key)} must be true or false, not {value!r}")
        return value

    def strings(self, key: str, *, allow_empty: bool = False) -> tuple[str, ...]:
        value = self._get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise PolicyError(f"{self._key(key)} must be a list of non-empty strings")
        if not value and not allow_empty:
            raise PolicyError(f"{self._key(key)} must not be empty")
        return tuple(value)

    def done(self) -> None:
        extra = sorted(set(self.data) - self.used)
        if extra:
            names = ", ".join(self._key(str(k)) for k in extra)
            raise PolicyError(f"unknown policy key(s): {names} (check the spelling)")


def _kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__


def parse_policy(data: Any, source: str = "<memory>") -> WorkspacePolicy:
    """Validate an already-parsed policy document and return it typed."""
    try:
        top = _Reader(data, "")
        version = top._get("version")
        if version != 1:
            raise PolicyError(f"version must be 1, not {version!r}")

        f = top.section("folders")
        folders = Folders(work=f.strings("work"), data=f.strings("data", allow_empty=True))
        f.done()

        c = top.section("contents")
        allowlist = tuple(s.lower() for s in c.strings("base64_allowlist", allow_empty=True))
        for suffix in allowlist:
            if not suffix.startswith(".") or "/" in suffix or len(suffix) < 2:
                raise PolicyError(
                    f"contents.base64_allowlist: {suffix!r} is not a file suffix like '.png'"
                )
        contents = ContentsRules(
            max_read_bytes=c.positive_int("max_read_bytes"),
            base64_allowlist=allowlist,
            max_base64_bytes=c.positive_int("max_base64_bytes"),
        )
        c.done()

        u = top.section("uploads")
        uploads = UploadRules(
            max_bytes=u.positive_int("max_bytes"),
            allow_binary=u.boolean("allow_binary"),
            max_notebook_bytes=u.positive_int("max_notebook_bytes"),
        )
        u.done()

        o = top.section("outputs")
        outputs = OutputRules(
            max_output_bytes=o.positive_int("max_output_bytes"),
            iopub_msg_rate_limit=o.positive_number("iopub_msg_rate_limit"),
            iopub_data_rate_limit=o.positive_number("iopub_data_rate_limit"),
            rate_limit_window=o.positive_number("rate_limit_window"),
        )
        o.done()

        r = top.section("releases")
        releases = ReleaseRules(
            max_files=r.positive_int("max_files"),
            max_file_bytes=r.positive_int("max_file_bytes"),
            max_request_bytes=r.positive_int("max_request_bytes"),
            max_justification_chars=r.positive_int("max_justification_chars"),
            max_description_chars=r.positive_int("max_description_chars"),
        )
        r.done()
        top.done()
    except PolicyError as e:
        raise PolicyError(f"{source}: {e}") from None
    return WorkspacePolicy(folders, contents, uploads, outputs, releases, source)


def default_policy_text() -> str:
    """The policy packaged with the extension (a copy of ``policies/workspace.yaml``)."""
    return resources.files(__package__).joinpath(POLICY_FILE_NAME).read_text(encoding="utf-8")


def load_policy(policies_dir: str | os.PathLike[str] | None = None) -> WorkspacePolicy:
    """Load the workspace policy from ``policies_dir``, else the packaged defaults.

    ``policies_dir`` defaults to ``$CLEANROOM_POLICIES_DIR``. When a folder is named it
    must hold ``workspace.yaml``: a named but empty folder is an error, not a silent
    fall-back to the defaults.
    """
    if policies_dir is None:
        policies_dir = os.environ.get(POLICIES_DIR_ENV) or None
    if policies_dir is None:
        return parse_policy(yaml.safe_load(default_policy_text()), "packaged workspace.yaml")
    path = Path(policies_dir) / POLICY_FILE_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise PolicyError(f"cannot read the workspace policy {path}: {e.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise PolicyError(f"{path} is not valid YAML: {e}") from None
    return parse_policy(data, str(path))
