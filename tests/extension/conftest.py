"""Fixtures for the workspace extension's in-process tests.

The server runs in process (pytest-jupyter's ``jp_serverapp``) on a root dir laid out
like a workspace container's home: ``work/`` (a folder), ``project`` and ``data``
(symlinks to folders outside the root, as ``/project`` and ``/data`` are). A fake
airlock, a real HTTP server on loopback in its own thread, stands in for the airlock's
submission listener and records what it receives.
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import json
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

# pytest-jupyter registers no plugin entry point, and only the top-level conftest may
# name plugins: import its fixtures (and its async-test hooks) here instead.
from pytest_jupyter.jupyter_server import *  # noqa: F403
from tornado import httputil, web
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

# The guard counts the temp folder among the researcher's writable folders and serves
# no kernel-spec file from there. A checkout (and its .venv, holding the kernel spec)
# may itself live under /tmp, as CI's fresh clones can: give these tests a temp folder
# of their own, so that only what a test puts there counts as the researcher's.
tempfile.tempdir = tempfile.mkdtemp(prefix="cleanroom-extension-tests-")
atexit.register(shutil.rmtree, tempfile.tempdir, True)

HUB_TOKEN = "test-hub-token"
PROJECT = "press-line"
USER = "ada"


@dataclass
class Workspace:
    """The test workspace's folders."""

    root: Path
    work: Path
    project: Path
    data: Path


@pytest.fixture
def workspace(tmp_path: Path, jp_root_dir: Path) -> Workspace:
    """A root dir shaped like /home/researcher, with a data set and a few files."""
    mounts = tmp_path / "mnt"
    project = mounts / "project"
    data = mounts / "data"
    (data / "press").mkdir(parents=True)
    project.mkdir(parents=True)
    (data / "press" / "cycles.csv").write_text("cycle,force\n1,12.5\n2,13.1\n")
    (data / "press" / "frame.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    jp_root_dir.mkdir(parents=True, exist_ok=True)
    work = jp_root_dir / "work"
    work.mkdir()
    (jp_root_dir / "project").symlink_to(project)
    (jp_root_dir / "data").symlink_to(data)
    (work / "notes.txt").write_text("force rises with cycle\n")
    (work / "table.csv").write_text("group,mean\na,12.8\n")
    (work / "blob.bin").write_bytes(bytes(range(256)))
    (work / "plot.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    (project / "shared.md").write_text("# shared\n")
    return Workspace(jp_root_dir, work, project, data)


class _Airlock:
    """A fake airlock submission listener that records requests."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.url = ""


class _RequestsHandler(web.RequestHandler):
    def initialize(self, airlock: _Airlock) -> None:
        self.airlock = airlock

    def prepare(self) -> None:
        if self.request.headers.get("Authorization") != f"token {HUB_TOKEN}":
            self.set_status(403)
            self.finish({"error": "bad token"})

    def get(self) -> None:
        project = self.get_query_argument("project")
        self.finish({"requests": [r for r in self.airlock.requests if r["project"] == project]})

    def post(self) -> None:
        args: dict[str, list[bytes]] = {}
        files: dict[str, list[httputil.HTTPFile]] = {}
        httputil.parse_body_arguments(
            self.request.headers["Content-Type"], self.request.body, args, files
        )
        metadata = json.loads(args["metadata"][0])
        if metadata["justification"] == "please redirect":
            self.redirect("http://127.0.0.1:9/elsewhere")
            return
        if metadata["justification"] == "please fail":
            self.set_status(422)
            self.finish({"error": "the airlock says no"})
            return
        received = {"metadata": metadata, "files": {k: v[0] for k, v in files.items()}}
        self.airlock.received.append(received)
        record = {
            "id": uuid.uuid4().hex,
            "state": "submitted",
            "project": metadata["project"],
            "justification": metadata["justification"],
            "created": "2026-11-21T20:00:00Z",
            "updated": "2026-11-21T20:00:00Z",
            "files": [
                {
                    "path": f["path"],
                    "sha256": hashlib.sha256(files[f["field"]][0].body).hexdigest(),
                    "size": len(files[f["field"]][0].body),
                }
                for f in metadata["files"]
            ],
            "comments": [],
            "checks": {},
        }
        self.airlock.requests.append(record)
        self.set_status(201)
        self.finish(record)


@pytest.fixture
def airlock() -> Iterator[_Airlock]:
    """A fake airlock on a loopback port, served from its own thread and event loop."""
    fake = _Airlock()
    sock, port = bind_unused_port()
    fake.url = f"http://127.0.0.1:{port}"
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict[str, HTTPServer] = {}

    def serve() -> None:
        asyncio.set_event_loop(loop)

        async def start() -> None:
            app = web.Application([(r"/api/v1/requests", _RequestsHandler, {"airlock": fake})])
            server = HTTPServer(app)
            server.add_sockets([sock])
            holder["server"] = server
            started.set()

        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    started.wait(10)
    yield fake
    loop.call_soon_threadsafe(holder["server"].stop)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


@dataclass
class Settings:
    """Knobs the tests turn before the server starts."""

    airlock_url: str = ""
    policies_dir: str = ""
    server: dict[str, Any] = field(default_factory=dict)


@pytest.fixture
def settings() -> Settings:
    """Per-test settings of the extension (override in a test module)."""
    return Settings()


@pytest.fixture  # type: ignore[no-redef]  # replaces pytest-jupyter's fixture
def jp_server_config(workspace: Workspace, settings: Settings) -> dict[str, Any]:
    """Server config: the extension (and terminals) on the workspace root."""
    return {
        "ServerApp": {
            "jpserver_extensions": {
                "cleanroom_workspace": True,
                "jupyter_server_terminals": True,
            },
            **settings.server,
        },
        "CleanroomWorkspace": {
            "project": PROJECT,
            "user": USER,
            "airlock_url": settings.airlock_url,
            "hub_token": HUB_TOKEN,
            "policies_dir": settings.policies_dir,
        },
    }


@pytest.fixture
def fetch(jp_fetch: Any, jp_asyncio_loop: asyncio.AbstractEventLoop) -> Any:
    """``fetch(*url_parts, method=..., body=..., params=..., headers=...)`` -> response.

    Runs the request on pytest-jupyter's event loop (the one serving the app) and returns
    the response whatever its status. Tests are plain functions: the suite's
    pytest-asyncio would otherwise run them on a loop the server is not served on.
    """

    def do(*parts: str, **kwargs: Any) -> Any:
        kwargs.setdefault("raise_error", False)
        return jp_asyncio_loop.run_until_complete(jp_fetch(*parts, **kwargs))

    return do


def message(response: Any) -> str:
    """The refusal message of a JSON error response."""
    return str(json.loads(response.body).get("message", ""))
