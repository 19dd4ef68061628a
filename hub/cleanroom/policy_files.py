"""Reading policy files: the one YAML loader every policy of the hub side uses.

Policies (quotas, culling, the airlock's, the disclosure checks') live as YAML in the
policies folder (:func:`cleanroom.paths.policies_dir`). Each module validates its own
content; reading the file and parsing it is done here, once, so that every policy's
"cannot read" and "not valid YAML" errors read alike and name the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from cleanroom import paths


def policy_path(name: str) -> Path:
    """The policy file ``name`` (e.g. ``quotas.yaml``) in the policies folder."""
    return paths.policies_dir() / name


def load_yaml(path: Path, *, what: str, error: type[Exception], missing_ok: bool = False) -> Any:
    """The parsed content of the policy file at ``path`` (``None`` when it is empty).

    ``what`` names the policy in messages (``quota policy``); ``error`` is the exception
    the calling module raises for a bad policy. With ``missing_ok`` an absent file reads
    as empty (a policy whose defaults are complete).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        if missing_ok:
            return None
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}") from exc
