"""What of each websocket frame may pass the gateway, in either direction, for one socket.

Text and binary frames pass the same rules. A kernel message with buffers travels as a
binary frame in jupyter_server's own layout (a count of parts, their offsets, the JSON
message, then the raw buffers); the gateway reads that layout strictly, applies to the
JSON message exactly the rules a text frame meets (size cap on the whole frame, code-
running mime types stripped, the budget and the rate counting every byte, buffers
included), and sends on a frame it built itself from what it read, so no byte the
gateway did not read reaches the browser. A binary frame that is not exactly that
layout, or a binary frame on a socket that is not a kernel's (terminals and events speak
text), is withheld and put on the record, whichever side sent it.
"""

from __future__ import annotations

import itertools
import json
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cleanroom.gateway import content, jsonio, metrics
from cleanroom.gateway.messages import KernelRules, dumps

if TYPE_CHECKING:
    from cleanroom.gateway.app import Gateway

MAX_PARTS = 64
"""The most parts (the JSON message and its buffers) a binary kernel frame may have."""

Frame = str | bytes


def parse_binary(frame: bytes) -> tuple[dict[str, Any], list[bytes]] | None:
    """``(message, buffers)`` of a binary kernel frame in jupyter_server's layout, or
    None when ``frame`` is anything else (bad counts or offsets, no JSON object)."""
    if len(frame) < 8:
        return None
    (parts,) = struct.unpack_from("!I", frame, 0)
    if not 1 <= parts <= MAX_PARTS or len(frame) < 4 * (parts + 1):
        return None
    offsets = list(struct.unpack_from(f"!{parts}I", frame, 4))
    if offsets[0] != 4 * (parts + 1) or offsets[-1] > len(frame):
        return None
    if any(later < earlier for earlier, later in itertools.pairwise(offsets)):
        return None
    bounds = [*offsets, len(frame)]
    chunks = [frame[a:b] for a, b in itertools.pairwise(bounds)]
    try:
        msg = jsonio.loads(chunks[0].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(msg, dict):
        return None
    msg.pop("buffers", None)  # the buffers are the frame's parts, never JSON
    return msg, chunks[1:]


def dumps_binary(msg: dict[str, Any], buffers: list[bytes]) -> bytes:
    """The binary frame of ``msg`` with ``buffers``, in jupyter_server's layout."""
    parts = [dumps({k: v for k, v in msg.items() if k != "buffers"}).encode(), *buffers]
    offsets = [4 * (len(parts) + 1)]
    for part in parts[:-1]:
        offsets.append(offsets[-1] + len(part))
    return struct.pack(f"!{len(parts) + 1}I", len(parts), *offsets) + b"".join(parts)


def frame_size(frame: Frame) -> int:
    """The bytes a frame puts on the wire (its payload)."""
    if isinstance(frame, bytes):
        return len(frame)
    # An ASCII string (most JSON: json escapes the rest) is as long as its UTF-8 bytes,
    # and isascii() is a flag lookup: no copy of the frame to count it.
    return len(frame) if frame.isascii() else len(frame.encode())


@dataclass
class SocketRules:
    """The rules of one websocket between a browser and a workspace: ``kind`` is the
    accounting kind of its route; ``kernel`` the kernel rules when it is a kernel's."""

    gw: Gateway
    owner: str
    server: str
    kind: str
    path: str
    kernel: KernelRules | None = None
    noticed: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        # This socket's metric series, looked up once rather than for every frame (the
        # budget's remaining-bytes gauge is set by the gateway's ticker, every second).
        counted = "kernel" if self.kernel is not None else self.kind
        self.sent = metrics.BYTES.labels(self.owner, self.server, counted)

    def withhold(self, reason: str) -> None:
        """Count and record a frame that does not pass."""
        metrics.REFUSALS.labels(self.owner, self.server, reason).inc()
        self.gw.ledger.refusal(self.owner, self.server, reason, path=self.path[:200])

    # -- browser → workspace ----------------------------------------------------------
    def towards_workspace(self, frame: Frame) -> Frame | None:
        """What of a browser's frame goes on to the workspace (None: nothing)."""
        if self.kernel is None:
            if isinstance(frame, bytes):
                self.withhold("content")  # terminals and events speak text
                return None
            return frame
        if isinstance(frame, bytes):
            parsed = parse_binary(frame)
            if parsed is None:
                self.withhold("content")
                return None
            msg, buffers = parsed
            self.kernel.note_message(msg)
            return dumps_binary(msg, buffers)
        self.kernel.note_sent(frame)
        return frame

    # -- workspace → browser ----------------------------------------------------------
    def towards_browser(self, frame: Frame) -> list[Frame]:
        """What of one upstream frame may go to the browser (already counted)."""
        if self.kernel is None:
            return self._plain(frame)
        if isinstance(frame, bytes):
            parsed = parse_binary(frame)
            if parsed is None:
                self.withhold("content")
                return []
            msg, buffers = parsed
        else:
            try:
                loaded = jsonio.loads(frame)
            except ValueError:
                self.withhold("content")
                return []
            if not isinstance(loaded, dict):
                return []
            msg, buffers = loaded, []
        return self._kernel_message(msg, buffers, frame)

    def _plain(self, frame: Frame) -> list[Frame]:
        """A terminal's or another text socket's frame: capped and counted."""
        user, project, kind = self.owner, self.server, self.kind
        rules, budgets = self.gw.policy.websocket, self.gw.budgets
        if isinstance(frame, bytes):
            self.withhold("content")
            return []
        size = frame_size(frame)
        if size > rules.max_message_bytes:
            self.withhold("too_large")
            return []
        if budgets.spend(user, project, size, kind):
            self.sent.inc(size)
            return [frame]
        self.withhold("budget")
        if kind == "terminal" and "terminal" not in self.noticed:
            self.noticed.add("terminal")
            text = budgets.exhausted_message(user, project)
            return [json.dumps(["stdout", f"\r\n[clean room] {text}\r\n"])]
        return []

    def _kernel_message(
        self, msg: dict[str, Any], buffers: list[bytes], frame: Frame
    ) -> list[Frame]:
        """One kernel message (from a text or a binary frame) under the kernel rules."""
        kr = self.kernel
        assert kr is not None
        user, project, kind = self.owner, self.server, "kernel"
        rules, budgets = self.gw.policy.websocket, self.gw.budgets
        size = frame_size(frame)
        header = msg.get("header") if isinstance(msg.get("header"), dict) else {}
        msg_type = str((header or {}).get("msg_type", "?"))[:40]
        out: list[Frame] = []
        if size > rules.max_message_bytes:
            self.withhold("too_large")
            # The notice first: a client may stop reading at the reply that follows.
            out.append(
                dumps(
                    kr.notice(
                        msg,
                        (
                            f"An output of {size} bytes ({msg_type}) was withheld: messages "
                            f"larger than {rules.max_message_bytes} bytes are not sent to the "
                            "browser. Write large results to a file in your work folder and "
                            "request a release."
                        ),
                    )
                )
            )
            skeleton = kr.skeleton(msg)
            if skeleton is not None:
                text = dumps(skeleton)
                budgets.force(user, project, len(text), kind)
                out.append(text)
            return out
        withheld = kr.sanitize(msg)
        if withheld:
            self.withhold("content")
        # A binary frame goes on as the frame the gateway builds from what it read; a
        # text frame as it came unless the rules changed it.
        passing: Frame = frame
        if isinstance(frame, bytes):
            passing = dumps_binary(msg, buffers)
        elif withheld:
            passing = dumps(msg)
        if passing is not frame:
            size = frame_size(passing)
        if budgets.spend(user, project, size, kind):
            self.sent.inc(size)
            out.append(passing)
            if withheld:
                out.append(dumps(kr.notice(msg, content.notice(withheld)[len("[clean room] ") :])))
        else:
            self.withhold("budget")
            parent_header = msg.get("parent_header")
            parent = parent_header.get("msg_id", "") if isinstance(parent_header, dict) else ""
            if parent in kr.sent and parent not in self.noticed:
                self.noticed.add(parent)
                out.append(dumps(kr.notice(msg, budgets.exhausted_message(user, project))))
            skeleton = kr.skeleton(msg)
            if skeleton is not None:
                text = dumps(skeleton)
                budgets.force(user, project, len(text), kind)
                out.append(text)
        return out
