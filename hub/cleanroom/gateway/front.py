"""The gateway's public listener: a lean HTTP/1.1 front before the tornado application.

Why: through tornado's server and ``RequestHandler`` the gateway spent about 2 ms of
Python per JupyterLab page, most of the page's overhead against the direct path
(``docs/benchmarks.md``). This front parses each request with llhttp (``httptools``)
on raw non-blocking sockets and forwards, in a few function calls, the requests whose
every decision the full handler (``cleanroom.gateway.proxy.WorkspaceHandler``) would
take the same way from what is already known. Everything else goes to that handler,
on the same connection:

- plain HTTP in-process, through tornado's own ``HTTPConnection`` interface (the
  handler writes its answer here, which frames it): first requests of a session
  (the hub is asked who it is), anything refused, cookie-authenticated writes (the
  XSRF double submit), the OAuth callback, restricted mode, odd requests;
- a websocket upgrade the same way: the handler admits it like any request, then takes
  the socket itself (:meth:`_Exchange.take_socket`, for the relay of kernel and terminal
  sockets, :mod:`cleanroom.gateway.relay`) or has tornado's websocket classes take it
  (:meth:`_Exchange.detach`, the viewer's VNC stream). An upgrade it refuses is answered
  and the connection closed (what follows an upgrade request is not HTTP).

What the lean path decides itself, and why that is the same decision:

- **who**: an *admission* is a note the full handler makes after it has asked the hub
  and checked owner and scopes, keyed by the request's exact credentials (the whole
  ``Authorization`` header and the session cookie, or the whole ``Cookie`` header) and
  the workspace. It lasts :data:`ADMISSION_SECONDS`, within the hub cache's own age
  (``HubAuth.cache_max_age``, 300 s), during which the handler too answers from its
  cache. No note, another credential, another workspace: the full handler.
- **what**: the route allowlist (``policy.route_for``), the registered backend (a
  stopped workspace's route is gone at once), restricted mode (never lean): looked up
  on every request, exactly as the handler does.
- **browser sessions**: only safe methods are lean, only from our own site
  (``Sec-Fetch-Site``), never in websocket fetch mode (the hub's cookie then does not
  count), only once the page's XSRF cookie is set (the handler sets it), never with a
  ``?token=`` (the hub reads URL tokens in some modes).
- **the answer**: the same code as the handler's (``cleanroom.gateway.forward``):
  proof, caps, content rules, budget, accounting, security headers.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import re
import socket
import time
from collections.abc import Callable
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

import httptools
from tornado import httputil
from tornado.escape import url_unescape
from tornado.iostream import IOStream

from cleanroom.gateway import forward
from cleanroom.gateway.outbox import Outbox

if TYPE_CHECKING:
    from cleanroom.gateway.app import Gateway

ADMISSION_SECONDS = 30.0
"""How long an admission by the full handler lets the same credentials go the lean way."""
MAX_ADMISSIONS = 10_000
"""Admissions kept at most (the oldest go first); a missing one only costs a hub check."""
MAX_HEADER_BYTES = 65_536
"""The request line and headers, at most (tornado's own default)."""
log = logging.getLogger("cleanroom.gateway")
_READ = 2**18
_WORKSPACE = re.compile(rb"^/user/([^/]+)/([^/]+)(/.*)?$")
_TOKEN = re.compile(r"(?:token|bearer)\s+(.+)", re.IGNORECASE)
_LEAN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"})
_COOKIE_METHODS = frozenset({"GET", "HEAD"})
_SESSION_COOKIE = "jupyterhub-session-id"
_XSRF_COOKIE = "_xsrf"

Key = tuple[str, ...]


def credential_key(authorization: str | None, cookie: str | None, by_token: bool) -> Key | None:
    """The admission key of a request's credentials (None: nothing to key on).

    ``by_token``: the hub recognised the request's ``Authorization`` token (else its
    cookie). A token is keyed with the session cookie (the hub's cache is too); a cookie
    session by the whole ``Cookie`` header, only when no token header came with it.
    """
    if by_token:
        if not authorization or not _TOKEN.match(authorization):
            return None
        session = httputil.parse_cookie(cookie).get(_SESSION_COOKIE, "") if cookie else ""
        return ("token", authorization, session)
    if authorization is not None or not cookie:
        return None
    return ("cookie", cookie)


class Admissions:
    """Credentials the full handler admitted to a workspace, for a short while."""

    def __init__(self, seconds: float = ADMISSION_SECONDS, limit: int = MAX_ADMISSIONS) -> None:
        self.seconds = seconds
        self.limit = limit
        self._until: collections.OrderedDict[tuple[Key, str, str], float] = (
            collections.OrderedDict()
        )

    def admit(self, key: Key, owner: str, server: str) -> None:
        entry = (key, owner, server)
        self._until[entry] = time.monotonic() + self.seconds
        self._until.move_to_end(entry)
        while len(self._until) > self.limit:
            self._until.popitem(last=False)

    def admitted(self, key: Key, owner: str, server: str) -> bool:
        entry = (key, owner, server)
        until = self._until.get(entry)
        if until is None:
            return False
        if until < time.monotonic():
            del self._until[entry]
            return False
        return True


class _Request:
    """One parsed request (httptools' callbacks fill it)."""

    __slots__ = ("body", "header_bytes", "headers", "keep_alive", "method", "upgrade", "url")

    def __init__(self) -> None:
        self.url = b""
        self.headers: dict[str, str] = {}
        self.header_bytes = 0
        self.body: list[bytes] = []
        self.method = ""
        self.keep_alive = True
        self.upgrade = False

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class _Context:
    """What tornado's ``HTTPServerRequest`` reads of its connection's context."""

    def __init__(self, address: Any) -> None:
        self.address = address
        self.remote_ip = address[0] if isinstance(address, tuple) else "127.0.0.1"
        self.protocol = "http"
        self.trusted_downstream: set[str] = set()

    def __str__(self) -> str:
        return self.remote_ip


class _Resumed(IOStream):
    """A socket handed to tornado with bytes already read from it put back in front
    (and answer bytes the socket did not take yet sent first)."""

    def __init__(self, sock: socket.socket, pending: bytes, unsent: bytes) -> None:
        super().__init__(sock)
        self._pending = memoryview(pending)
        if unsent:
            self.write(unsent)

    def read_from_fd(self, buf: Any) -> int | None:
        if self._pending:
            n = min(len(buf), len(self._pending))
            buf[:n] = self._pending[:n]
            self._pending = self._pending[n:]
            return n
        return super().read_from_fd(buf)


class Front:
    """The public listener (see the module's text)."""

    def __init__(self, gateway: Gateway, app: Any) -> None:
        self.gw = gateway
        self.app = app
        self.sock: socket.socket | None = None
        self.connections: set[_Connection] = set()
        self._date = (0, "")

    def listen(self, port: int, host: str = "127.0.0.1") -> int:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
        sock.setblocking(False)
        self.sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._accept)
        return int(sock.getsockname()[1])

    def close(self) -> None:
        if self.sock is not None:
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
            self.sock.close()
            self.sock = None
        for conn in list(self.connections):
            conn.close()
        for relay in list(self.gw.relays):
            relay.close(1001, "the gateway is stopping")

    def _accept(self) -> None:
        assert self.sock is not None
        while True:
            try:
                sock, address = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # out of descriptors and the like: try at the next event
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.connections.add(_Connection(self, sock, address))

    def date(self) -> str:
        now = int(time.time())
        if self._date[0] != now:
            self._date = (now, formatdate(now, usegmt=True))
        return self._date[1]


