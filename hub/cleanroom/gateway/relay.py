"""The gateway's websocket relay: kernel and terminal sockets, frame by frame, on raw sockets.

Why: through tornado's websocket server and client the gateway spent about 0.6 ms of
Python per kernel round trip, nearly all of it reading and writing frames (a few awaits
and futures per frame, on both sides), against a target of 10% of a 7 ms round trip
(``docs/benchmarks.md``). Here both sockets are read by event-loop callbacks, each read
parsed at once into whole messages (:mod:`cleanroom.gateway.wire`), each message put
through the socket's rules (:class:`cleanroom.gateway.frames.SocketRules`, the same as
before) and the frames that pass written in one system call.

What it keeps from the tornado path, and how:

- **the handshake**: the full handler admits the upgrade exactly as any request (who,
  owner, scopes, route, origin); the workspace's server is connected here with the
  gateway's credentials and must prove itself (:mod:`cleanroom.gateway.proof`) in its
  101 answer before the browser is answered. No extension and no subprotocol is
  negotiated on either side: the gateway reads every byte as Jupyter's JSON protocol.
- **caps**: a browser's message over ``http.max_request_bytes`` and a server's over
  ``http.max_response_bytes`` end the socket (1009) as the header that announces it
  arrives; the rules' own, smaller cap withholds with a notice as before.
- **the rate**: frames towards the browser wait in order for the researcher's output
  bucket; while any wait, nothing more is read from the server (its kernel then waits
  on TCP, as it did when the pump awaited the bucket).
- **backpressure**: when more than :data:`HIGH_WATER` bytes wait for one side, the other
  side is not read until they have gone.
- **control frames** are answered by the gateway on each side and never passed on
  (their payloads are not messages the rules read or the budget counts); a close from
  either side closes both: a browser's code goes on to the server, while the browser
  hears only "going away" (1001) of a server's close, no code or reason of its choosing.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httptools
from tornado import httputil

from cleanroom.gateway import proof, wire
from cleanroom.gateway.frames import SocketRules
from cleanroom.gateway.outbox import Outbox

if TYPE_CHECKING:
    from cleanroom.gateway.app import Gateway

HIGH_WATER = 2**20
"""Bytes waiting to be sent to one side beyond which the other side is not read."""
CLOSE_WAIT_SECONDS = 5.0
"""How long a closing socket waits for its peer's end before it is dropped."""
MAX_HEADER_BYTES = 65_536
"""The server's handshake answer (status line and headers), at most."""
_READ = 2**18
log = logging.getLogger("cleanroom.gateway")


class HandshakeFailed(Exception):
    """The workspace's server did not open the websocket (the reason says why)."""


class ProofFailed(HandshakeFailed):
    """The server answered 101 without the proof of the workspace's secret."""


def handshake_problem(header: Callable[[str], str | None]) -> str | None:
    """Why a browser's request is not a websocket handshake the gateway takes (None:
    it is one). ``header`` looks up a request header by name."""
    if (header("Upgrade") or "").lower() != "websocket":
        return 'Can "Upgrade" only to "websocket".'
    tokens = {part.strip().lower() for part in (header("Connection") or "").split(",")}
    if "upgrade" not in tokens:
        return '"Connection" must include "Upgrade".'
    if (header("Sec-WebSocket-Version") or "").strip() != "13":
        return "Only websocket version 13 is spoken."
    if not (header("Sec-WebSocket-Key") or "").strip():
        return "The handshake lacks Sec-WebSocket-Key."
    return None


def accept_head(key: str) -> bytes:
    """The browser's 101 answer."""
    return (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {wire.accept_value(key.strip())}\r\n\r\n"
    ).encode("latin-1")


@dataclass
class Upstream:
    """An open websocket to a workspace's server: its socket, bytes already read past
    the handshake, and the handshake answer's headers."""

    sock: socket.socket
    unread: bytes
    headers: httputil.HTTPHeaders


class _Answer:
    """httptools' callbacks for the server's handshake answer."""

    def __init__(self) -> None:
        self.headers = httputil.HTTPHeaders()
        self.complete = False
        self.size = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self.size += len(name) + len(value)
        self.headers.add(name.decode("latin-1"), value.decode("latin-1"))

    def on_headers_complete(self) -> None:
        self.complete = True


