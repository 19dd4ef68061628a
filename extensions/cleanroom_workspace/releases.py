"""``/cleanroom/api/releases``: the release-request API of the workspace.

``POST`` reads the named files from the work folders (no symlinks, no folders, nothing
over the policy's size) and forwards their bytes with the justification and
descriptions to the airlock. ``GET`` lists this user's requests for this project.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web
from tornado.ioloop import IOLoop

from .airlock import AirlockClient, ReleaseFile, Submission
from .audit import AuditLog
from .authorizer import as_http_error
from .errors import Refused
from .paths import WorkspacePaths
from .policy import ReleaseRules

STATE_SETTING = "cleanroom_workspace_releases"
RELEASES_PATH = "cleanroom/api/releases"


@dataclass
class ReleaseService:
    """What the release API needs: the project, the rules, the paths and the airlock."""

    project: str
    rules: ReleaseRules
    paths: WorkspacePaths
    airlock: AirlockClient
    audit: AuditLog

    def parse(self, body: Any) -> tuple[list[str], str, dict[str, str]]:
        """Validate a request body; return its paths, justification and descriptions."""
        if not isinstance(body, dict):
            raise Refused(400, "the request body must be a JSON object")
        paths = body.get("paths")
        if (
            not isinstance(paths, list)
            or not paths
            or not all(isinstance(p, str) and p.strip("/") for p in paths)
        ):
            raise Refused(400, "'paths' must be a non-empty list of file paths")
        paths = [p.strip("/") for p in paths]
        if len(set(paths)) != len(paths):
            raise Refused(400, "'paths' names the same file twice")
        if len(paths) > self.rules.max_files:
            raise Refused(
                400, f"at most {self.rules.max_files} files can be released in one request"
            )
        justification = body.get("justification")
        if not isinstance(justification, str) or not justification.strip():
            raise Refused(400, "a justification is required: say why these outputs must leave")
        if len(justification) > self.rules.max_justification_chars:
            raise Refused(
                400,
                f"the justification is longer than {self.rules.max_justification_chars} characters",
            )
        descriptions = body.get("descriptions")
        if not isinstance(descriptions, dict):
            raise Refused(400, "'descriptions' must map each path to a description")
        descriptions = {str(k).strip("/"): v for k, v in descriptions.items()}
        for path in paths:
            text = descriptions.get(path)
            if not isinstance(text, str) or not text.strip():
                raise Refused(400, f"{path}: describe what this file contains")
            if len(text) > self.rules.max_description_chars:
                raise Refused(
                    400,
                    f"{path}: the description is longer than "
                    f"{self.rules.max_description_chars} characters",
                )
        unknown = sorted(set(descriptions) - set(paths))
        if unknown:
            raise Refused(400, f"descriptions given for files not in 'paths': {', '.join(unknown)}")
        return paths, justification.strip(), {p: descriptions[p].strip() for p in paths}

    def read(self, path: str) -> bytes:
        """Read one file to release, refusing what the workspace must not send."""
        fd, _folder = self.paths.open_work_file(path)
        with os.fdopen(fd, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            limit = self.rules.max_file_bytes
            if size > limit:
                raise Refused(413, f"{path}: {size} bytes is over the release limit of {limit}")
            # Read one byte past the limit: a file growing while it is read is caught too.
            data = f.read(limit + 1)
        if len(data) > limit:
            raise Refused(413, f"{path}: the file is over the release limit of {limit} bytes")
        return data

    async def submit(self, body: Any) -> dict[str, Any]:
        """Validate, read and forward a release request; return the airlock's answer."""
        paths, justification, descriptions = self.parse(body)
        loop = IOLoop.current()
        files = []
        total = 0
        for path in paths:
            data = await loop.run_in_executor(None, self.read, path)
            total += len(data)
            if total > self.rules.max_request_bytes:
                raise Refused(
                    413,
                    f"these files together are over the limit of {self.rules.max_request_bytes} "
                    "bytes for one release request: split it into several",
                )
            files.append(ReleaseFile(path, descriptions[path], data))
        submission = Submission(self.project, justification, tuple(files))
        sizes = {f.path: len(f.data) for f in files}
        try:
            result = await self.airlock.submit(submission)
        except Refused as e:
            self.audit.record("release.failed", paths=paths, sizes=sizes, reason=e.message)
            raise
        self.audit.record("release.submitted", paths=paths, sizes=sizes, request=result.get("id"))
        return result


def json_body(body: bytes) -> Any:
    """The request body as JSON, or a 400 that says why it is not (Jupyter's own
    ``get_json_body`` answers bytes that are not UTF-8 with a 500)."""
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise Refused(400, "the request body is not UTF-8 text") from None
    except (ValueError, RecursionError):
        raise Refused(400, "the request body must be a JSON object") from None


class ReleasesHandler(APIHandler):
    """Lists this user's release requests (GET) and makes a new one (POST)."""

    auth_resource = "cleanroom_releases"

    @property
    def service(self) -> ReleaseService:
        """The workspace's release service."""
        return self.settings[STATE_SETTING]

    @web.authenticated
    @authorized
    async def get(self) -> None:
        """``GET``: ``{"requests": [...]}`` from the airlock."""
        try:
            result = await self.service.airlock.list_requests(self.service.project)
        except Refused as e:
            raise as_http_error(e) from None
        self.finish(result)

    @web.authenticated
    @authorized
    async def post(self) -> None:
        """``POST``: submit ``{"paths", "justification", "descriptions"}``; 201 on success."""
        try:
            result = await self.service.submit(json_body(self.request.body))
        except Refused as e:
            raise as_http_error(e) from None
        self.set_status(201)
        self.finish(result)