class _Connection:
    """One client connection: requests parsed, answered in order, one at a time."""

    def __init__(self, front: Front, sock: socket.socket, address: Any) -> None:
        self.front = front
        self.sock = sock
        self.address = address
        self.loop = asyncio.get_running_loop()
        self.parser = httptools.HttpRequestParser(self)
        self.current = _Request()
        self.pending: collections.deque[_Request] = collections.deque()
        self.leftover = b""  # bytes after an upgrade request
        self.refusal: _TooLarge | None = None
        # Answer bytes the socket did not take yet.
        self.out = Outbox(self.loop, sock, drained=self._next, broken=self.close)
        self.busy = False
        self.reading = False
        self.closed = False
        self._resume_reading()

    # -- the socket ------------------------------------------------------------------
    def _resume_reading(self) -> None:
        if not self.reading and not self.closed:
            self.loop.add_reader(self.sock.fileno(), self._readable)
            self.reading = True

    def _pause_reading(self) -> None:
        if self.reading:
            self.loop.remove_reader(self.sock.fileno())
            self.reading = False

    def _readable(self) -> None:
        try:
            data = self.sock.recv(_READ)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close()
            return
        if not data:
            self.close()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self.leftover = data[upgrade.args[0] :]
            if not self.pending or self.pending[-1] is not self.current:
                self.pending.append(self.current)
            self._pause_reading()  # what follows belongs to tornado's websocket
        except (httptools.HttpParserError, _TooLarge):
            # A callback's refusal comes back wrapped by the parser: it was kept.
            refusal = self.refusal or _TooLarge(400, "Bad Request")
            self._reject(refusal.status, refusal.reason)
            return
        self._next()

    def write(self, *parts: bytes) -> None:
        """Send ``parts`` in order (one system call for all when the socket takes them:
        an answer's head and body are never copied together)."""
        if self.closed:
            return
        self.out.send(parts)
        if self.out.waiting:
            self._pause_reading()  # a slow reader gets nothing more until it catches up

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._pause_reading()
        self.out.take()
        self.sock.close()
        self.front.connections.discard(self)

    def _detach(self) -> tuple[socket.socket, bytes, bytes]:
        """The socket, no longer ours, with the bytes read past the upgrade request and
        those written that it did not take yet."""
        self._pause_reading()
        unsent = self.out.take()
        self.closed = True
        self.front.connections.discard(self)
        return self.sock, self.leftover, unsent

    # -- httptools' callbacks --------------------------------------------------------
    def on_message_begin(self) -> None:
        self.current = _Request()

    def on_url(self, url: bytes) -> None:
        self.current.url += url
        self._count(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        req = self.current
        self._count(len(name) + len(value) + 4)
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1").strip(" \t")  # whitespace around is no part of it
        if key in req.headers:  # repeated: one comma-joined value, as tornado's get()
            text = f"{req.headers[key]},{text}"
        req.headers[key] = text

    def on_headers_complete(self) -> None:
        req = self.current
        req.method = self.parser.get_method().decode("latin-1")
        req.keep_alive = self.parser.should_keep_alive()
        req.upgrade = self.parser.should_upgrade()
        expects = (req.header("Expect") or "").lower() == "100-continue"
        if expects and not self.busy and not self.pending:  # never before an earlier answer
            self.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        req = self.current
        req.body.append(body)
        req.header_bytes += len(body)
        if req.header_bytes > self.front.gw.policy.http.max_request_bytes + MAX_HEADER_BYTES:
            self._refuse(_TooLarge(413, "Payload Too Large"))

    def on_message_complete(self) -> None:
        self.pending.append(self.current)
        if len(self.pending) > 1:
            self._pause_reading()  # pipelined: answer in order before reading more

    def _count(self, n: int) -> None:
        self.current.header_bytes += n
        if self.current.header_bytes > MAX_HEADER_BYTES:
            self._refuse(_TooLarge(431, "Request Header Fields Too Large"))

    def _refuse(self, error: _TooLarge) -> None:
        self.refusal = error
        raise error

    # -- answering -------------------------------------------------------------------
    def _next(self) -> None:
        if self.busy or self.out.waiting or self.closed:
            return
        if not self.pending:
            self._resume_reading()
            return
        req = self.pending.popleft()
        self.busy = True
        lean = None if req.upgrade else self._lean(req)
        if lean is not None:
            task = asyncio.ensure_future(self._serve_lean(req, *lean))
        else:
            task = asyncio.ensure_future(self._serve_full(req))
        task.add_done_callback(self._served)

    def _served(self, task: asyncio.Future[Any]) -> None:
        self.busy = False
        error = None if task.cancelled() else task.exception()
        if error is not None:  # a fault of ours: nothing half-answered goes on
            log.error("answering a request failed", exc_info=error)
            self.close()
            return
        self._next()

    def _reject(self, status: int, reason: str) -> None:
        body = b'{"message": "malformed or oversized request"}'
        self.write(
            (
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            ).encode()
            + body
        )
        self.pending.clear()
        self.busy = True  # nothing more is read or answered
        self._close_when_written()

    def _close_when_written(self) -> None:
        if not self.out.waiting:
            self.close()
        else:
            self.loop.call_later(0.05, self._close_when_written)

    def _lean(self, req: _Request) -> tuple[Any, str, str] | None:
        """(backend, kind, host) when everything the full handler decides is known."""
        gw = self.front.gw
        method = req.method
        if method not in _LEAN_METHODS:
            return None
        path, _, query = req.url.partition(b"?")
        if b"token=" in query:
            return None
        found = _WORKSPACE.match(path)
        if found is None:
            return None
        try:
            owner = url_unescape(found.group(1), encoding=None, plus=False).decode()
            server = url_unescape(found.group(2), encoding=None, plus=False).decode()
            rest = url_unescape(found.group(3) or b"", encoding=None, plus=False).decode()
        except UnicodeDecodeError:
            return None
        rest = rest.lstrip("/")
        if req.header("Sec-Fetch-Mode") == "websocket" or req.header("Upgrade"):
            return None
        authorization = req.header("Authorization")
        cookie = req.header("Cookie")
        if authorization is not None:
            key = credential_key(authorization, cookie, by_token=True)
        else:
            if method not in _COOKIE_METHODS or cookie is None:
                return None
            if req.header("Sec-Fetch-Site") not in (None, "same-origin", "none"):
                return None
            if not httputil.parse_cookie(cookie).get(_XSRF_COOKIE):
                return None
            key = credential_key(None, cookie, by_token=False)
        if key is None or not gw.admissions.admitted(key, owner, server):
            return None
        backend = gw.routes.get(owner, server)
        if backend is None or backend.viewer:
            return None
        if gw.policy.route_for(method, rest) is None:
            return None
        return backend, forward.route_kind(rest), req.header("Host") or "127.0.0.1"

    async def _serve_lean(self, req: _Request, backend: Any, kind: str, host: str) -> None:
        gw = self.front.gw
        method = req.method
        body = b"".join(req.body) if method in ("POST", "PUT", "PATCH") else None
        header: Callable[[str], str | None] = req.header
        try:
            answer = await forward.forward(
                gw,
                backend,
                kind=kind,
                method=method,
                uri=req.url.decode("latin-1"),
                body=body,
                header=header,
                host=host,
            )
        except forward.Refused as exc:
            path = req.url.partition(b"?")[0].decode("latin-1")
            rest = path[len(backend.prefix) :]
            answer = forward.refusal(
                gw,
                exc,
                owner=backend.owner,
                server=backend.server,
                rest=rest,
                method=method,
                path=path,
                header=header,
            )
        self._write_answer(answer, req)

    def _write_answer(self, answer: forward.Answer, req: _Request) -> None:
        lines = [f"HTTP/1.1 {answer.status} {answer.reason}", f"Date: {self.front.date()}"]
        lines.extend(f"{name}: {value}" for name, value in answer.headers)
        bodiless = answer.status in (204, 304) or 100 <= answer.status < 200
        if not bodiless:
            lines.append(f"Content-Length: {len(answer.body)}")
        if not req.keep_alive:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.write(head, answer.body if req.method != "HEAD" else b"")
        if not req.keep_alive:
            self.busy = True
            self._close_when_written()

    async def _serve_full(self, req: _Request) -> None:
        """The tornado application answers, in-process, on this connection."""
        exchange = _Exchange(self, req)
        delegate = self.front.app.start_request(None, exchange)
        headers = httputil.HTTPHeaders()
        for name, value in req.headers.items():
            headers.add(name, value)
        start = httputil.RequestStartLine(req.method, req.url.decode("latin-1"), "HTTP/1.1")
        await _maybe(delegate.headers_received(start, headers))
        for chunk in req.body:
            await _maybe(delegate.data_received(chunk))
        delegate.finish()
        await exchange.done


class _TooLarge(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


async def _maybe(result: Any) -> None:
    if result is not None:
        await result


class _Exchange(httputil.HTTPConnection):
    """Tornado's side of one request the full handler answers: what it writes is framed
    here (Content-Length, or chunks when it did not give one) onto the connection."""

    def __init__(self, conn: _Connection, req: _Request) -> None:
        self.conn = conn
        self.req = req
        self.context = _Context(conn.address)
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.chunked = False
        self.status = 0

    def set_close_callback(self, callback: Any) -> None:
        return  # the answer is written whole; a closed client only loses it

    def write_headers(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
        chunk: bytes | None = None,
    ) -> asyncio.Future[None]:
        assert isinstance(start_line, httputil.ResponseStartLine)
        code = self.status = start_line.code
        bodiless = code in (204, 304) or code < 200 or self.req.method == "HEAD"
        if "Content-Length" not in headers and not bodiless:
            self.chunked = True
            headers["Transfer-Encoding"] = "chunked"
        if self._closes:
            headers["Connection"] = "close"
        lines = [f"HTTP/1.1 {start_line.code} {start_line.reason}"]
        lines.extend(f"{name}: {value}" for name, value in headers.get_all())
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if chunk and self.req.method != "HEAD":
            data += self._frame(chunk)
        self.conn.write(data)
        return _done()

    def write(self, chunk: bytes) -> asyncio.Future[None]:
        if chunk and self.req.method != "HEAD":
            self.conn.write(self._frame(chunk))
        return _done()

    def _frame(self, chunk: bytes) -> bytes:
        return b"%x\r\n%s\r\n" % (len(chunk), chunk) if self.chunked else chunk

    @property
    def _closes(self) -> bool:
        """The connection ends with this answer: the client asked, or it refuses an
        upgrade (whatever follows an upgrade request is not HTTP). An accepted upgrade
        (101) is taken over instead (:meth:`detach`)."""
        return (not self.req.keep_alive or self.req.upgrade) and self.status != 101

    def finish(self) -> None:
        if self.chunked:
            self.conn.write(b"0\r\n\r\n")
        if self._closes and not self.conn.closed:
            self.conn.busy = True
            self.conn._close_when_written()
        if not self.done.done():
            self.done.set_result(None)

    def take_socket(self) -> tuple[socket.socket, bytes, bytes]:
        """An accepted upgrade's socket, no longer the front's: ``(socket, bytes read
        past the request, bytes written that it has not taken yet)``."""
        if not self.req.upgrade:
            raise RuntimeError("only an upgrade takes its connection over")
        taken = self.conn._detach()
        if not self.done.done():
            self.done.set_result(None)
        return taken

    def detach(self) -> IOStream:
        """tornado's websocket classes take the socket (the viewer's VNC stream)."""
        sock, unread, unsent = self.take_socket()
        return _Resumed(sock, unread, unsent)


def _done() -> asyncio.Future[None]:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future
