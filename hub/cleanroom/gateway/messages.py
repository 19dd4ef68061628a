"""Rules for websocket messages towards the browser (kernels, terminals, events).

The gateway strips the ``v1.kernel.websocket.jupyter.org`` subprotocol, so the server
speaks Jupyter's JSON websocket protocol, which the gateway parses. Every message on
every channel is sized, sanitised and counted here; what exceeds a cap or the budget is
replaced by a skeleton carrying only what JupyterLab needs to stay consistent (the
execution state, a reply's status), with identifiers the gateway itself chose, and a
notice for the researcher.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from cleanroom.gateway import jsonio
from cleanroom.gateway.content import NOTICE_PREFIX, sanitize_bundle
from cleanroom.gateway.policy import WebsocketRules

_STATES = {"busy", "idle", "starting", "restarting", "dead"}
_REPLY_STATUS = {"ok", "error", "aborted"}
# Messages whose content is only protocol, never the kernel's data.
_SKELETON_TYPES = {
    "status",
    "execute_reply",
    "kernel_info_reply",
    "shutdown_reply",
    "interrupt_reply",
    "is_complete_reply",
    "complete_reply",
    "inspect_reply",
    "history_reply",
    "comm_info_reply",
    "debug_reply",
    "execute_input",
}


@dataclass
class TokenBucket:
    """Bytes per second with a burst: :meth:`try_take` says how long to wait, :meth:`take`
    waits (backpressure); neither drops."""

    rate: float
    burst: float
    level: float = 0.0
    stamp: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.level = self.burst

    def try_take(self, nbytes: int) -> float:
        """Take ``nbytes`` if they may pass now (0.0); else take nothing and return the
        seconds until they may. More than a burst passes once the bucket is full, and
        its excess is owed: the next frames wait for it."""
        now = time.monotonic()
        self.level = min(self.burst, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        need = min(float(nbytes), self.burst)
        if self.level >= need:
            self.level -= nbytes
            return 0.0
        return (need - self.level) / self.rate

    async def take(self, nbytes: int) -> float:
        """Wait until ``nbytes`` may pass (:meth:`try_take`), then take them; returns the
        seconds waited."""
        waited = 0.0
        while (pause := self.try_take(nbytes)) > 0:
            waited += pause
            await asyncio.sleep(pause)
        return waited


def _header(msg_type: str, session: str) -> dict[str, Any]:
    # Every field chosen here, none copied from the kernel's header: a skeleton must not
    # carry text of the kernel's choosing.
    return {
        "msg_id": uuid.uuid4().hex,
        "msg_type": msg_type,
        "session": session,
        "username": "",
        "date": "",
        "version": "5.3",
    }


class KernelRules:
    """The rules of one kernel websocket, towards the browser."""

    def __init__(self, rules: WebsocketRules, max_image_bytes: int) -> None:
        self.rules = rules
        self.max_image_bytes = max_image_bytes
        # msg_ids the browser sent: a reply's parent must be one of them (else the
        # kernel could use parent headers to carry data past a skeleton).
        self.sent: dict[str, dict[str, str]] = {}
        # The kernel's session ids, replaced by our own names (JupyterLab notices a
        # restarted kernel by a new session id; a few distinct names say that much).
        self.sessions: dict[str, str] = {}

    def session_of(self, header: Any) -> str:
        """Our name for the kernel session in ``header`` (at most four names)."""
        raw = header.get("session") if isinstance(header, dict) else None
        key = raw if isinstance(raw, str) else ""
        if key not in self.sessions:
            if len(self.sessions) >= 4:
                return next(reversed(self.sessions.values()))
            self.sessions[key] = uuid.uuid4().hex
        return self.sessions[key]

    def note_sent(self, text: str) -> None:
        """Remember the msg_id of a message the browser sent to the kernel (text frame)."""
        try:
            msg = jsonio.loads(text)
        except ValueError:
            return
        self.note_message(msg)

    def note_message(self, msg: Any) -> None:
        """Remember the msg_id of a message the browser sent (text or binary frame)."""
        try:
            header = msg["header"]
            msg_id = header["msg_id"]
        except (KeyError, TypeError):
            return
        if not isinstance(header, dict):
            return
        if isinstance(msg_id, str) and len(msg_id) <= 128:
            self.sent[msg_id] = {
                k: str(header.get(k, ""))[:128]
                for k in ("msg_id", "msg_type", "session", "username", "date", "version")
            }
            while len(self.sent) > 4096:
                self.sent.pop(next(iter(self.sent)))

    def _parent(self, parent: Any) -> dict[str, Any]:
        # Only the browser's own request, as the browser sent it.
        if isinstance(parent, dict) and parent.get("msg_id") in self.sent:
            return dict(self.sent[parent["msg_id"]])
        return {}

    def skeleton(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        """The protocol-only form of ``msg`` (None: nothing of it may pass)."""
        header = msg.get("header") if isinstance(msg.get("header"), dict) else {}
        msg_type = header.get("msg_type") if isinstance(header, dict) else None
        if msg_type not in _SKELETON_TYPES:
            return None
        content = msg.get("content") if isinstance(msg.get("content"), dict) else {}
        assert isinstance(content, dict)
        if msg_type == "status":
            state = content.get("execution_state")
            if state not in _STATES:
                return None
            new_content: dict[str, Any] = {"execution_state": state}
        elif msg_type == "execute_input":
            return None
        else:
            status = content.get("status")
            new_content = {"status": status if status in _REPLY_STATUS else "error"}
            count = content.get("execution_count")
            if isinstance(count, int) and not isinstance(count, bool) and 0 <= count < 2**31:
                new_content["execution_count"] = count
            if msg_type == "kernel_info_reply":
                new_content.update(_KERNEL_INFO_MINIMAL)
            elif msg_type == "complete_reply":
                new_content.update(
                    {"matches": [], "cursor_start": 0, "cursor_end": 0, "metadata": {}}
                )
            elif msg_type == "inspect_reply":
                new_content.update({"found": False, "data": {}, "metadata": {}})
            elif msg_type == "is_complete_reply":
                new_content = {"status": "unknown"}
            elif msg_type == "execute_reply":
                new_content.update({"user_expressions": {}, "payload": []})
        return {
            "header": _header(msg_type, self.session_of(header)),
            "parent_header": self._parent(msg.get("parent_header")),
            "metadata": {},
            "content": new_content,
            "channel": msg.get("channel") if msg.get("channel") in _CHANNELS else "iopub",
            "buffers": [],
        }

    def notice(self, msg: dict[str, Any], text: str) -> dict[str, Any]:
        """A stderr stream message in the cell that ``msg`` belongs to."""
        return {
            "header": _header("stream", self.session_of(msg.get("header"))),
            "parent_header": self._parent(msg.get("parent_header")),
            "metadata": {},
            "content": {"name": "stderr", "text": f"{NOTICE_PREFIX} {text}\n"},
            "channel": "iopub",
            "buffers": [],
        }

    def sanitize(self, msg: dict[str, Any]) -> list[str]:
        """Strip what runs code from every mime bundle of ``msg``; what was withheld."""
        content = msg.get("content")
        if not isinstance(content, dict):
            return []
        withheld: list[str] = []
        blocked = self.rules.blocked_mime_types
        if isinstance(content.get("data"), dict):
            withheld += sanitize_bundle(content["data"], blocked, self.max_image_bytes)
        for payload in content.get("payload") or []:
            if isinstance(payload, dict) and isinstance(payload.get("data"), dict):
                withheld += sanitize_bundle(payload["data"], blocked, self.max_image_bytes)
        expressions = content.get("user_expressions")
        if isinstance(expressions, dict):
            for value in expressions.values():
                if isinstance(value, dict) and isinstance(value.get("data"), dict):
                    withheld += sanitize_bundle(value["data"], blocked, self.max_image_bytes)
        return withheld


_CHANNELS = {"iopub", "shell", "control", "stdin"}
_KERNEL_INFO_MINIMAL = {
    "protocol_version": "5.3",
    "implementation": "",
    "implementation_version": "",
    "language_info": {"name": "python"},
    "banner": "",
    "help_links": [],
}


def dumps(msg: dict[str, Any]) -> str:
    """A message as the JSON text the browser reads."""
    return json.dumps(msg, separators=(",", ":"), default=str)