async def connect(
    target: str,
    uri: str,
    headers: httputil.HTTPHeaders,
    secret: str,
    nonce: str,
    timeout: float = 60.0,
) -> Upstream:
    """Open the websocket ``uri`` on the server at ``target`` (``http://host:port``),
    sending ``headers``; the answer must be a 101 that proves the server knows
    ``secret`` for ``nonce``. Raises :class:`HandshakeFailed`, with the socket closed."""
    parts = urlsplit(target)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + timeout
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    if not infos:
        raise HandshakeFailed(f"{host} has no address")
    family, kind, protocol, _, address = infos[0]
    sock = socket.socket(family, kind, protocol)
    sock.setblocking(False)
    try:
        return await asyncio.wait_for(
            _handshake(loop, sock, address, host, port, uri, headers, secret, nonce),
            max(0.1, deadline - time.monotonic()),
        )
    except TimeoutError as exc:
        sock.close()
        raise HandshakeFailed("no answer in time") from exc
    except OSError as exc:
        sock.close()
        raise HandshakeFailed(str(exc) or type(exc).__name__) from exc
    except HandshakeFailed:
        sock.close()
        raise


async def _handshake(
    loop: asyncio.AbstractEventLoop,
    sock: socket.socket,
    address: Any,
    host: str,
    port: int,
    uri: str,
    headers: httputil.HTTPHeaders,
    secret: str,
    nonce: str,
) -> Upstream:
    await loop.sock_connect(sock, address)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    key = wire.new_key()
    lines = [f"GET {uri} HTTP/1.1"]
    if "Host" not in headers:
        lines.append(f"Host: {host}:{port}")
    lines.extend(f"{name}: {value}" for name, value in headers.get_all())
    lines += [
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    await loop.sock_sendall(sock, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    answer = _Answer()
    parser = httptools.HttpResponseParser(answer)
    unread = b""
    received = 0
    while not answer.complete:
        data = await loop.sock_recv(sock, _READ)
        if not data:
            raise HandshakeFailed("the server closed the connection")
        received += len(data)
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            unread = data[upgrade.args[0] :]
        except httptools.HttpParserError as exc:
            raise HandshakeFailed(f"a malformed answer ({exc})") from exc
        if received > MAX_HEADER_BYTES and not answer.complete:
            raise HandshakeFailed("an oversized answer")
    status = parser.get_status_code()
    if status != 101:
        raise HandshakeFailed(f"HTTP {status}")
    got = answer.headers
    if (got.get("Upgrade") or "").lower() != "websocket":
        raise HandshakeFailed("the answer does not upgrade to websocket")
    if got.get("Sec-WebSocket-Accept", "") != wire.accept_value(key):
        raise HandshakeFailed("the answer's Sec-WebSocket-Accept is wrong")
    if got.get("Sec-WebSocket-Extensions") or got.get("Sec-WebSocket-Protocol"):
        raise HandshakeFailed("the answer chose an extension or subprotocol nobody offered")
    if not proof.is_valid(secret, nonce, got.get(proof.PROOF_HEADER)):
        raise ProofFailed("the server could not prove it is the workspace's")
    return Upstream(sock, unread, got)


class _Side:
    """One socket of a relay: read into whole messages, written in order."""

    __slots__ = (
        "closed",
        "eof",
        "got_close",
        "masks",
        "name",
        "out",
        "reader",
        "reading",
        "sent_close",
        "sock",
    )

    def __init__(
        self, relay: Relay, name: str, sock: socket.socket, reader: wire.FrameReader, masks: bool
    ):
        self.name = name
        self.sock = sock
        self.reader = reader
        self.masks = masks  # frames sent to this side are masked (it is a server)
        self.out = Outbox(
            relay.loop,
            sock,
            drained=functools.partial(relay._drained, self),
            broken=functools.partial(relay._broken, self),
        )
        self.reading = False
        self.sent_close = False
        self.got_close = False
        self.eof = False
        self.closed = False


class Relay:
    """One browser's websocket and its workspace's, joined under ``rules``."""

    def __init__(
        self,
        gw: Gateway,
        rules: SocketRules,
        browser: socket.socket,
        browser_unread: bytes,
        greeting: bytes,
        upstream: Upstream,
        secret: str = "",
    ) -> None:
        http = gw.policy.http
        self.gw = gw
        self.rules = rules
        self.secret = secret  # the server start it joins (its route's secret)
        self.loop = asyncio.get_running_loop()
        self.bucket = gw.bucket(rules.owner, rules.server)
        self.browser = _Side(
            self, "browser", browser, wire.FrameReader(True, http.max_request_bytes), masks=False
        )
        self.upstream = _Side(
            self,
            "upstream",
            upstream.sock,
            wire.FrameReader(False, http.max_response_bytes),
            masks=True,
        )
        # Frames for the browser, in order, waiting for the output rate (and a close
        # from the server that came after them).
        self.held: collections.deque[tuple[int, bytes]] = collections.deque()
        self.retry: asyncio.TimerHandle | None = None
        self.closing = False
        self.deadline: asyncio.TimerHandle | None = None
        gw.relays.add(self)
        self._write(self.browser, [greeting])
        for side, unread in ((self.browser, browser_unread), (self.upstream, upstream.unread)):
            if unread and not self.closing:
                self._received(side, unread)
        self._flow()

    # -- reading ---------------------------------------------------------------------
    def _set_reading(self, side: _Side, wanted: bool) -> None:
        if side.closed or wanted == side.reading:
            return
        if wanted:
            self.loop.add_reader(side.sock.fileno(), self._readable, side)
        else:
            self.loop.remove_reader(side.sock.fileno())
        side.reading = wanted

    def _flow(self) -> None:
        """Read each side only while what it sends can go on."""
        if self.closing:
            # Closing: read only to see each peer's end (what it sends is dropped).
            for side in (self.browser, self.upstream):
                self._set_reading(side, not side.eof)
            return
        self._set_reading(self.browser, self.upstream.out.queued < HIGH_WATER)
        self._set_reading(self.upstream, not self.held and self.browser.out.queued < HIGH_WATER)

    def _readable(self, side: _Side) -> None:
        try:
            data = side.sock.recv(_READ)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._broken(side)
            return
        if not data:
            self._ended(side)
            return
        if self.closing:
            self._awaiting_close(side, data)
            return
        self._received(side, data)
        self._flow()

    def _awaiting_close(self, side: _Side, data: bytes) -> None:
        """Closing: what a peer still sends is dropped, but for its own close frame,
        which ends the handshake (the socket goes once ours has gone)."""
        try:
            messages = side.reader.feed(data)
        except wire.ProtocolError:
            self._drop_side(side)
            return
        if any(opcode == wire.OP_CLOSE for opcode, _, _ in messages):
            side.got_close = True
            if not side.out.waiting:
                self._drop_side(side)

    def _received(self, side: _Side, data: bytes) -> None:
        try:
            messages = side.reader.feed(data)
        except wire.ProtocolError as exc:
            log.info(
                "websocket of %s/%s: the %s broke the protocol (%s)",
                self.rules.owner,
                self.rules.server,
                side.name,
                exc.reason,
            )
            self.close(exc.code, exc.reason, blame=side)
            return
        try:
            if side is self.browser:
                for message in messages:
                    self._from_browser(*message)
                    if self.closing:
                        return
            else:
                for message in messages:
                    self._from_upstream(*message)
                    if self.closing:
                        return
                self._drain()
        except Exception:
            log.exception("websocket relay of %s/%s failed", self.rules.owner, self.rules.server)
            self.close(wire.CLOSE_INTERNAL_ERROR, "gateway error")

    # -- the rules -------------------------------------------------------------------
    def _from_browser(self, opcode: int, payload: bytes, text: str | None) -> None:
        if opcode == wire.OP_PING:
            self._write(self.browser, wire.encode(wire.OP_PONG, payload, masked=False))
            return
        if opcode == wire.OP_PONG:
            return
        if opcode == wire.OP_CLOSE:
            self._closed_by(self.browser, payload)
            return
        frame = text if text is not None else payload
        passing = self.rules.towards_workspace(frame)
        if passing is None:
            return
        self._write(self.upstream, _frame_of(passing, frame, payload, masked=True))

    def _from_upstream(self, opcode: int, payload: bytes, text: str | None) -> None:
        if opcode == wire.OP_PING:
            self._write(self.upstream, wire.encode(wire.OP_PONG, payload, masked=True))
            return
        if opcode == wire.OP_PONG:
            return
        if opcode == wire.OP_CLOSE:
            self.held.append((wire.OP_CLOSE, payload))  # after what is still held
            return
        frame = text if text is not None else payload
        for passing in self.rules.towards_browser(frame):
            if passing is frame:
                self.held.append((opcode, payload))
            elif isinstance(passing, str):
                self.held.append((wire.OP_TEXT, passing.encode()))
            else:
                self.held.append((wire.OP_BINARY, passing))

    def _drain(self) -> None:
        """Send held frames to the browser as the output rate lets them go (those that
        may go now in one system call: a kernel's reply is several messages at once)."""
        held = self.held
        parts: list[bytes] = []
        while held:
            opcode, payload = held[0]
            if opcode == wire.OP_CLOSE:
                held.popleft()
                self._write(self.browser, parts)
                self._closed_by(self.upstream, payload)
                return
            wait = self.bucket.try_take(len(payload))
            if wait > 0:
                if self.retry is None:
                    self.retry = self.loop.call_later(wait, self._drain_later)
                break
            held.popleft()
            parts += wire.encode(opcode, payload, masked=False)
        if parts:
            self._write(self.browser, parts)

    def _drain_later(self) -> None:
        self.retry = None
        self._drain()
        self._flow()

    # -- writing ---------------------------------------------------------------------
    def _write(self, side: _Side, parts: list[bytes]) -> None:
        if not (side.closed or side.sent_close):
            side.out.send(parts)

    def _drained(self, side: _Side) -> None:
        """All that waited for ``side`` has gone."""
        if self.closing:
            self._finish(side)
        else:
            self._flow()

    # -- closing ---------------------------------------------------------------------
    def _closed_by(self, side: _Side, payload: bytes) -> None:
        """``side`` sent a close frame: both sides are closed. A browser's code goes to
        the server and back to the browser; a server's goes back to the server only, the
        browser is told it went away (1001): a close code or reason is not a message the
        rules read or the budget counts, so none of the server's choosing reaches the
        browser (JupyterLab reconnects whatever the code)."""
        side.got_close = True
        try:
            code = wire.parse_close(payload)
        except wire.ProtocolError as exc:
            self.close(exc.code, exc.reason, blame=side)
            return
        if side is self.upstream:
            self.close(code, blame=side)
        else:
            self.close(code)

    def close(self, code: int | None = None, reason: str = "", blame: _Side | None = None) -> None:
        """Send both sides a close frame (``code``; None: none) and end both sockets
        once it has gone. ``blame``: the side the close comes from, when the other is
        to be told only that the socket went away (1001)."""
        if self.closing:
            return
        self.closing = True
        self.held.clear()
        if self.retry is not None:
            self.retry.cancel()
            self.retry = None
        self.deadline = self.loop.call_later(CLOSE_WAIT_SECONDS, self._drop)
        for side in (self.browser, self.upstream):
            told = code if blame is None or side is blame else wire.CLOSE_GOING_AWAY
            payload = wire.close_payload(told, reason if side is blame or blame is None else "")
            self._write(side, wire.encode(wire.OP_CLOSE, payload, masked=side.masks))
            side.sent_close = True
            if not side.out.waiting:
                self._finish(side)
        self._flow()

    def _finish(self, side: _Side) -> None:
        """All of ``side``'s output went, our close frame last: when the peer's close came
        too the socket goes (a server ends the TCP connection first, RFC 6455 7.1.1);
        else the peer is told at the TCP level and its end is waited for."""
        if side.closed:
            return
        if side.got_close or side.eof:
            self._drop_side(side)
            return
        try:
            side.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._drop_side(side)

    def _ended(self, side: _Side) -> None:
        """``side``'s peer ended its half of the connection."""
        side.eof = True
        self._set_reading(side, False)
        if not self.closing:
            self.close(None)  # gone without a close frame: the other side is told
        if not side.out.waiting:
            self._drop_side(side)  # else once the close frame has gone (_finish)

    def _broken(self, side: _Side) -> None:
        """``side``'s socket failed: nothing more goes to or comes from it."""
        side.eof = True
        self._drop_side(side)
        if not self.closing:
            self.close(None)

    def _drop_side(self, side: _Side) -> None:
        if side.closed:
            return
        self._set_reading(side, False)
        side.closed = True
        side.out.take()  # dropped with the socket
        side.sock.close()
        if self.browser.closed and self.upstream.closed:
            self._dropped()

    def _drop(self) -> None:
        """The closing handshake took too long: both sockets go now."""
        self._drop_side(self.browser)
        self._drop_side(self.upstream)

    def _dropped(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None
        self.gw.relays.discard(self)


def _frame_of(
    passing: str | bytes, frame: str | bytes, payload: bytes, masked: bool
) -> list[bytes]:
    """The frame for what the rules let pass: the bytes that came when they are unchanged."""
    if passing is frame:
        opcode = wire.OP_TEXT if isinstance(frame, str) else wire.OP_BINARY
        return wire.encode(opcode, payload, masked)
    if isinstance(passing, str):
        return wire.encode(wire.OP_TEXT, passing.encode(), masked)
    return wire.encode(wire.OP_BINARY, passing, masked)
