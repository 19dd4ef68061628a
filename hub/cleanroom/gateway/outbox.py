"""Writing to a non-blocking socket from event-loop callbacks, for the lean front's
connections (:mod:`cleanroom.gateway.front`) and both sides of a websocket relay
(:mod:`cleanroom.gateway.relay`).

What the socket takes at once goes in one system call (an answer's head and body, a
kernel reply's frames: never copied together first); the rest waits, in order, as views
of the bytes it came in (a partial send copies nothing), for the socket to take more.
"""

from __future__ import annotations

import asyncio
import collections
import socket
from collections.abc import Callable, Iterable

IOV_MAX = 512
"""Buffers per ``sendmsg`` (Linux takes at most 1024)."""


def after_sent(views: list[memoryview], sent: int) -> list[memoryview]:
    """What is left of ``views`` once ``sent`` bytes of them went."""
    for i, view in enumerate(views):
        if sent < len(view):
            return [view[sent:], *views[i + 1 :]]
        sent -= len(view)
    return []


class Outbox:
    """The bytes waiting for one socket. ``drained`` is called when all that waited has
    gone, ``broken`` when the socket failed (nothing more is written then)."""

    __slots__ = ("broken", "drained", "loop", "out", "queued", "sock", "writing")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        drained: Callable[[], None],
        broken: Callable[[], None],
    ) -> None:
        self.loop = loop
        self.sock = sock
        self.drained = drained
        self.broken = broken
        self.out: collections.deque[memoryview] = collections.deque()
        self.queued = 0  # bytes in ``out``
        self.writing = False  # the loop watches the socket for room

    @property
    def waiting(self) -> bool:
        """Whether anything waits for the socket."""
        return bool(self.out)

    def send(self, parts: Iterable[bytes]) -> None:
        """Send ``parts`` after whatever waits, as much as the socket takes now."""
        views = [memoryview(p) for p in parts if p]
        if not views:
            return
        if not self.out:
            try:
                sent = self.sock.sendmsg(views[:IOV_MAX])
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                self.broken()
                return
            views = after_sent(views, sent)
            if not views:
                return
        self.out.extend(views)
        self.queued += sum(len(v) for v in views)
        if not self.writing:
            self.loop.add_writer(self.sock.fileno(), self._writable)
            self.writing = True

    def take(self) -> bytes:
        """What waits, no longer sent from here (the socket goes to another writer, or
        nowhere)."""
        self._unwatch()
        unsent = b"".join(self.out)
        self.out.clear()
        self.queued = 0
        return unsent

    def _writable(self) -> None:
        views = list(self.out)
        try:
            sent = self.sock.sendmsg(views[:IOV_MAX])
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.broken()
            return
        self.queued -= sent
        self.out.clear()
        self.out.extend(after_sent(views, sent))
        if self.out:
            return
        self._unwatch()
        self.drained()

    def _unwatch(self) -> None:
        if self.writing:
            self.loop.remove_writer(self.sock.fileno())
            self.writing = False
