"""Uploads (contents PUTs carrying content): text only, size-capped, each one recorded."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import Workspace, message

MIB = 1024 * 1024


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.entries: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.entries.append(json.loads(record.getMessage()))


@pytest.fixture
def audit(jp_serverapp: Any) -> Iterator[list[dict[str, Any]]]:
    """The audit records the extension writes during the test."""
    handler = _Records()
    logger = jp_serverapp.log.getChild("cleanroom.audit")
    logger.addHandler(handler)
    yield handler.entries
    logger.removeHandler(handler)


def put(fetch: Any, path: str, model: dict[str, Any]) -> Any:
    return fetch("api", "contents", *path.split("/"), method="PUT", body=json.dumps(model))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_text_upload_is_allowed_and_recorded(
    fetch: Any, workspace: Workspace, audit: list[dict[str, Any]]
) -> None:
    response = put(
        fetch, "work/in.csv", {"type": "file", "format": "base64", "content": b64(b"a,b\n")}
    )
    assert response.code == 201
    (entry,) = audit
    assert entry["event"] == "cleanroom.workspace.upload"
    assert entry["decision"] == "allowed"
    assert entry["path"] == "work/in.csv"
    assert entry["size"] == 4
    assert entry["user"] == "ada" and entry["project"] == "press-line"
    assert entry["replaces"] is False


def test_binary_upload_is_refused_and_recorded(
    fetch: Any, workspace: Workspace, audit: list[dict[str, Any]]
) -> None:
    data = b"\x7fELF\x02\x01\x01\x00" + bytes(range(256))
    response = put(fetch, "work/tool", {"type": "file", "format": "base64", "content": b64(data)})
    assert response.code == 415
    assert "only text files" in message(response)
    assert not (workspace.work / "tool").exists()
    assert audit[-1]["decision"] == "refused"


def test_invalid_utf8_upload_is_refused(fetch: Any, workspace: Workspace) -> None:
    data = b"caf\xe9\n"  # latin-1, not UTF-8
    response = put(fetch, "work/x.txt", {"type": "file", "format": "base64", "content": b64(data)})
    assert response.code == 415


def test_upload_over_the_size_cap_is_refused(fetch: Any, workspace: Workspace) -> None:
    data = b"x" * (MIB + 1)
    response = put(
        fetch, "work/big.txt", {"type": "file", "format": "base64", "content": b64(data)}
    )
    assert response.code == 413
    assert "1048576" in message(response)
    assert not (workspace.work / "big.txt").exists()


def test_text_save_over_the_size_cap_is_refused(fetch: Any, workspace: Workspace) -> None:
    response = put(
        fetch, "work/notes.txt", {"type": "file", "format": "text", "content": "y" * (MIB + 1)}
    )
    assert response.code == 413
    assert (workspace.work / "notes.txt").read_text() == "force rises with cycle\n"


def test_upload_at_the_size_cap_is_allowed(fetch: Any, workspace: Workspace) -> None:
    data = b"z" * MIB
    response = put(
        fetch, "work/edge.txt", {"type": "file", "format": "base64", "content": b64(data)}
    )
    assert response.code == 201


def test_chunked_upload_counts_every_chunk(fetch: Any, workspace: Workspace) -> None:
    half = b"\xc3\xa9" * (300 * 1024)  # 600 KiB of 'é': chunks may split a character
    first, rest = half[:-1], half[-1:] + half
    model = {"type": "file", "format": "base64"}
    assert put(fetch, "work/c.txt", {**model, "content": b64(first), "chunk": 1}).code == 201
    response = put(fetch, "work/c.txt", {**model, "content": b64(rest), "chunk": -1})
    assert response.code == 413


def test_chunked_text_upload_within_the_cap(fetch: Any, workspace: Workspace) -> None:
    text = "é" * 1000
    data = text.encode()
    model = {"type": "file", "format": "base64"}
    assert put(fetch, "work/c.txt", {**model, "content": b64(data[:1001]), "chunk": 1}).code == 201
    assert put(fetch, "work/c.txt", {**model, "content": b64(data[1001:]), "chunk": -1}).code == 200
    assert (workspace.work / "c.txt").read_text() == text


def test_notebook_save_has_its_own_cap(fetch: Any, workspace: Workspace) -> None:
    figure = "iVBORw0KGgo" + "A" * (2 * MIB)  # a notebook with a 2 MiB inline figure
    nb = {
        "cells": [
            {
                "id": "c1",
                "cell_type": "code",
                "execution_count": 1,
                "metadata": {},
                "source": "plot()",
                "outputs": [
                    {"output_type": "display_data", "metadata": {}, "data": {"image/png": figure}}
                ],
            }
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    response = put(fetch, "work/fig.ipynb", {"type": "notebook", "format": "json", "content": nb})
    assert response.code == 201


def test_notebook_over_its_cap_is_refused(
    fetch: Any, workspace: Workspace, audit: list[dict[str, Any]]
) -> None:
    nb = {
        "cells": [
            {"id": "m1", "cell_type": "markdown", "metadata": {}, "source": "x" * (33 * MIB)}
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    response = put(fetch, "work/huge.ipynb", {"type": "notebook", "format": "json", "content": nb})
    assert response.code == 413
    assert audit[-1]["decision"] == "refused"


def test_creating_empty_files_and_folders_is_not_an_upload(
    fetch: Any, workspace: Workspace, audit: list[dict[str, Any]]
) -> None:
    assert put(fetch, "work/sub", {"type": "directory"}).code == 201
    body = json.dumps({"type": "file", "ext": ".py"})
    assert fetch("api", "contents", "work", method="POST", body=body).code == 201
    assert audit == []
