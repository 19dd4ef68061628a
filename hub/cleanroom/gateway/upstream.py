"""The gateway's HTTP client towards workspace servers (and restricted mode's viewers).

HTTP/1.1 over tornado's own ``HTTP1Connection`` (the parser of tornado's server and
clients), with idle connections kept per server and reused. Measured against libcurl's
client (``tornado.curl_httpclient``) on the gateway's hot path it spends about a third
less CPU per request, in fewer event-loop turns (``docs/benchmarks.md``). It does only
what the gateway needs: no redirects followed, no decompression (the bytes counted are
the bytes that came), and the answer's body capped as it arrives: an answer over the
cap raises :class:`TooLarge` before more than the cap has been read, and its connection
is dropped.
"""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from tornado import httputil
from tornado.http1connection import HTTP1Connection, HTTP1ConnectionParameters
from tornado.iostream import IOStream, StreamClosedError

IDLE_SECONDS = 60
"""An idle connection older than this is closed (:meth:`UpstreamClient.prune`)."""
MAX_IDLE_PER_SERVER = 16
"""Idle connections kept per server; JupyterLab's page sends a dozen requests at once."""


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


class _Collect(httputil.HTTPMessageDelegate):
    """Gathers one answer; over ``cap`` it closes the connection at once, so no more of
    the body is read (tornado calls the delegate inside its own error handling, which
    would swallow an exception raised here)."""

    def __init__(self, stream: IOStream, cap: int) -> None:
        self.stream = stream
        self.cap = cap
        self.start: httputil.ResponseStartLine | None = None
        self.headers = httputil.HTTPHeaders()
        self.chunks: list[bytes] = []
        self.size = 0
        self.too_large = False
        self.done = False

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> None:
        assert isinstance(start_line, httputil.ResponseStartLine)
        self.start, self.headers = start_line, headers
        length = headers.get("Content-Length", "")
        if length.isdigit() and int(length) > self.cap:
            self._refuse()

    def data_received(self, chunk: bytes) -> None:
        if self.too_large:
            return
        self.size += len(chunk)
        if self.size > self.cap:
            self._refuse()
            return
        self.chunks.append(chunk)

    def _refuse(self) -> None:
        self.too_large = True
        self.chunks = []
        self.stream.close()

    def finish(self) -> None:
        self.done = True

    def on_connection_close(self) -> None:
        return


class _Exchange:
    """One request's connection in use, which its timeout closes."""

    def __init__(self) -> None:
        self.stream: IOStream | None = None
        self.timed_out = False

    def expire(self) -> None:
        self.timed_out = True
        if self.stream is not None:
            self.stream.close()


