"""The release-request API: files go to the airlock, with nothing pretended."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from .conftest import PROJECT, Settings, Workspace, message

RELEASES = ("cleanroom", "api", "releases")


def request_body(paths: list[str], **extra: Any) -> str:
    body = {
        "paths": paths,
        "justification": "Aggregate table for the paper.",
        "descriptions": {p: f"Means per group ({p})" for p in paths},
    }
    body.update(extra)
    return json.dumps(body)


@pytest.fixture
def settings(airlock: Any) -> Settings:
    """Point the extension at the fake airlock."""
    return Settings(airlock_url=airlock.url)


def test_release_forwards_bytes_and_metadata(
    fetch: Any, workspace: Workspace, airlock: Any
) -> None:
    response = fetch(
        *RELEASES, method="POST", body=request_body(["work/table.csv", "project/shared.md"])
    )
    assert response.code == 201, response.body
    answer = json.loads(response.body)
    assert answer["state"] == "submitted"
    (received,) = airlock.received
    meta = received["metadata"]
    assert meta["project"] == PROJECT
    assert meta["justification"] == "Aggregate table for the paper."
    assert [f["path"] for f in meta["files"]] == ["work/table.csv", "project/shared.md"]
    assert meta["files"][0]["description"] == "Means per group (work/table.csv)"
    sent = received["files"][meta["files"][0]["field"]]
    assert sent.body == (workspace.work / "table.csv").read_bytes()
    assert sent.filename == "table.csv"
    expected = hashlib.sha256((workspace.project / "shared.md").read_bytes()).hexdigest()
    assert answer["files"][1]["sha256"] == expected


def test_list_shows_this_projects_requests(fetch: Any, workspace: Workspace, airlock: Any) -> None:
    assert fetch(*RELEASES, method="POST", body=request_body(["work/notes.txt"])).code == 201
    listing = json.loads(fetch(*RELEASES).body)
    assert [r["files"][0]["path"] for r in listing["requests"]] == ["work/notes.txt"]


def test_binary_files_can_be_released(fetch: Any, workspace: Workspace, airlock: Any) -> None:
    # Releasing is the sanctioned way out, so any regular file in a work folder may go.
    assert fetch(*RELEASES, method="POST", body=request_body(["work/blob.bin"])).code == 201
    assert airlock.received[0]["files"]["file0"].body == bytes(range(256))


@pytest.mark.parametrize(
    "path,status,words",
    [
        ("work/link.csv", 403, "symbolic link"),
        ("work/linkdir/x.csv", 403, "symbolic link"),
        ("data/press/cycles.csv", 403, "work folders"),
        ("notes-at-root.txt", 403, "work folders"),
        ("work", 400, "folder"),
        ("work/sub", 400, "folder"),
        ("work/missing.csv", 404, "no such file"),
        ("work/../data/press/cycles.csv", 400, "'..'"),
        ("work/fifo", 400, "regular files"),
    ],
)
def test_release_refusals(
    fetch: Any, workspace: Workspace, airlock: Any, path: str, status: int, words: str
) -> None:
    (workspace.work / "link.csv").symlink_to(workspace.work / "table.csv")
    (workspace.work / "linkdir").symlink_to(workspace.data / "press")
    (workspace.work / "sub").mkdir()
    (workspace.root / "notes-at-root.txt").write_text("x")
    os.mkfifo(workspace.work / "fifo")
    response = fetch(*RELEASES, method="POST", body=request_body([path]))
    assert response.code == status, response.body
    assert words in message(response)
    assert airlock.received == []


@pytest.mark.parametrize(
    "body,words",
    [
        ({"paths": [], "justification": "x", "descriptions": {}}, "non-empty list"),
        ({"paths": ["work/notes.txt"], "descriptions": {"work/notes.txt": "d"}}, "justification"),
        (
            {
                "paths": ["work/notes.txt"],
                "justification": " ",
                "descriptions": {"work/notes.txt": "d"},
            },
            "justification",
        ),
        ({"paths": ["work/notes.txt"], "justification": "j", "descriptions": {}}, "describe"),
        (
            {
                "paths": ["work/notes.txt", "work/notes.txt"],
                "justification": "j",
                "descriptions": {},
            },
            "twice",
        ),
        (
            {
                "paths": ["work/notes.txt"],
                "justification": "j",
                "descriptions": {"work/notes.txt": "d", "work/other": "e"},
            },
            "not in 'paths'",
        ),
        ({"paths": ["work/notes.txt"], "justification": "j" * 5001, "descriptions": {}}, "longer"),
        (["work/notes.txt"], "JSON object"),
    ],
)
def test_bad_requests_are_refused(
    fetch: Any, workspace: Workspace, airlock: Any, body: Any, words: str
) -> None:
    response = fetch(*RELEASES, method="POST", body=json.dumps(body))
    assert response.code == 400, response.body
    assert words in message(response)
    assert airlock.received == []


def test_too_many_files(fetch: Any, workspace: Workspace, airlock: Any) -> None:
    paths = []
    for i in range(21):
        (workspace.work / f"f{i}.txt").write_text(str(i))
        paths.append(f"work/f{i}.txt")
    response = fetch(*RELEASES, method="POST", body=request_body(paths))
    assert response.code == 400
    assert "at most 20 files" in message(response)


def test_airlock_errors_are_passed_on(fetch: Any, workspace: Workspace, airlock: Any) -> None:
    body = request_body(["work/notes.txt"], justification="please fail")
    response = fetch(*RELEASES, method="POST", body=body)
    assert response.code == 422
    assert "the airlock says no" in message(response)


def test_airlock_redirects_are_not_followed(fetch: Any, workspace: Workspace, airlock: Any) -> None:
    # The hub token is for the configured airlock only.
    body = request_body(["work/notes.txt"], justification="please redirect")
    response = fetch(*RELEASES, method="POST", body=body)
    assert response.code == 502
    assert "airlock refused" in message(response)


class TestSmallPolicy:
    """A policy with a small release size limit, from CLEANROOM_POLICIES_DIR-style config."""

    @pytest.fixture
    def settings(self, airlock: Any, tmp_path: Path) -> Settings:
        text = (Path(__file__).parents[2] / "policies" / "workspace.yaml").read_text()
        text = text.replace("max_file_bytes: 104857600", "max_file_bytes: 10")
        policies = tmp_path / "policies"
        policies.mkdir()
        (policies / "workspace.yaml").write_text(text)
        return Settings(airlock_url=airlock.url, policies_dir=str(policies))

    def test_file_over_the_release_limit(
        self, fetch: Any, workspace: Workspace, airlock: Any
    ) -> None:
        response = fetch(*RELEASES, method="POST", body=request_body(["work/table.csv"]))
        assert response.code == 413
        assert "release limit" in message(response)
        assert airlock.received == []


class TestNoAirlock:
    """Without CLEANROOM_AIRLOCK_URL the API refuses with 503 and never pretends."""

    @pytest.fixture
    def settings(self) -> Settings:
        return Settings()

    def test_submit_is_refused(self, fetch: Any, workspace: Workspace) -> None:
        response = fetch(*RELEASES, method="POST", body=request_body(["work/table.csv"]))
        assert response.code == 503
        assert "airlock is not configured" in message(response)
        assert "nothing was submitted" in message(response)

    def test_list_is_refused(self, fetch: Any, workspace: Workspace) -> None:
        response = fetch(*RELEASES)
        assert response.code == 503
        assert "airlock is not configured" in message(response)


class TestAirlockDown:
    """An airlock address that answers nothing: 502, nothing pretended."""

    @pytest.fixture
    def settings(self) -> Settings:
        from tornado.testing import bind_unused_port

        sock, port = bind_unused_port()
        sock.close()  # nobody listens on this loopback port now
        return Settings(airlock_url=f"http://127.0.0.1:{port}")

    def test_submit_reports_the_failure(self, fetch: Any, workspace: Workspace) -> None:
        response = fetch(*RELEASES, method="POST", body=request_body(["work/table.csv"]))
        assert response.code == 502
        assert "cannot be reached" in message(response)


class TestSmallRequestLimit:
    """Files that pass one by one can still be too much together."""

    @pytest.fixture
    def settings(self, airlock: Any, tmp_path: Path) -> Settings:
        text = (Path(__file__).parents[2] / "policies" / "workspace.yaml").read_text()
        text = text.replace("max_request_bytes: 262144000", "max_request_bytes: 30")
        policies = tmp_path / "policies"
        policies.mkdir()
        (policies / "workspace.yaml").write_text(text)
        return Settings(airlock_url=airlock.url, policies_dir=str(policies))

    def test_request_over_the_total_limit(
        self, fetch: Any, workspace: Workspace, airlock: Any
    ) -> None:
        one = fetch(*RELEASES, method="POST", body=request_body(["work/table.csv"]))
        assert one.code == 201
        both = fetch(
            *RELEASES, method="POST", body=request_body(["work/table.csv", "work/notes.txt"])
        )
        assert both.code == 413
        assert "split it" in message(both)
        assert len(airlock.received) == 1
