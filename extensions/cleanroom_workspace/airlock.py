"""The one way out: forwarding release requests to the airlock.

`AirlockClient` is the interface the release API talks to. `HttpAirlockClient`
implements the airlock's submission API (``/api/v1/requests``); `UnconfiguredAirlock`
stands in when the spawner gave no airlock address and refuses every call with a 503:
a release request is never reported as made when nothing received it.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from .errors import Refused


@dataclass(frozen=True)
class ReleaseFile:
    """One file of a release request: its workspace path, description and bytes."""

    path: str
    description: str
    data: bytes


@dataclass(frozen=True)
class Submission:
    """A release request as the workspace sends it to the airlock."""

    project: str
    justification: str
    files: tuple[ReleaseFile, ...]


class AirlockClient(Protocol):
    """What the workspace needs from the airlock."""

    async def submit(self, submission: Submission) -> dict[str, Any]:
        """Submit a release request; return the airlock's record of it."""
        ...

    async def list_requests(self, project: str) -> dict[str, Any]:
        """This user's requests for ``project``, as ``{"requests": [...]}``."""
        ...


class UnconfiguredAirlock:
    """The airlock client used when no airlock address is configured: refuses, clearly."""

    def _refuse(self) -> Refused:
        return Refused(
            503,
            "The airlock is not configured for this workspace, so release requests cannot be "
            "made now; nothing was submitted. Ask your operator.",
        )

    async def submit(self, submission: Submission) -> dict[str, Any]:
        """Refuse: there is no airlock to submit to."""
        raise self._refuse()

    async def list_requests(self, project: str) -> dict[str, Any]:
        """Refuse: there is no airlock to ask."""
        raise self._refuse()


def encode_multipart(
    fields: list[tuple[str, str | None, str, bytes]],
) -> tuple[str, bytes]:
    """Encode (name, filename, content type, bytes) parts as multipart/form-data.

    Returns the Content-Type header value (with its boundary) and the body.
    """
    boundary = "cleanroom-" + secrets.token_hex(16)
    out = bytearray()
    for name, filename, content_type, data in fields:
        out += f"--{boundary}\r\n".encode()
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            # Quote the file name so that no character of it can break the header.
            disposition += f"; filename*=utf-8''{quote(filename, safe='')}"
            disposition += f'; filename="{quote(filename, safe=" ._-")}"'
        out += f"Content-Disposition: {disposition}\r\n".encode()
        out += f"Content-Type: {content_type}\r\n\r\n".encode()
        out += data
        out += b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", bytes(out)


class HttpAirlockClient:
    """Talks to the airlock's submission listener with the server's hub token."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 120.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}", "Accept": "application/json"}

    async def _fetch(self, request: HTTPRequest) -> dict[str, Any]:
        try:
            response = await AsyncHTTPClient().fetch(request)
        except HTTPClientError as e:
            raise Refused(*_airlock_error(e)) from None
        except OSError as e:
            raise Refused(
                502, f"The airlock cannot be reached ({e}); nothing was submitted."
            ) from None
        try:
            body = json.loads(response.body or b"null")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise Refused(502, "The airlock answered with something other than a JSON object.")
        return body

    async def submit(self, submission: Submission) -> dict[str, Any]:
        """POST the files and their metadata to ``/api/v1/requests``."""
        metadata = {
            "project": submission.project,
            "justification": submission.justification,
            "files": [
                {"field": f"file{i}", "path": f.path, "description": f.description}
                for i, f in enumerate(submission.files)
            ],
        }
        parts: list[tuple[str, str | None, str, bytes]] = [
            ("metadata", None, "application/json", json.dumps(metadata).encode())
        ]
        for i, f in enumerate(submission.files):
            parts.append(
                (f"file{i}", f.path.rsplit("/", 1)[-1], "application/octet-stream", f.data)
            )
        content_type, body = encode_multipart(parts)
        request = HTTPRequest(
            f"{self.base_url}/api/v1/requests",
            method="POST",
            headers={**self._headers(), "Content-Type": content_type},
            body=body,
            request_timeout=self.timeout,
            # The hub token goes to the configured airlock only, never to a redirect target.
            follow_redirects=False,
        )
        return await self._fetch(request)

    async def list_requests(self, project: str) -> dict[str, Any]:
        """GET ``/api/v1/requests?project=...``."""
        query = urlencode({"project": project})
        request = HTTPRequest(
            f"{self.base_url}/api/v1/requests?{query}",
            headers=self._headers(),
            request_timeout=self.timeout,
            follow_redirects=False,
        )
        return await self._fetch(request)


def _airlock_error(e: HTTPClientError) -> tuple[int, str]:
    message = ""
    if e.response is not None and e.response.body:
        try:
            message = str(json.loads(e.response.body).get("error", ""))
        except (ValueError, AttributeError):
            message = ""
    if e.code == 599:
        return 502, f"The airlock cannot be reached ({e.message}); nothing was submitted."
    # Client errors are the researcher's to fix and pass through; anything else is the
    # airlock's failure, reported as a bad gateway.
    status = e.code if 400 <= e.code < 500 else 502
    return status, f"The airlock refused the request: {message or e.message or e.code}"