class UpstreamClient:
    """Requests to workspace servers over kept-alive connections."""

    def __init__(self, max_body_size: int) -> None:
        self.max_body_size = max_body_size
        # One request per connection at a time: a connection is here only while idle.
        self.idle: dict[tuple[str, int], list[tuple[IOStream, float]]] = {}
        # The cap is the delegate's, which tells a body over it from a broken answer;
        # tornado's own limit is set out of its way.
        # Bodies handed over in pieces of up to 1 MiB (tornado's default is 64 KiB): a
        # notebook in one or two turns of the loop rather than sixteen.
        self.params = HTTP1ConnectionParameters(
            decompress=False, max_body_size=2**62, no_keep_alive=False, chunk_size=2**20
        )

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
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        sent = headers if headers is not None else httputil.HTTPHeaders()
        sent.setdefault("Host", parts.netloc)
        if body is not None:
            sent["Content-Length"] = str(len(body))
        start = httputil.RequestStartLine(method, target or "/", "HTTP/1.1")
        # The timeout closes the connection in use (a timer, not asyncio.wait_for: that
        # makes a task of every request, and more turns of the loop).
        exchange = _Exchange()
        timer = asyncio.get_running_loop().call_later(timeout, exchange.expire)
        try:
            return await self._exchange(address, start, sent, body, exchange)
        except NoAnswer as exc:
            if exchange.timed_out:
                raise NoAnswer(f"no answer within {timeout:g} s") from exc
            raise
        finally:
            timer.cancel()

    async def _exchange(
        self,
        address: tuple[str, int],
        start: httputil.RequestStartLine,
        headers: httputil.HTTPHeaders,
        body: bytes | None,
        exchange: _Exchange,
    ) -> Reply:
        stream, reused = self._idle(address), True
        if stream is None:
            stream, reused = await self._connect(address, exchange), False
        exchange.stream = stream
        try:
            collected = await self._once(stream, start, headers, body)
        except StreamClosedError as exc:
            stream.close()
            if not reused or exchange.timed_out:
                raise NoAnswer(f"the connection closed ({exc.real_error or exc})") from exc
            # A kept connection the server closed while it was idle: the request never
            # reached it, so it goes once more on a fresh connection.
            stream = await self._connect(address, exchange)
            try:
                collected = await self._once(stream, start, headers, body)
            except StreamClosedError as again:
                stream.close()
                raise NoAnswer(f"the connection closed ({again.real_error or again})") from again
        return self._reply(address, stream, collected)

    async def _once(
        self,
        stream: IOStream,
        start: httputil.RequestStartLine,
        headers: httputil.HTTPHeaders,
        body: bytes | None,
    ) -> _Collect:
        """One request and its answer on ``stream``; raises StreamClosedError only when
        nothing of the answer came."""
        connection = HTTP1Connection(stream, True, self.params)
        collected = _Collect(stream, self.max_body_size)
        try:
            connection.write_headers(start, headers)
            if body:
                connection.write(body)
            connection.finish()
            await connection.read_response(collected)
        except StreamClosedError:
            if collected.start is None and not collected.too_large:
                raise
            stream.close()
        if collected.too_large:
            stream.close()
            raise TooLarge("the answer is too large")
        return collected

    def _reply(self, address: tuple[str, int], stream: IOStream, collected: _Collect) -> Reply:
        if collected.start is None or not collected.done:
            stream.close()
            raise NoAnswer("the server's answer was cut short or malformed")
        start = collected.start
        keep = (
            not stream.closed()
            and start.version == "HTTP/1.1"
            and collected.headers.get("Connection", "").lower() != "close"
        )
        if keep:
            kept = self.idle.setdefault(address, [])
            if len(kept) < MAX_IDLE_PER_SERVER:
                kept.append((stream, time.monotonic()))
            else:
                stream.close()
        else:
            stream.close()
        return Reply(start.code, start.reason, collected.headers, b"".join(collected.chunks))

    def _idle(self, address: tuple[str, int]) -> IOStream | None:
        kept = self.idle.get(address)
        while kept:
            stream, _ = kept.pop()
            if not stream.closed():
                return stream
        return None

    async def _connect(self, address: tuple[str, int], exchange: _Exchange) -> IOStream:
        # A numeric address: no resolver (tornado's TCPClient asks one in a thread).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        stream = exchange.stream = IOStream(sock)
        try:
            await stream.connect(address)
        except (OSError, StreamClosedError) as exc:
            stream.close()
            reason = getattr(exc, "real_error", None) or exc
            raise NoAnswer(f"could not connect to {address[0]}:{address[1]} ({reason})") from exc
        return stream

    def prune(self, idle_seconds: float = IDLE_SECONDS) -> None:
        """Close connections idle for longer than ``idle_seconds`` (and closed ones)."""
        now = time.monotonic()
        for address in list(self.idle):
            kept = []
            for stream, since in self.idle[address]:
                if stream.closed() or now - since > idle_seconds:
                    stream.close()
                else:
                    kept.append((stream, since))
            if kept:
                self.idle[address] = kept
            else:
                del self.idle[address]

    def close(self) -> None:
        """Close every idle connection."""
        self.prune(-1)
