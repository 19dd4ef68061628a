"""A small VNC (RFB 3.8) client over a websocket, as the researcher's noVNC speaks it.

Enough of the protocol for the tests and the benchmark: the handshake (security type
None: the gateway authenticates, the viewer's x11vnc listens on its own loopback),
framebuffer updates in Raw and Zlib encodings, key and pointer events, and a record of
every server message type seen (ServerCutText, type 3, is the clipboard).
"""

from __future__ import annotations

import asyncio
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

RAW, ZLIB = 0, 6
SERVER_CUT_TEXT = 3
# X keysyms used by the tests.
KEY_CONTROL_L = 0xFFE3
KEY_RETURN = 0xFF0D


@dataclass
class Screen:
    """The framebuffer as 32-bit pixels (B, G, R, pad), kept up to date by updates."""

    width: int
    height: int
    pixels: bytearray = field(default_factory=bytearray)

    def __post_init__(self) -> None:
        self.pixels = bytearray(self.width * self.height * 4)

    def paint(self, x: int, y: int, w: int, h: int, data: bytes) -> None:
        """Copy a rectangle of raw pixels in."""
        for row in range(h):
            start = ((y + row) * self.width + x) * 4
            self.pixels[start : start + w * 4] = data[row * w * 4 : (row + 1) * w * 4]

    def colours(self, step: int = 7) -> int:
        """How many distinct colours a sample of the pixels holds (a blank screen: 1)."""
        seen = {bytes(self.pixels[i : i + 3]) for i in range(0, len(self.pixels), 4 * step)}
        return len(seen)

    def share_of(self, rgb: tuple[int, int, int], tolerance: int = 8) -> float:
        """Share of the sampled pixels within ``tolerance`` of colour ``rgb``."""
        r, g, b = rgb
        hits = total = 0
        for i in range(0, len(self.pixels), 4 * 11):
            total += 1
            pb, pg, pr = self.pixels[i], self.pixels[i + 1], self.pixels[i + 2]
            if abs(pr - r) <= tolerance and abs(pg - g) <= tolerance and abs(pb - b) <= tolerance:
                hits += 1
        return hits / max(total, 1)


class RFBClient:
    """One VNC session over ``url`` (a websocket); call :meth:`connect` first."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.url = url
        self.headers = headers or {}
        self.ws: WebSocketClientConnection | None = None
        self.buffer = bytearray()
        self.received = 0
        self.message_types: list[int] = []
        self.cut_texts: list[bytes] = []
        self.screen: Screen | None = None
        self.name = b""
        self._zlib = zlib.decompressobj()

    async def connect(self) -> Screen:
        """Open the websocket and do the RFB handshake; the (blank) screen."""
        request = HTTPRequest(self.url, headers=self.headers, request_timeout=60)
        self.ws = await websocket_connect(request, subprotocols=["binary"])
        version = await self._read(12)
        assert version.startswith(b"RFB 003."), version
        self._send(b"RFB 003.008\n")
        (count,) = await self._unpack("!B")
        types = await self._read(count)
        assert 1 in types, f"the viewer offers no plain session: {list(types)}"
        self._send(b"\x01")
        (result,) = await self._unpack("!I")
        assert result == 0, "the viewer refused the session"
        self._send(b"\x01")  # shared
        width, height = await self._unpack("!HH")
        await self._read(16)  # the server's pixel format; ours is set below
        (length,) = await self._unpack("!I")
        self.name = await self._read(length)
        self.screen = Screen(width, height)
        # 32 bpp, depth 24, little-endian, true colour: B, G, R, pad in memory.
        self._send(struct.pack("!BxxxBBBBHHHBBBxxx", 0, 32, 24, 0, 1, 255, 255, 255, 16, 8, 0))
        self._send(struct.pack("!BxH", 2, 2) + struct.pack("!ii", ZLIB, RAW))
        return self.screen

    def request_update(self, incremental: bool = False) -> None:
        """Ask for the whole screen (or what changed in it)."""
        assert self.screen is not None
        self._send(
            struct.pack("!BBHHHH", 3, int(incremental), 0, 0, self.screen.width, self.screen.height)
        )

    def key(self, keysym: int, down: bool) -> None:
        """A key event (X keysym)."""
        self._send(struct.pack("!BBxxI", 4, int(down), keysym))

    def type_text(self, text: str) -> None:
        """Press and release each character (Latin-1 keysyms)."""
        for char in text:
            self.key(ord(char), True)
            self.key(ord(char), False)

    def chord(self, modifier: int, keysym: int) -> None:
        """Modifier + key (ctrl+a, ctrl+c)."""
        self.key(modifier, True)
        self.key(keysym, True)
        self.key(keysym, False)
        self.key(modifier, False)

    def click(self, x: int, y: int) -> None:
        """A left click at (x, y)."""
        self._send(struct.pack("!BBHH", 5, 1, x, y))
        self._send(struct.pack("!BBHH", 5, 0, x, y))

    async def read_update(self, timeout: float = 30) -> None:
        """Read server messages until one framebuffer update was applied."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise TimeoutError("no framebuffer update")
            if await asyncio.wait_for(self._message(), left) == 0:
                return

    async def run_for(self, seconds: float) -> None:
        """Keep asking for and reading updates for ``seconds`` (a live session)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        self.request_update(incremental=True)
        while loop.time() < deadline:
            try:
                kind = await asyncio.wait_for(self._message(), max(deadline - loop.time(), 0.01))
            except TimeoutError:
                break
            if kind == 0:
                self.request_update(incremental=True)

    def close(self) -> None:
        """Close the websocket."""
        if self.ws is not None:
            self.ws.close()

    # -- the protocol ---------------------------------------------------------------
    async def _message(self) -> int:
        (kind,) = await self._unpack("!B")
        self.message_types.append(kind)
        if kind == 0:
            (rects,) = await self._unpack("!xH")
            for _ in range(rects):
                x, y, w, h, encoding = await self._unpack("!HHHHi")
                await self._rect(x, y, w, h, encoding)
        elif kind == 1:  # colour map entries
            _, count = await self._unpack("!xHH")
            await self._read(6 * count)
        elif kind == 2:  # bell
            pass
        elif kind == SERVER_CUT_TEXT:
            (length,) = await self._unpack("!xxxI")
            self.cut_texts.append(await self._read(length))
        else:
            raise AssertionError(f"unexpected server message type {kind}")
        return kind

    async def _rect(self, x: int, y: int, w: int, h: int, encoding: int) -> None:
        assert self.screen is not None
        if encoding == RAW:
            self.screen.paint(x, y, w, h, await self._read(w * h * 4))
        elif encoding == ZLIB:
            (length,) = await self._unpack("!I")
            data = self._zlib.decompress(await self._read(length))
            self.screen.paint(x, y, w, h, data)
        elif encoding == -223:  # DesktopSize
            self.screen = Screen(w, h)
        else:
            raise AssertionError(f"unexpected encoding {encoding}")

    def _send(self, data: bytes) -> None:
        assert self.ws is not None
        self.ws.write_message(data, binary=True)

    async def _read(self, n: int) -> bytes:
        assert self.ws is not None
        while len(self.buffer) < n:
            message: Any = await self.ws.read_message()
            if message is None:
                raise ConnectionError(f"the stream closed ({self.ws.close_code})")
            data = message if isinstance(message, bytes) else message.encode()
            self.received += len(data)
            self.buffer.extend(data)
        out = bytes(self.buffer[:n])
        del self.buffer[:n]
        return out

    async def _unpack(self, fmt: str) -> tuple[Any, ...]:
        return struct.unpack(fmt, await self._read(struct.calcsize(fmt)))
