"""Kill the airlock with SIGKILL in the middle of submissions; after a restart every
request is whole or absent, retries with the same key make exactly one request, and the
audit chain verifies.

The service runs as its own process here (not hub-managed) so the test decides when it
dies; it still checks every token against the real hub of the session.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests
from cleanroom.airlock.blobs import BlobStore
from cleanroom.airlock.database import open_storage
from cleanroom.lifecycle.keys import Keyring, KeySource

from .hub import PROJECT, REPO, Hub, free_port, wait_http
from .test_hub_api import submit

FILES_PER_REQUEST = 3
# Seconds from the first upload to the kill, one round each: spread over uploads, checks
# and commits (one submission takes about half a second here).
KILL_AFTER = [0.1, 0.35, 0.6, 0.85, 1.1]


def start_airlock(hub: Hub, root: Path, public: int, submit_port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        **hub.airlock_env,
        "CLEANROOM_AIRLOCK_DB_URL": f"sqlite:///{root / 'airlock.sqlite'}",
        "CLEANROOM_AIRLOCK_BLOB_DIR": str(root / "blobs"),
        "CLEANROOM_STATE_DIR": str(root / "state"),
        "JUPYTERHUB_API_URL": hub.hub_api,
        "JUPYTERHUB_API_TOKEN": hub.admin_token,
        "JUPYTERHUB_CLIENT_ID": "service-airlock-reliability",
        "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{public}",
        "JUPYTERHUB_SERVICE_PREFIX": "/services/airlock/",
        "CLEANROOM_AIRLOCK_SUBMIT_BIND": f"127.0.0.1:{submit_port}",
        "PYTHONPATH": str(REPO / "hub"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "cleanroom.airlock"],
        env=env,
        stdout=(root / "airlock.log").open("ab"),
        stderr=subprocess.STDOUT,
    )
    wait_http(f"http://127.0.0.1:{submit_port}/health", timeout=30, proc=proc)
    return proc


@functools.cache
def payload(key: str) -> dict[str, bytes]:
    """Three CSV files of about 400 KiB, unique to ``key``."""
    files = {}
    for i in range(FILES_PER_REQUEST):
        seed = hashlib.sha256(f"{key}-{i}".encode()).hexdigest()
        rows = "".join(f"{seed[r % 60 :][:4]}-{r},{(r * 7919) % 997}\n" for r in range(25_000))
        files[f"work/out/{key}-{i}.csv"] = ("name,count\n" + rows).encode()
    return files


def test_sigkill_mid_submission_leaves_whole_or_nothing(hub: Hub, tmp_path: Path) -> None:
    public, submit_port = free_port(), free_port()
    url = f"http://127.0.0.1:{submit_port}/api/v1/requests"
    token = hub.workspace_token("bob", PROJECT)
    attempted: list[str] = []
    proc = start_airlock(hub, tmp_path, public, submit_port)
    try:
        for round_, delay in enumerate(KILL_AFTER):
            keys = [f"r{round_}-{n}" for n in range(3)]
            attempted += keys
            for k in keys:
                payload(k)  # built (and cached) before the clock starts

            def send(key: str, stagger: float) -> None:
                time.sleep(stagger)
                # The service dying under us is the point of the test.
                with contextlib.suppress(requests.RequestException):
                    submit(url, token, payload(key), key=key, why=f"reliability {key}")

            threads = [
                threading.Thread(target=send, args=(k, 0.15 * i)) for i, k in enumerate(keys)
            ]
            started = time.monotonic()
            for t in threads:
                t.start()
            # Kill at a different moment each round: during upload, checks or the commit.
            time.sleep(max(0.0, delay - (time.monotonic() - started)))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            for t in threads:
                t.join()
            proc = start_airlock(hub, tmp_path, public, submit_port)

        survived = len(open_storage(f"sqlite:///{tmp_path / 'airlock.sqlite'}").list_requests())
        print(f"{survived} of {len(attempted)} submissions were committed before a kill")
        # The client retries everything it is unsure of, with the same key.
        ids = {}
        for key in attempted:
            r = submit(url, token, payload(key), key=key, why=f"reliability {key}")
            assert r.status_code in (200, 201), r.text
            ids[key] = r.json()["id"]
        assert len(set(ids.values())) == len(attempted)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)

    storage = open_storage(f"sqlite:///{tmp_path / 'airlock.sqlite'}")
    # The airlock sealed them with its state folder's keys (docs/lifecycle.md).
    source = KeySource(None, tmp_path / "state" / "secrets" / "master.key")
    blobs = BlobStore(tmp_path / "blobs", Keyring(tmp_path / "state" / "keys", source))
    requests_ = storage.list_requests()
    assert len(requests_) == len(attempted)
    submits: dict[str, int] = {}
    for rec in storage.audit_records():
        if rec.action == "submit":
            submits[rec.request_id or ""] = submits.get(rec.request_id or "", 0) + 1
    for req in requests_:
        key = req.justification.removeprefix("reliability ")
        expected = payload(key)
        assert {f.path: f.sha256 for f in req.files} == {
            p: hashlib.sha256(d).hexdigest() for p, d in expected.items()
        }
        for f in req.files:
            assert blobs.get(f.sha256, req.project)  # present, decrypted and verified
        assert submits[req.id] == FILES_PER_REQUEST
    verified = subprocess.run(
        [sys.executable, "-m", "cleanroom.airlock.cli", "audit", "verify"],
        env={**os.environ, "CLEANROOM_AIRLOCK_DB_URL": f"sqlite:///{tmp_path / 'airlock.sqlite'}"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert verified.returncode == 0, verified.stderr
    assert "audit chain verifies" in verified.stdout
