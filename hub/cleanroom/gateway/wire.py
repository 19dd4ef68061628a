"""Websocket framing (RFC 6455) for the gateway's relay: bytes in, whole messages out.

No I/O here: :class:`FrameReader` takes whatever a socket gave and returns the complete
messages in it; :func:`encode` makes the frames to send. The reader is strict, because
every byte it lets through meets the gateway's rules as the message it says it is:

- a browser's frames must be masked and a server's must not (section 5.1);
- no extension was negotiated, so any reserved bit is an error;
- control frames are at most 125 bytes and never fragmented; data frames of a message
  continue with continuation frames only, and a new message never starts inside one;
- a message (all its fragments) longer than the cap is refused as its first header
  arrives, before its payload is buffered (close code 1009);
- a text message must be valid UTF-8 (1007); a close frame's code must be one a peer may
  send, and its reason UTF-8.

Any breach raises :class:`ProtocolError` with the close code to answer with.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct

from tornado.util import _websocket_mask as mask_bytes  # C when tornado's speedups load

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA
DATA_OPCODES = frozenset({OP_TEXT, OP_BINARY})
CONTROL_OPCODES = frozenset({OP_CLOSE, OP_PING, OP_PONG})

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_INVALID_DATA = 1007
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL_ERROR = 1011

MAX_CONTROL_PAYLOAD = 125
_FIN = 0x80
_RSV = 0x70
_MASKED = 0x80
_ACCEPT_MAGIC = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


Message = tuple[int, bytes, str | None]
"""``(opcode, payload, text)``: ``text`` is a text message's payload decoded (else None)."""


class ProtocolError(Exception):
    """The peer broke the protocol; ``code`` is the close code to answer with."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def accept_value(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a handshake's ``Sec-WebSocket-Key``."""
    return base64.b64encode(hashlib.sha1(key.encode("latin-1") + _ACCEPT_MAGIC).digest()).decode()


def new_key() -> str:
    """A client handshake's ``Sec-WebSocket-Key`` (16 random bytes, base64)."""
    return base64.b64encode(os.urandom(16)).decode()


def valid_close_code(code: int) -> bool:
    """A code a peer may put in a close frame (section 7.4; 1005, 1006, 1015 never)."""
    return code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011) or (3000 <= code <= 4999)


def encode(opcode: int, payload: bytes, masked: bool) -> list[bytes]:
    """One final frame of ``payload``: its header and payload, separately (the caller
    sends both in one system call; a large payload is never copied to join them)."""
    n = len(payload)
    bit = _MASKED if masked else 0
    if n < 126:
        head = struct.pack("!BB", _FIN | opcode, bit | n)
    elif n < 65536:
        head = struct.pack("!BBH", _FIN | opcode, bit | 126, n)
    else:
        head = struct.pack("!BBQ", _FIN | opcode, bit | 127, n)
    if not masked:
        return [head, payload]
    key = os.urandom(4)
    return [head + key, mask_bytes(key, payload) if payload else b""]


def close_payload(code: int | None, reason: str = "") -> bytes:
    """The payload of a close frame (empty: no code)."""
    if code is None:
        return b""
    reason_bytes = reason.encode()[: MAX_CONTROL_PAYLOAD - 2]
    return struct.pack("!H", code) + reason_bytes.decode("utf-8", "ignore").encode()


def parse_close(payload: bytes) -> int | None:
    """The code of a received close frame (None: it gave none); a bad one raises."""
    if not payload:
        return None
    if len(payload) == 1:
        raise ProtocolError(CLOSE_PROTOCOL_ERROR, "a close frame of one byte")
    (code,) = struct.unpack_from("!H", payload)
    if not valid_close_code(code):
        raise ProtocolError(CLOSE_PROTOCOL_ERROR, f"close code {code} may not be sent")
    try:
        payload[2:].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(CLOSE_INVALID_DATA, "a close reason that is not UTF-8") from exc
    return int(code)


