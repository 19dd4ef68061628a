"""Websocket framing (cleanroom.gateway.wire): what the relay reads is what was sent.

Frames made by tornado's own websocket writer (an independent implementation) are read
back whole however the bytes arrive, and every breach of RFC 6455 the reader checks
raises with the close code the relay answers.
"""

from __future__ import annotations

import asyncio
import os
import struct
from typing import Any

import pytest
from cleanroom.gateway import wire
from tornado.websocket import WebSocketProtocol13, _WebSocketParams


class _Stream:
    """Collects what tornado's protocol writes."""

    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> Any:
        self.data += data
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


async def _tornado_frames(messages: list[bytes | str], masked: bool) -> bytes:
    """What tornado writes for ``messages`` (text for str, binary for bytes)."""

    class _Handler:
        close_code = None

    protocol = WebSocketProtocol13(
        _Handler(),  # type: ignore[arg-type]
        mask_outgoing=masked,
        params=_WebSocketParams(),
    )
    stream = _Stream()
    protocol.stream = stream  # type: ignore[assignment]
    for message in messages:
        await protocol.write_message(message, binary=isinstance(message, bytes))
    return stream.data


SIZES = [0, 1, 125, 126, 127, 65535, 65536, 200_000]


@pytest.mark.parametrize("masked", [True, False], ids=["from-a-browser", "from-a-server"])
@pytest.mark.parametrize("chunk", [1, 7, 4096, 10**7], ids=["1", "7", "4096", "whole"])
async def test_messages_are_read_back_whole_however_the_bytes_arrive(
    masked: bool, chunk: int
) -> None:
    messages: list[bytes | str] = []
    for n in SIZES:
        messages.append(os.urandom(n))
        messages.append("é" * (n // 2))
    data = await _tornado_frames(messages, masked)
    reader = wire.FrameReader(masked, max_message=10**6)
    got: list[wire.Message] = []
    for i in range(0, len(data), chunk):
        got.extend(reader.feed(data[i : i + chunk]))
    assert [(op, payload) for op, payload, _ in got] == [
        (wire.OP_BINARY, m) if isinstance(m, bytes) else (wire.OP_TEXT, m.encode())
        for m in messages
    ]
    assert [text for _, _, text in got] == [None if isinstance(m, bytes) else m for m in messages]
    assert reader.wire_bytes == len(data)


def test_encode_and_read_agree_both_ways() -> None:
    for masked in (True, False):
        for n in SIZES:
            payload = os.urandom(n)
            data = b"".join(wire.encode(wire.OP_BINARY, payload, masked))
            assert wire.FrameReader(masked, 10**6).feed(data) == [(wire.OP_BINARY, payload, None)]


def _frame(opcode: int, payload: bytes, fin: bool = True, rsv: int = 0) -> bytes:
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    key = os.urandom(4)
    n = len(payload)
    length = bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n)
    return head + length + key + wire.mask_bytes(key, payload)


def test_fragments_are_joined_and_control_frames_between_them_come_at_once() -> None:
    reader = wire.FrameReader(True, 100)
    data = (
        _frame(wire.OP_TEXT, b"hel", fin=False)
        + _frame(wire.OP_PING, b"p")
        + _frame(wire.OP_CONTINUATION, b"lo", fin=False)
        + _frame(wire.OP_CONTINUATION, b"!")
    )
    assert reader.feed(data) == [(wire.OP_PING, b"p", None), (wire.OP_TEXT, b"hello!", "hello!")]


def test_text_split_inside_a_character_is_joined_before_it_is_checked() -> None:
    text = "naïve".encode()
    reader = wire.FrameReader(True, 100)
    data = _frame(wire.OP_TEXT, text[:3], fin=False) + _frame(wire.OP_CONTINUATION, text[3:])
    assert reader.feed(data) == [(wire.OP_TEXT, text, "naïve")]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (_frame(wire.OP_TEXT, b"x", rsv=0x40), wire.CLOSE_PROTOCOL_ERROR),
        (_frame(wire.OP_TEXT, b"x", rsv=0x10), wire.CLOSE_PROTOCOL_ERROR),
        (_frame(0x3, b"x"), wire.CLOSE_PROTOCOL_ERROR),
        (_frame(0xB, b"x"), wire.CLOSE_PROTOCOL_ERROR),
        (_frame(wire.OP_CONTINUATION, b"x"), wire.CLOSE_PROTOCOL_ERROR),
        (_frame(wire.OP_PING, b"x", fin=False), wire.CLOSE_PROTOCOL_ERROR),
        (_frame(wire.OP_PING, b"x" * 126), wire.CLOSE_PROTOCOL_ERROR),
        (
            _frame(wire.OP_TEXT, b"a", fin=False) + _frame(wire.OP_BINARY, b"b"),
            wire.CLOSE_PROTOCOL_ERROR,
        ),
        (_frame(wire.OP_TEXT, b"\xc3"), wire.CLOSE_INVALID_DATA),
        (_frame(wire.OP_TEXT, b"\xed\xa0\x80"), wire.CLOSE_INVALID_DATA),  # a surrogate
        (_frame(wire.OP_BINARY, b"x" * 101), wire.CLOSE_TOO_BIG),
        (
            _frame(wire.OP_BINARY, b"x" * 60, fin=False) + _frame(wire.OP_CONTINUATION, b"x" * 41),
            wire.CLOSE_TOO_BIG,
        ),
        # A 64-bit length far past the cap: refused on its header alone.
        (bytes([0x82, 0xFF]) + struct.pack("!Q", 2**62), wire.CLOSE_TOO_BIG),
    ],
    ids=[
        "rsv1",
        "rsv3",
        "data-opcode-3",
        "control-opcode-b",
        "continuation-of-nothing",
        "fragmented-ping",
        "long-ping",
        "message-inside-another",
        "truncated-utf8",
        "surrogate-utf8",
        "over-the-cap",
        "fragments-over-the-cap",
        "huge-length",
    ],
)
def test_breaches_raise_with_the_close_code(data: bytes, code: int) -> None:
    with pytest.raises(wire.ProtocolError) as raised:
        wire.FrameReader(True, 100).feed(data)
    assert raised.value.code == code


