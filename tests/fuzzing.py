"""A small, seeded generator of malformed HTTP input, shared by the fuzz tests.

Each fuzz test starts from requests that are valid and mutates one or more pieces with
values picked from the kinds that have broken web handlers before: NUL bytes, names over
the file system's limits, lone surrogates, bad UTF-8, bad percent-encoding, numbers too
big for any column, JSON of the wrong type or nested too deep, truncated multipart
bodies. The generator is seeded, so a failure names an input that replays.

Requests go out through ``http.client`` rather than ``requests``: it sends a path's
bytes as they are (``requests`` would re-quote ``%zz``), so the server sees exactly the
malformed URL.
"""

from __future__ import annotations

import http.client
import json
import random
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

SEED = 20261201

NASTY_TEXT = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "work/\x00.csv",
    "x" * 300,
    "work/" + "y" * 300 + ".csv",
    "work/" + "/".join(["z" * 200] * 25),
    "../" * 40 + "etc/passwd",
    "/etc/passwd",
    "work/../../etc/shadow",
    "%",
    "%zz",
    "%ff%fe",
    "\udcff",
    "\ud800",
    "work/\udce9.csv",
    "é" * 200,
    "\u202e" + "gpj.exe",
    "<script>alert(1)</script>",
    "'; DROP TABLE requests; --",
    "\r\nSet-Cookie: x=1",
    "CON",
    "a" * 70_000,
    "0" * 40,
    "-1",
    "1e999",
    "NaN",
    "work",
    "work/",
    "work/table.csv",
    "project/shared.md",
    "data/press/cycles.csv",
]

NASTY_BYTES = [
    b"",
    b"\x00",
    b"\xff\xfe\xfd",
    b"\xc3\x28",
    b"\xed\xa0\x80",
    b"{",
    b"[" * 50_000,
    b'{"a":' * 5000,
    b"null",
    b"\x89PNG\r\n\x1a\n",
    b"--",
    b"\r\n\r\n",
]


def nasty_json_value(rng: random.Random) -> Any:
    """A JSON value of a surprising type or size."""
    choice = rng.randrange(12)
    if choice == 0:
        return None
    if choice == 1:
        return rng.choice([True, False])
    if choice == 2:
        return rng.choice([0, -1, 2**63, 10**400, -(10**400)])
    if choice == 3:
        return rng.choice([1e308, -1e-308, 0.5])
    if choice == 4:
        return []
    if choice == 5:
        return {}
    if choice == 6:
        return [rng.choice(NASTY_TEXT) for _ in range(rng.randrange(1, 4))]
    if choice == 7:
        return {rng.choice(NASTY_TEXT): rng.choice(NASTY_TEXT)}
    if choice == 8:
        return [[[[]]]]
    return rng.choice(NASTY_TEXT)


def to_json(value: Any, rng: random.Random) -> bytes:
    """``value`` as JSON bytes; sometimes with NaN, lone surrogates or bad UTF-8 inside."""
    text = json.dumps(value, allow_nan=True)
    data = text.encode("utf-8", "surrogatepass")
    if rng.random() < 0.05:
        data = data.replace(b"a", b"\xff", 1)
    return data


def nasty_query_value(rng: random.Random) -> str:
    """A query-string value, already percent-encoded (possibly wrongly)."""
    choice = rng.randrange(6)
    if choice == 0:
        return rng.choice(["%zz", "%", "%f", "%ff%fe", "%00", "%c3%28", "%ed%a0%80"])
    if choice == 1:
        return quote(str(rng.choice([0, -1, 10**30, 2**63, "1.5", "1e9", " 1", "٣"])))
    text = rng.choice(NASTY_TEXT)
    return quote(text.encode("utf-8", "surrogatepass")[:5000], safe="")


def query(rng: random.Random, keys: list[str]) -> str:
    """A query string of some of ``keys`` (repeated sometimes) with nasty values."""
    pairs = []
    for _ in range(rng.randrange(0, 4)):
        key = rng.choice(keys) if rng.random() < 0.9 else nasty_query_value(rng)
        pairs.append(f"{key}={nasty_query_value(rng)}")
    return ("?" + "&".join(pairs)) if pairs else ""


@dataclass
class Answer:
    """One fuzzed request and what came back."""

    method: str
    path: str
    status: int
    body: bytes
    headers: dict[str, str]
    note: str = ""

    def describe(self) -> str:
        """One line that lets a person replay the input."""
        where = f"{self.method} {self.path[:300]!r}"
        return f"{where} -> {self.status} ({self.note[:300]}): {self.body[:300]!r}"


@dataclass
class Client:
    """Raw HTTP/1.1 to one server, with a kept-alive connection (reopened as needed)."""

    base: str
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = 60
    _conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            url = urlsplit(self.base)
            self._conn = http.client.HTTPConnection(
                url.hostname or "127.0.0.1", url.port or 80, timeout=self.timeout
            )
        return self._conn

    def send(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        note: str = "",
    ) -> Answer:
        """Send one request (``path`` is sent as it is) and read the whole answer."""
        merged = {**self.headers, **(headers or {})}
        for attempt in range(2):
            conn = self._connection()
            try:
                conn.putrequest(method, path, skip_accept_encoding=True)
                for name, value in merged.items():
                    # No client can send a line break inside a header: http.client
                    # refuses it, and so would any proxy in front of the server.
                    # Over 8 KiB, proxies answer 431 themselves (and tornado closes
                    # the connection past 64 KiB of headers): not our handlers' input.
                    raw = value.replace("\r", " ").replace("\n", " ").replace("\x00", " ")
                    raw = raw[:8192]
                    conn.putheader(name, raw.encode("latin-1", "replace"))
                if body is not None:
                    conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body)
                reply = conn.getresponse()
                data = reply.read()
                answer = Answer(method, path, reply.status, data, dict(reply.getheaders()), note)
                if reply.will_close:
                    conn.close()
                    self._conn = None
                return answer
            except (ConnectionError, http.client.HTTPException):
                # The server may close a kept-alive connection between two requests
                # (tornado does after an error it answered early): open a new one, once.
                conn.close()
                self._conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close the connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def server_errors(answers: list[Answer]) -> list[str]:
    """The answers with a 5xx status, described for the assertion message."""
    return [a.describe() for a in answers if a.status >= 500]