class FrameReader:
    """Messages out of one direction of a websocket.

    ``masked``: the peer must mask (it is a browser) or must not (it is a server).
    ``max_message``: the most payload bytes of one message, all fragments together.
    :meth:`feed` returns a :data:`Message` for each complete data message and each
    control frame, in arrival order.
    """

    def __init__(self, masked: bool, max_message: int) -> None:
        self.masked = masked
        self.max_message = max_message
        self._buffer = bytearray()
        self._need = 2  # bytes the next frame needs at least before it is worth parsing
        self._opcode: int | None = None  # the data message being continued
        self._fragments: list[bytes] = []
        self._fragmented = 0
        self.wire_bytes = 0

    def feed(self, data: bytes) -> list[Message]:
        self.wire_bytes += len(data)
        buf: bytes | bytearray
        if self._buffer:
            self._buffer += data
            buf = self._buffer
        else:
            buf = data  # the common case: parsed where it lies, nothing copied first
        out: list[Message] = []
        pos = 0
        end = len(buf)
        while end - pos >= self._need:
            frame = self._frame(buf, pos, end)
            if frame is None:
                break
            pos, message = frame
            if message is not None:
                out.append(message)
        if buf is self._buffer:
            if pos:
                del self._buffer[:pos]
        elif pos < end:
            self._buffer = bytearray(buf[pos:])
        return out

    def _frame(
        self, buf: bytes | bytearray, pos: int, end: int
    ) -> tuple[int, Message | None] | None:
        """(where the next frame starts, the message this one ends or None), or None
        when the frame at ``pos`` is not all here yet."""
        first, second = buf[pos], buf[pos + 1]
        if first & _RSV:
            raise ProtocolError(CLOSE_PROTOCOL_ERROR, "a reserved bit is set")
        if bool(second & _MASKED) != self.masked:
            why = "an unmasked frame from a client" if self.masked else "a masked frame"
            raise ProtocolError(CLOSE_PROTOCOL_ERROR, why)
        opcode = first & 0x0F
        fin = bool(first & _FIN)
        length = second & 0x7F
        head = 2
        if length == 126:
            head = 4
            if end - pos < head:
                self._need = head
                return None
            (length,) = struct.unpack_from("!H", buf, pos + 2)
        elif length == 127:
            head = 10
            if end - pos < head:
                self._need = head
                return None
            (length,) = struct.unpack_from("!Q", buf, pos + 2)
        self._check(opcode, fin, length, second & 0x7F)
        if self.masked:
            head += 4
        total = head + length
        if end - pos < total:
            self._need = total
            return None
        self._need = 2
        payload = bytes(buf[pos + head : pos + total])  # a copy only from the bytearray
        if self.masked:
            payload = mask_bytes(bytes(buf[pos + head - 4 : pos + head]), payload)
        return pos + total, self._message(opcode, fin, payload)

    def _check(self, opcode: int, fin: bool, length: int, short: int) -> None:
        if opcode in CONTROL_OPCODES:
            if not fin or short > MAX_CONTROL_PAYLOAD:
                raise ProtocolError(CLOSE_PROTOCOL_ERROR, "a fragmented or long control frame")
            return
        if opcode == OP_CONTINUATION:
            if self._opcode is None:
                raise ProtocolError(CLOSE_PROTOCOL_ERROR, "a continuation of nothing")
        elif opcode in DATA_OPCODES:
            if self._opcode is not None:
                raise ProtocolError(CLOSE_PROTOCOL_ERROR, "a message inside another")
        else:
            raise ProtocolError(CLOSE_PROTOCOL_ERROR, f"unknown opcode {opcode}")
        if self._fragmented + length > self.max_message:
            raise ProtocolError(CLOSE_TOO_BIG, "message too big")

    def _message(self, opcode: int, fin: bool, payload: bytes) -> Message | None:
        if opcode in CONTROL_OPCODES:
            return opcode, payload, None
        if opcode != OP_CONTINUATION:
            if fin:
                return self._whole(opcode, payload)
            self._opcode = opcode
            self._fragments = [payload]
            self._fragmented = len(payload)
            return None
        self._fragments.append(payload)
        self._fragmented += len(payload)
        if not fin:
            return None
        assert self._opcode is not None
        opcode, whole = self._opcode, b"".join(self._fragments)
        self._opcode, self._fragments, self._fragmented = None, [], 0
        return self._whole(opcode, whole)

    @staticmethod
    def _whole(opcode: int, payload: bytes) -> Message:
        if opcode != OP_TEXT:
            return opcode, payload, None
        try:
            return opcode, payload, payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(CLOSE_INVALID_DATA, "a text message that is not UTF-8") from exc