def test_masking_must_match_the_side() -> None:
    masked = _frame(wire.OP_TEXT, b"x")
    with pytest.raises(wire.ProtocolError):
        wire.FrameReader(False, 100).feed(masked)  # a server never masks
    with pytest.raises(wire.ProtocolError):
        wire.FrameReader(True, 100).feed(bytes([0x81, 0x01]) + b"x")  # a browser always does


@pytest.mark.parametrize(
    ("payload", "expected"),
    [(b"", None), (struct.pack("!H", 1000), 1000), (struct.pack("!H", 4321) + b"why", 4321)],
)
def test_close_codes_are_read(payload: bytes, expected: int | None) -> None:
    assert wire.parse_close(payload) == expected


@pytest.mark.parametrize(
    "payload",
    [
        b"\x03",
        struct.pack("!H", 1005),
        struct.pack("!H", 1006),
        struct.pack("!H", 999),
        struct.pack("!H", 5000),
        struct.pack("!H", 1000) + b"\xff",
    ],
)
def test_bad_close_frames_raise(payload: bytes) -> None:
    with pytest.raises(wire.ProtocolError):
        wire.parse_close(payload)


def test_the_accept_value_is_the_rfcs_example() -> None:
    assert wire.accept_value("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_a_close_reason_is_cut_to_a_control_frame_without_breaking_a_character() -> None:
    payload = wire.close_payload(1000, "é" * 200)
    assert len(payload) <= wire.MAX_CONTROL_PAYLOAD
    assert wire.parse_close(payload) == 1000
