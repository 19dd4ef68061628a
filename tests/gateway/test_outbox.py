"""Writing to a non-blocking socket (cleanroom.gateway.outbox), on a real socket pair."""

from __future__ import annotations

import asyncio
import os
import socket

from cleanroom.gateway.outbox import IOV_MAX, Outbox, after_sent


def _pair() -> tuple[socket.socket, socket.socket]:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    return ours, theirs


async def _read(sock: socket.socket, size: int) -> bytes:
    loop = asyncio.get_running_loop()
    got = bytearray()
    sock.setblocking(False)
    while len(got) < size:
        got += await loop.sock_recv(sock, size - len(got))
    return bytes(got)


def test_what_is_left_after_a_partial_send() -> None:
    views = [memoryview(b"abc"), memoryview(b"defg")]
    assert [bytes(v) for v in after_sent(views, 0)] == [b"abc", b"defg"]
    assert [bytes(v) for v in after_sent(views, 2)] == [b"c", b"defg"]
    assert [bytes(v) for v in after_sent(views, 3)] == [b"defg"]
    assert after_sent(views, 7) == []


async def test_what_the_socket_does_not_take_waits_in_order_and_then_drains() -> None:
    ours, theirs = _pair()
    drained: list[bool] = []
    out = Outbox(asyncio.get_running_loop(), ours, lambda: drained.append(True), lambda: None)
    parts = [os.urandom(300_000), b"", os.urandom(5), os.urandom(200_000)]
    out.send(parts[:2])
    out.send(parts[2:])  # after what waits, never before it
    assert out.waiting and 0 < out.queued <= 500_005
    got = await _read(theirs, 500_005)
    assert got == b"".join(parts)
    await asyncio.sleep(0.05)
    assert drained == [True] and not out.waiting and out.queued == 0
    ours.close()
    theirs.close()


async def test_more_buffers_than_one_call_takes_all_go() -> None:
    ours, theirs = _pair()
    out = Outbox(asyncio.get_running_loop(), ours, lambda: None, lambda: None)
    parts = [bytes([i % 256]) * 3 for i in range(IOV_MAX * 3)]
    out.send(parts)
    assert await _read(theirs, len(parts) * 3) == b"".join(parts)
    ours.close()
    theirs.close()


async def test_a_broken_socket_is_reported_and_what_waits_can_be_taken_back() -> None:
    ours, theirs = _pair()
    broken: list[bool] = []
    out = Outbox(asyncio.get_running_loop(), ours, lambda: None, lambda: broken.append(True))
    out.send([os.urandom(300_000)])
    assert out.waiting
    theirs.close()
    await asyncio.sleep(0.1)
    assert broken == [True]
    assert out.take() and not out.writing  # what never went, no longer watched for
    ours.close()


async def test_taken_back_bytes_are_what_had_not_gone() -> None:
    ours, theirs = _pair()
    out = Outbox(asyncio.get_running_loop(), ours, lambda: None, lambda: None)
    payload = os.urandom(300_000)
    out.send([payload])
    queued = out.queued
    unsent = out.take()
    assert len(unsent) == queued > 0 and payload.endswith(unsent)
    assert not out.waiting and not out.writing and out.queued == 0
    ours.close()
    theirs.close()
