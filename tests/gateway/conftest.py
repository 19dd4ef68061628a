"""The gateway's tests share the integration suite's real clean room (one per session)."""

from tests.integration.conftest import hub, workspace_images  # noqa: F401
