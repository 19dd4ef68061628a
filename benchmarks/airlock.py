"""Airlock: submission to queued, and the officers' pages with many requests stored.

A real JupyterHub runs the airlock as its managed service (the configuration pieces come
from ``cleanroom.airlock.hub_config``, as in production), on loopback ports, with a
policy that admits 100 MB files and many submissions a day. Before the hub starts, the
store is filled with ``requests`` submitted requests through the airlock's own domain
(``Airlock.submit``), with a stand-in for the disclosure checks so that seeding 10,000
requests takes minutes, not an hour; the timed submissions run the real checks.

Measured:

- ``submit``: a workspace-style ``POST /api/v1/requests`` on the submission listener
  with one CSV file of each size, until the answer (the request is then stored as
  submitted, i.e. in the officers' queue);
- ``pages``: the officers' queue page and one request's page, through the proxy, as a
  logged-in officer (each request page a different request, so each is a first look).
"""

from __future__ import annotations

import json
import re
import secrets
import time
from pathlib import Path
from typing import Any

import requests

from benchmarks.stats import summary
from tests.airlock.hub import start_hub, stop_hub

PROJECT = "press-line"
OFFICER = "olga"
RESEARCHERS = [f"r{i:03d}" for i in range(50)]
MB = 1_000_000


def _fake_checks(data: bytes, filename: str, project: str) -> dict[str, Any]:
    """What seeded requests carry instead of real check results."""
    return {"verdict": "pass", "findings": [], "filename": filename}


def _policy(biggest_mb: int) -> str:
    size = max(biggest_mb, 1) * MB + 1024 * 1024
    return (
        "approvals_required: 2\n"
        "duplicate_window_seconds: 600\n"
        "limits:\n"
        "  files_per_request: 20\n"
        f"  bytes_per_file: {size}\n"
        f"  bytes_per_request: {size}\n"
        "  requests_per_user_per_day: 1000000\n"
    )


def seed(db_url: str, blob_dir: Path, policy_file: Path, count: int) -> float:
    """Store ``count`` submitted requests through the domain; seconds it took."""
    from cleanroom.airlock.blobs import BlobStore
    from cleanroom.airlock.database import open_storage
    from cleanroom.airlock.domain import RESEARCHER_SCOPE, FileUpload
    from cleanroom.airlock.membership import StaticMembership
    from cleanroom.airlock.permissions import server_scope
    from cleanroom.airlock.policy import load_policy
    from cleanroom.airlock.service import Airlock

    airlock = Airlock(
        storage=open_storage(db_url),
        blobs=BlobStore(blob_dir),
        membership=StaticMembership({PROJECT: RESEARCHERS}),
        policy=load_policy(policy_file),
        checks=_fake_checks,
    )
    began = time.monotonic()
    for i in range(count):
        author = RESEARCHERS[i % len(RESEARCHERS)]
        actor = airlock.actor(author, frozenset({RESEARCHER_SCOPE, server_scope(author, PROJECT)}))
        body = f"line,defects\nA,{100 + i}\nB,{i % 97}\n".encode()
        upload = FileUpload(f"out/table-{i}.csv", body, "defects by line")
        airlock.submit(actor, PROJECT, f"seeded request {i} for the benchmark", [upload])
    return time.monotonic() - began


