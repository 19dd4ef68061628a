"""Restricted mode's viewer: start time, memory per session, VNC bytes per minute.

Each session is what the spawner starts for a restricted workspace, without the hub: a
JupyterLab (the notebook image, run as the researcher with a token) and a viewer (the
viewer image, with the spawner's exact container settings from
``cleanroom.workspace.viewer``) on a link network of their own; this process speaks VNC
to the viewer's websockify as the researcher's noVNC does through the gateway (the
gateway only counts and relays those frames).

Measured per session:

- ``lab_ready_s``: ``docker run`` of JupyterLab until its API answers (the baseline);
- ``viewer_start_s``: ``docker run`` of the viewer until its screen shows JupyterLab;
- ``memory_mib``: the viewer container's memory (cgroup) with JupyterLab on screen;
- ``idle_bytes_per_min`` and ``active_bytes_per_min``: VNC bytes towards the researcher
  per minute with the screen still, and while the pointer moves over the launcher and
  text is typed (hover effects, a cursor, an editor), each for ``--seconds``.

Reports ratios against the baseline measured in the same run (viewer start / lab
start; active / idle bytes). Usage: ``python -m benchmarks.viewer [--sessions N]
[--seconds S] [--out FILE]``; ``CLEANROOM_IMAGE_REPOSITORY`` picks the images.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import cleanroom.workspace.viewer as viewers
import docker
from cleanroom.settings import image_repository

from benchmarks.stats import summary
from tests.viewer.rfb import RFBClient

INSTANCE = "bench-viewer"
LAB_WHITE = (255, 255, 255)


def _wait_http(url: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(url)


async def _until_lab(client: RFBClient, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while True:
        client.request_update()
        await client.read_update()
        screen = client.screen
        assert screen is not None
        if screen.colours() > 40 and screen.share_of(LAB_WHITE) > 0.3:
            return
        if time.monotonic() > deadline:
            raise TimeoutError("the viewer never showed JupyterLab")
        await asyncio.sleep(0.2)


async def _activity(client: RFBClient, seconds: float) -> None:
    """Move the pointer over the screen and type, while reading what comes back."""
    import struct

    assert client.screen is not None
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    step = 0
    reader = asyncio.ensure_future(client.run_for(seconds))
    while loop.time() < end:
        x = (step * 37) % client.screen.width
        y = 150 + (step * 23) % (client.screen.height - 200)
        client._send(struct.pack("!BBHH", 5, 0, x, y))
        if step % 5 == 0:
            client.type_text("x")
        step += 1
        await asyncio.sleep(0.1)
    await reader


def _memory_mib(container: Any) -> float:
    stats = container.stats(stream=False)
    memory = stats.get("memory_stats") or {}
    usage = float(memory.get("usage", 0))
    # cgroup v2 counts the page cache too; inactive file pages are reclaimable.
    usage -= float((memory.get("stats") or {}).get("inactive_file", 0))
    return usage / 2**20


def session(engine: docker.DockerClient, index: int, seconds: float) -> dict[str, float]:
    """One session: lab, viewer, measurements; everything removed afterwards."""
    user, project = f"bench{index}", "p-bench"
    link = viewers.Viewers(engine, instance=INSTANCE)
    network = link.link_network(user, project)
    token = secrets.token_hex(16)
    base = f"/user/{user}/{project}/"
    lab = None
    try:
        began = time.monotonic()
        lab = engine.containers.run(
            f"{image_repository()}/notebook:latest",
            [
                "jupyter",
                "lab",
                "--ip=0.0.0.0",
                "--port=8888",
                "--no-browser",
                f"--IdentityProvider.token={token}",
                f"--ServerApp.base_url={base}",
            ],
            detach=True,
            user="1000:1000",
            network=network.name,
            labels={"cleanroom.instance": INSTANCE, "cleanroom.kind": "bench-lab"},
            remove=True,
        )
        lab.reload()
        lab_ip = lab.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]
        lab_url, ready_url = viewers.lab_urls(lab_ip, 8888, base, token)
        _wait_http(ready_url)
        lab_ready = time.monotonic() - began
        config = (network.attrs.get("IPAM") or {}).get("Config") or [{}]
        plan = viewers.ViewerPlan(
            user=user,
            project=project,
            instance=INSTANCE,
            image=f"{image_repository()}/viewer:latest",
            network=network.name,
            dns=str(config[0].get("Gateway", "")),
            lab_url=lab_url,
            ready_url=ready_url,
        )
        began = time.monotonic()
        started = link.start(plan)
        _wait_http(started.target + "/index.html")
        ws = started.target.replace("http", "ws", 1) + "/websockify"

        async def measure() -> dict[str, float]:
            client = RFBClient(ws)
            await client.connect()
            await _until_lab(client)
            start_s = time.monotonic() - began
            memory = _memory_mib(engine.containers.get(started.container_id))
            before = client.received
            await client.run_for(seconds)
            idle = (client.received - before) * 60 / seconds
            before = client.received
            await _activity(client, seconds)
            active = (client.received - before) * 60 / seconds
            client.close()
            return {
                "lab_ready_s": lab_ready,
                "viewer_start_s": start_s,
                "memory_mib": memory,
                "idle_bytes_per_min": idle,
                "active_bytes_per_min": active,
            }

        return asyncio.run(measure())
    finally:
        link.stop(user, project)
        if lab is not None:
            with contextlib.suppress(docker.errors.NotFound):
                lab.remove(force=True)


def run(sessions: int, seconds: float) -> dict[str, Any]:
    """Every session, one after another, and the summaries."""
    engine = docker.from_env()
    rows = [session(engine, i, seconds) for i in range(sessions)]
    keys = rows[0].keys() if rows else ()
    result: dict[str, Any] = {
        "sessions": rows,
        "summary": {key: summary([row[key] for row in rows]) for key in keys},
    }
    if rows:
        lab = sum(r["lab_ready_s"] for r in rows) / len(rows)
        start = sum(r["viewer_start_s"] for r in rows) / len(rows)
        idle = sum(r["idle_bytes_per_min"] for r in rows) / len(rows)
        active = sum(r["active_bytes_per_min"] for r in rows) / len(rows)
        result["ratios"] = {
            "viewer_start_over_lab_start": start / lab if lab else None,
            "active_over_idle_bytes": active / idle if idle else None,
        }
    return result


def main(argv: list[str] | None = None) -> int:
    """Command line of the benchmark; prints the result as JSON."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.viewer")
    parser.add_argument("--sessions", type=int, default=2, help="sessions measured (default 2)")
    parser.add_argument(
        "--seconds", type=float, default=60, help="seconds of each stream phase (default 60)"
    )
    parser.add_argument("--out", type=Path, help="write the JSON result here too")
    args = parser.parse_args(argv)
    if args.sessions < 1 or args.seconds <= 0:
        parser.error("--sessions must be >= 1 and --seconds > 0")
    result = run(args.sessions, args.seconds)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
