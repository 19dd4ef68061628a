"""The gateway's HTTP client towards workspace servers (and restricted mode's viewers).

HTTP/1.1 on asyncio protocols (libuv's under uvloop) with llhttp's parser
(``httptools``), idle connections kept per server and reused. It replaced a client on
tornado's ``HTTP1Connection``, itself a third cheaper than libcurl's, when the gateway's
hop was made as cheap as the direct path's (``docs/benchmarks.md``). It does only what
the gateway needs: no redirects followed, no decompression (the bytes counted are the
bytes that came), and the answer capped as it arrives: headers at
:data:`MAX_HEADER_BYTES`, the body at the client's cap (an answer over it raises
:class:`TooLarge` before more than the cap has been kept, and its connection is
dropped). What the server sends is not trusted: anything llhttp refuses, an interim
(1xx) answer nobody asked for, or bytes nobody asked for, end the connection.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools
from tornado import httputil

IDLE_SECONDS = 60
"""An idle connection older than this is closed (:meth:`UpstreamClient.prune`)."""
MAX_IDLE_PER_SERVER = 16
"""Idle connections kept per server; JupyterLab's page sends a dozen requests at once."""


MAX_HEADER_BYTES = 65_536
"""The status line and headers of an answer, at most."""


class NoAnswer(Exception):
    """The server gave no complete answer (refused, reset, timed out, malformed)."""


class TooLarge(NoAnswer):
    """The answer's body is larger than the client's cap."""


@dataclass
class Reply:
    """A complete answer: status, headers and the whole body."""

    code: int
    reason: str
    headers: httputil.HTTPHeaders
    body: bytes


class _Unanswered(Exception):
    """The connection closed before any byte of the answer came (a kept connection the
    server closed while idle: the request may go once more on a fresh one)."""