def _csv(size_mb: int, salt: str) -> bytes:
    """A CSV of about ``size_mb`` MB, unique by ``salt`` (no duplicate detection)."""
    head = f"line,shift,defects,temperature\n# {salt}\n".encode()
    row = b"A,early,12,201.5\nB,late,7,198.25\nC,night,3,203.75\n"
    return head + row * (size_mb * MB // len(row))


def _submit(url: str, token: str, data: bytes, name: str) -> float:
    meta = {
        "project": PROJECT,
        "justification": f"benchmark submission {name}",
        "files": [{"field": "file0", "path": f"out/{name}", "description": "benchmark"}],
    }
    parts: list[Any] = [
        ("metadata", (None, json.dumps(meta), "application/json")),
        ("file0", (name, data)),
    ]
    began = time.monotonic()
    reply = requests.post(
        url, files=parts, headers={"Authorization": f"token {token}"}, timeout=600
    )
    seconds = time.monotonic() - began
    if reply.status_code != 201:
        raise RuntimeError(f"submission of {name} answered {reply.status_code}: {reply.text[:300]}")
    return seconds


def _time_get(session: requests.Session, url: str) -> float:
    began = time.monotonic()
    reply = session.get(url, timeout=600)
    seconds = time.monotonic() - began
    if reply.status_code != 200:
        raise RuntimeError(f"GET {url} answered {reply.status_code}: {reply.text[:300]}")
    return seconds


def run(root: Path, count: int, sizes_mb: list[int], loads: int) -> dict[str, Any]:
    """Start a hub with the airlock on a store of ``count`` requests and time it."""
    root.mkdir(parents=True, exist_ok=True)
    policy = _policy(max(sizes_mb))
    policy_file = root / "airlock.yaml"
    policy_file.write_text(policy)
    db_url = f"sqlite:///{root / 'airlock.sqlite'}"
    seed_seconds = seed(db_url, root / "blobs", policy_file, count)
    print(f"   seeded {count} requests in {seed_seconds:.0f} s", flush=True)
    # The airlock test suite's hub, with this benchmark's policy and store.
    hub = start_hub(
        root, {PROJECT: RESEARCHERS}, [OFFICER], [], policy=policy, db_url=db_url, timeout=120
    )
    for user in [*RESEARCHERS[:2], OFFICER]:
        hub.add_user(user)
    try:
        out: dict[str, Any] = {"requests_in_store": count, "seed_seconds": seed_seconds}
        tokens = {u: hub.workspace_token(u, PROJECT) for u in RESEARCHERS[:2]}
        repeats = {size: (5 if size <= 10 else 2) for size in sizes_mb}
        out["submit"] = {}
        for size in sizes_mb:
            seconds = []
            for i in range(repeats[size]):
                data = _csv(size, secrets.token_hex(8))
                user = RESEARCHERS[i % 2]
                seconds.append(_submit(hub.submit_url, tokens[user], data, f"t{size}-{i}.csv"))
            out["submit"][str(size)] = summary(seconds)
        officer = hub.browser(OFFICER)
        ids = _request_ids(db_url, loads)
        queue_url = hub.service_url + "queue"
        queue = [_time_get(officer, queue_url) for _ in range(loads)]
        # The queue must hold the store, or the page's latency means nothing; it shows 50
        # requests a page and says how many there are in all.
        listed = officer.get(queue_url, timeout=600).text
        out["queue_rows"] = len(set(re.findall(r"requests/([0-9a-f]{16})", listed)))
        total = re.search(r"of (\d+), oldest first", listed)
        out["queue_total"] = int(total.group(1)) if total else None
        last_page = -(-(out["queue_total"] or 1) // 50)
        deepest = [_time_get(officer, f"{queue_url}?page={last_page}") for _ in range(loads)]
        pages = [_time_get(officer, f"{hub.service_url}requests/{rid}") for rid in ids]
        out["pages"] = {
            "queue (first)": summary(queue),
            "queue (last)": summary(deepest),
            "request": summary(pages),
        }
        out["airlock_process_rss_mib"] = _airlock_rss(hub.proc.pid)
        return out
    finally:
        stop_hub(hub)


def _request_ids(db_url: str, count: int) -> list[str]:
    from cleanroom.airlock.database import open_storage

    found = open_storage(db_url).list_requests(project=PROJECT)
    return [r.id for r in found[:count]]


def _airlock_rss(hub_pid: int) -> float | None:
    import psutil

    for child in psutil.Process(hub_pid).children(recursive=True):
        try:
            if "cleanroom.airlock" in " ".join(child.cmdline()):
                return float(child.memory_info().rss / 1024**2)
        except psutil.Error:
            continue
    return None
