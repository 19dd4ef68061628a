"""A client of the gateway's internal API, for the spawner and the command line."""

from __future__ import annotations

import json
import os
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPClient, HTTPClientError, HTTPRequest

from cleanroom.errors import CleanroomError, Forbidden, InvalidInput, NotFound


class GatewayUnavailable(CleanroomError):
    """The gateway did not answer or refused a call."""

    status = 503


def api_url() -> str:
    """The internal API's base URL: ``$CLEANROOM_GATEWAY_API_PORT`` (default 8004)."""
    port = int(os.environ.get("CLEANROOM_GATEWAY_API_PORT") or 8004)
    return f"http://127.0.0.1:{port}"


def _token() -> str:
    from cleanroom.settings import secret

    return secret("gateway-api-token")


def _request(method: str, path: str, body: Any = None) -> HTTPRequest:
    return HTTPRequest(
        api_url() + path,
        method=method,
        headers={"Authorization": f"token {_token()}", "Content-Type": "application/json"},
        body=None if body is None else json.dumps(body),
        request_timeout=10,
        allow_nonstandard_methods=True,
    )


def _refusal(exc: HTTPClientError) -> CleanroomError | None:
    """A refusal of the request itself (bad input, not allowed, unknown), as the error
    the command line reports with the gateway's own message; None for anything else."""
    kinds: dict[int, type[CleanroomError]] = {400: InvalidInput, 403: Forbidden, 404: NotFound}
    if exc.response is None or exc.code not in kinds:
        return None
    try:
        message = json.loads(exc.response.body or b"{}").get("message")
    except (ValueError, AttributeError):
        return None
    return kinds[exc.code](str(message)) if message else None


def _decode(reply: Any) -> Any:
    return json.loads(reply.body or b"null")


async def call(method: str, path: str, body: Any = None, *, ok: tuple[int, ...] = (200,)) -> Any:
    """Call the API from an event loop; a refusal of the request itself raises the
    matching :class:`CleanroomError` with the gateway's message, anything else
    :class:`GatewayUnavailable`."""
    try:
        reply = await AsyncHTTPClient().fetch(_request(method, path, body), raise_error=False)
    except (OSError, HTTPClientError) as exc:
        # With raise_error=False only errors that are no answer raise: a refused
        # connection or a timeout (libcurl's client, which the hub picks when pycurl is
        # installed, reports both as HTTP 599).
        raise GatewayUnavailable(f"the egress gateway does not answer: {exc}") from exc
    if reply.code not in ok:
        refusal = _refusal(HTTPClientError(reply.code, response=reply))
        if refusal is not None:
            raise refusal
        raise GatewayUnavailable(f"the egress gateway refused {method} {path}: {reply.body!r}")
    return _decode(reply)


def call_sync(method: str, path: str, body: Any = None) -> Any:
    """Call the API from plain code (the command line)."""
    client = HTTPClient()
    try:
        return _decode(client.fetch(_request(method, path, body)))
    except HTTPClientError as exc:
        refusal = _refusal(exc)
        if refusal is not None:
            raise refusal from exc
        detail = exc.response.body.decode(errors="replace") if exc.response else str(exc)
        raise GatewayUnavailable(f"the egress gateway refused {method} {path}: {detail}") from exc
    except OSError as exc:
        raise GatewayUnavailable(f"the egress gateway does not answer: {exc}") from exc
    finally:
        client.close()