class _Connection(asyncio.Protocol):
    """One kept-alive connection to a server; one exchange at a time."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.waiter: asyncio.Future[Reply] | None = None
        self._reset()

    def _reset(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.reason = b""
        self.headers = httputil.HTTPHeaders()
        self.header_bytes = 0
        self.chunks: list[bytes] = []
        self.size = 0
        self.heard = False
        self.head_only = False
        self.refusal: NoAnswer | None = None

    # -- asyncio --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses; they do its methods.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            if self.heard:
                self.waiter.set_exception(NoAnswer("the server's answer was cut short"))
            else:
                self.waiter.set_exception(_Unanswered(str(exc or "closed")))

    def data_received(self, data: bytes) -> None:
        if self.waiter is None or self.waiter.done():
            self.close()  # bytes nobody asked for
            return
        self.heard = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(NoAnswer("the server switched protocols unasked"))
        except (httptools.HttpParserError, NoAnswer) as exc:
            # A callback's refusal comes back wrapped by the parser: the cause is kept.
            self._fail(self.refusal or NoAnswer(f"the server's answer is malformed ({exc})"))

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def expire(self, timeout: float) -> None:
        self._fail(NoAnswer(f"no answer within {timeout:g} s"))

    def _fail(self, error: NoAnswer) -> None:
        self.close()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(error)

    # -- llhttp's callbacks -----------------------------------------------------------
    def on_status(self, status: bytes) -> None:
        self.reason += status
        self._count(len(status))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        self.headers.add(name.decode("latin-1"), value.decode("latin-1"))

    def on_headers_complete(self) -> None:
        code = self.parser.get_status_code()
        if code < 200:
            self._refuse(NoAnswer(f"an interim answer ({code}) nobody asked for"))
        length = self.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > self.cap:
            self._refuse(TooLarge("the answer is too large"))
        if self.head_only:
            # An answer to HEAD has no body, whatever its headers say; llhttp cannot be
            # told, so the answer ends here and the connection is not kept.
            self._complete(keep=False)

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > self.cap:
            self.chunks = []
            self._refuse(TooLarge("the answer is too large"))
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        if not self.head_only:
            self._complete(keep=self.parser.should_keep_alive())

    def _count(self, n: int) -> None:
        self.header_bytes += n
        if self.header_bytes > MAX_HEADER_BYTES:
            self._refuse(NoAnswer("the server's answer headers are too large"))

    def _refuse(self, error: NoAnswer) -> None:
        self.refusal = error
        raise error

    def _complete(self, keep: bool) -> None:
        reply = Reply(
            self.parser.get_status_code(),
            self.reason.decode("latin-1"),
            self.headers,
            b"".join(self.chunks),
        )
        if not keep:
            self.close()
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(reply)

    # -- one exchange ---------------------------------------------------------------
    def send(self, request: bytes, head_only: bool) -> asyncio.Future[Reply]:
        assert self.transport is not None
        self._reset()
        self.head_only = head_only
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self.waiter


class UpstreamClient:
    """Requests to workspace servers over kept-alive connections."""

    def __init__(self, max_body_size: int) -> None:
        self.max_body_size = max_body_size
        # One request per connection at a time: a connection is here only while idle.
        self.idle: dict[tuple[str, int], list[tuple[_Connection, float]]] = {}

    async def fetch(
        self,
        url: str,
        *,
        method: str = "GET",
        headers: httputil.HTTPHeaders | None = None,
        body: bytes | None = None,
        timeout: float = 60,
    ) -> Reply:
        """The server's whole answer to one request (raises :class:`NoAnswer`); ``headers``
        (the caller's, completed with Host and Content-Length) go as given."""
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname or parts.port is None:
            raise NoAnswer(f"not an http://<host>:<port> address: {url!r}")
        address = (parts.hostname, parts.port)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        sent = headers if headers is not None else httputil.HTTPHeaders()
        sent.setdefault("Host", parts.netloc)
        if body is not None:
            sent["Content-Length"] = str(len(body))
        lines = [f"{method} {target} HTTP/1.1"]
        for name, value in sent.get_all():
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
                raise NoAnswer(f"the request's header {name!r} has a line break in it")
            lines.append(f"{name}: {value}")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")
        # The deadline closes the connection in use (a timer, not asyncio.wait_for: that
        # makes a task of every request, and more turns of the loop).
        deadline = time.monotonic() + timeout
        conn = self._idle(address)
        if conn is not None:
            try:
                return await self._once(address, conn, request, method, (deadline, timeout))
            except _Unanswered:
                pass  # closed by the server while idle: the request never reached it
        conn = await self._connect(address, (deadline, timeout))
        try:
            return await self._once(address, conn, request, method, (deadline, timeout))
        except _Unanswered as exc:
            raise NoAnswer(f"the connection closed ({exc})") from exc

    async def _once(
        self,
        address: tuple[str, int],
        conn: _Connection,
        request: bytes,
        method: str,
        limit: tuple[float, float],
    ) -> Reply:
        waiter = conn.send(request, head_only=method == "HEAD")
        left = limit[0] - time.monotonic()
        timer = asyncio.get_running_loop().call_later(max(0.0, left), conn.expire, limit[1])
        try:
            reply = await waiter
        except BaseException:
            conn.close()  # timed out, cancelled or failed: never reused
            raise
        finally:
            timer.cancel()
        if not conn.closed:
            kept = self.idle.setdefault(address, [])
            if len(kept) < MAX_IDLE_PER_SERVER:
                kept.append((conn, time.monotonic()))
            else:
                conn.close()
        return reply

    def _idle(self, address: tuple[str, int]) -> _Connection | None:
        kept = self.idle.get(address)
        while kept:
            conn, _ = kept.pop()
            if not conn.closed:
                return conn
        return None

    async def _connect(self, address: tuple[str, int], limit: tuple[float, float]) -> _Connection:
        """A new connection; ``limit``: (deadline, the request's timeout)."""
        loop = asyncio.get_running_loop()
        left = limit[0] - time.monotonic()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Connection(self.max_body_size), address[0], address[1]
                ),
                max(0.0, left),
            )
        except TimeoutError as exc:
            raise NoAnswer(f"no answer within {limit[1]:g} s (connecting)") from exc
        except OSError as exc:
            raise NoAnswer(f"could not connect to {address[0]}:{address[1]} ({exc})") from exc
        return conn

    def prune(self, idle_seconds: float = IDLE_SECONDS) -> None:
        """Close connections idle for longer than ``idle_seconds`` (and closed ones)."""
        now = time.monotonic()
        for address in list(self.idle):
            kept = []
            for conn, since in self.idle[address]:
                if conn.closed or now - since > idle_seconds:
                    conn.close()
                else:
                    kept.append((conn, since))
            if kept:
                self.idle[address] = kept
            else:
                del self.idle[address]

    def close(self) -> None:
        """Close every idle connection."""
        self.prune(-1)
