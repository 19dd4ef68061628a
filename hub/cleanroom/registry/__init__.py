"""The registry of projects, members, users and datasets (SQLite by default)."""

from cleanroom.registry.store import (
    DatasetInfo,
    DatasetMount,
    ProjectInfo,
    Registry,
    UserInfo,
    shared_registry,
)

__all__ = ["DatasetInfo", "DatasetMount", "ProjectInfo", "Registry", "UserInfo", "shared_registry"]
