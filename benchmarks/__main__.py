"""Run the clean room's benchmarks on this machine: ``python -m benchmarks``.

Measures, in one run, with a plain DockerSpawner hub beside cleanroom's hub as the
baseline (see ``benchmarks/plain_hub_config.py``):

- spawn latency, cold (a user's first spawn) and warm (a repeat), p50/p95;
- memory of an idle workspace container and of the hub, proxy and airlock processes;
- concurrent spawns (N users at once): time until all are ready, failures;
- the airlock: submission-to-queued for 1 MB and 100 MB files, queue-page and
  request-page latency with many requests in the store;
- the data library's pages (catalogue, cards, applications, providers' and operators'
  pages, the console) with 10,000 dataset versions and applications stored, against the
  same pages over a tiny store (``benchmarks/library.py``);
- disclosure-check throughput (``benchmarks/bench_checks.py``, the checks' own);
- the egress gateway's overhead: contents, kernel round trip, output throughput and
  JupyterLab's page through the gateway against the plain hub's direct path
  (``benchmarks/gateway.py``), and the gateway's CPU seconds and RSS with N active
  workspaces (``benchmarks/gateway_load.py``);
- on the one-node Kubernetes test cluster (``make k8s-up``; the part ``k8s-spawn``, run
  by default only while the cluster is up): spawn latency of cleanroom's Kubernetes
  backend against plain KubeSpawner, and concurrent spawns (``benchmarks/k8s_spawns.py``).

Writes ``benchmarks/results/<timestamp>.json`` and, unless ``--no-docs``, the tables in
``docs/benchmarks.md``. It reports; it never fails on time.

    python -m benchmarks                                  # the full run
    python -m benchmarks --quick                          # tiny sizes, a minute or two
    python -m benchmarks --parts spawn,memory --spawns 5 --concurrency 3,5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cleanroom.settings import image_repository

from benchmarks import report
from benchmarks.deployments import Deployment, start_cleanroom, start_plain, stop
from benchmarks.stats import ratio

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DOCS = HERE.parent / "docs" / "benchmarks.md"
IMAGE = f"{image_repository()}/notebook:latest"
PARTS = ("spawn", "memory", "concurrency", "gateway", "airlock", "library", "checks", "k8s-spawn")
# Parts that need more than this machine's Docker engine: in the default parts only
# when what they need is there (checked when the command line is read).
K8S_PART = "k8s-spawn"
PROJECT_SIZE = 10


def _parts(value: str) -> list[str]:
    chosen = [p.strip() for p in value.split(",") if p.strip()]
    unknown = sorted(set(chosen) - set(PARTS))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown part(s) {unknown}; choose from {PARTS}")
    return chosen


def _levels(value: str) -> list[int]:
    try:
        levels = [int(v) for v in value.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r}: comma-separated numbers") from exc
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError("concurrency levels must be positive")
    return levels


def default_parts() -> list[str]:
    """Every part; ``k8s-spawn`` only while the Kubernetes test cluster is up."""
    from benchmarks.k8s_spawns import cluster_up

    return [p for p in PARTS if p != K8S_PART or cluster_up()]


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument(
        "--parts",
        type=_parts,
        default=None,
        help=f"comma-separated, of {', '.join(PARTS)} (default: all; {K8S_PART} only "
        "while the Kubernetes test cluster is up)",
    )
    parser.add_argument("--spawns", type=int, default=20, help="timed spawns, cold and warm")
    parser.add_argument("--concurrency", type=_levels, default=[10, 25, 50])
    parser.add_argument("--idle-seconds", type=float, default=30, help="idle before memory")
    parser.add_argument("--airlock-requests", type=int, default=10_000)
    parser.add_argument("--airlock-sizes-mb", type=_levels, default=[1, 100])
    parser.add_argument("--page-loads", type=int, default=10, help="loads per page timed")
    parser.add_argument(
        "--gateway-loads", type=int, default=30, help="timed rounds of each gateway action"
    )
    parser.add_argument(
        "--gateway-workspaces",
        type=int,
        default=50,
        help="active workspaces for the gateway's CPU and RSS (0: not measured)",
    )
    parser.add_argument(
        "--gateway-active-seconds", type=float, default=30, help="how long they are active"
    )
    parser.add_argument(
        "--library-items", type=int, default=10_000,
        help="dataset versions and applications (and console rows) in the library's store",
    )  # fmt: skip
    parser.add_argument("--check-rows", type=int, default=100_000)
    parser.add_argument(
        "--k8s-spawns", type=int, default=10, help="timed spawns on the cluster, cold and warm"
    )
    parser.add_argument(
        "--k8s-concurrency", type=int, default=20, help="cleanroom pods started at once (0: none)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes for development: 2 spawns, concurrency 2, 200 requests",
    )
    parser.add_argument(
        "--skip-build", action="store_true", help=f"use {IMAGE} as it is, do not rebuild it"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the hubs' state folders and logs (printed)"
    )
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    parser.add_argument("--out", type=Path, help="JSON result file (default results/<time>)")
    return parser


def _quick(args: argparse.Namespace) -> None:
    args.spawns = min(args.spawns, 2)
    args.concurrency = [2]
    args.idle_seconds = min(args.idle_seconds, 5)
    args.airlock_requests = min(args.airlock_requests, 200)
    args.airlock_sizes_mb = [1, 5]
    args.page_loads = min(args.page_loads, 3)
    args.gateway_loads = min(args.gateway_loads, 4)
    args.gateway_workspaces = min(args.gateway_workspaces, 3)
    args.gateway_active_seconds = min(args.gateway_active_seconds, 10)
    args.check_rows = min(args.check_rows, 5_000)
    args.library_items = min(args.library_items, 200)
    args.k8s_spawns = min(args.k8s_spawns, 2)
    args.k8s_concurrency = min(args.k8s_concurrency, 3)


def _step(name: str, fn: Callable[[], Any]) -> Any:
    """Run one part; a part that breaks is reported as such and the run goes on."""
    print(f"== {name}", flush=True)
    began = time.monotonic()
    try:
        return fn()
    except Exception as exc:
        traceback.print_exc()
        return {"error": f"{type(exc).__name__}: {exc}"[:2000]}
    finally:
        print(f"   {name}: {time.monotonic() - began:.0f} s", flush=True)


def run_spawns(deps: list[Deployment], n: int) -> dict[str, Any]:
    """Cold and warm sequential spawns on both deployments, with their phases."""
    from benchmarks import phases, spawns

    cold = {d.kind: [(f"cold{i}", f"bench-cold{i}") for i in range(n)] for d in deps}
    warm = {d.kind: [("warm0", "bench-warm")] * n for d in deps}
    for dep in deps:
        for user, server in cold[dep.kind]:
            dep.add_users([user], server)
        dep.add_users(["warm0"], "bench-warm")
    logs = {d.kind: d.hub.state / "hub.log" for d in deps}
    mark = {kind: phases.log_size(log) for kind, log in logs.items()}
    cold_runs = asyncio.run(spawns.sequential(deps, cold))
    cold_phases = {kind: phases.report(log, mark[kind]) for kind, log in logs.items()}
    mark = {kind: phases.log_size(log) for kind, log in logs.items()}
    warm_runs = asyncio.run(spawns.sequential(deps, warm, prime=True))
    warm_phases = {kind: phases.report(log, mark[kind]) for kind, log in logs.items()}
    out: dict[str, Any] = {"phases": {"cold": cold_phases, "warm": warm_phases}}
    for phase, runs in (("cold", cold_runs), ("warm", warm_runs)):
        out[phase] = {kind: spawns.report(found) for kind, found in runs.items()}
        if {"cleanroom", "plain"} <= out[phase].keys():
            cr, pl = out[phase]["cleanroom"], out[phase]["plain"]
            out[phase]["ratio_p50"] = ratio(cr["p50"], pl["p50"])
            out[phase]["ratio_p95"] = ratio(cr["p95"], pl["p95"])
    return out


def run_memory(deps: list[Deployment], idle_seconds: float) -> dict[str, Any]:
    """Idle memory of one workspace per deployment, and of the hub-side processes."""
    from benchmarks import memory, spawns

    for dep in deps:
        dep.add_users(["idle0"], "bench-idle")

    async def start_all() -> None:
        async with spawns._client() as client:
            for dep in deps:
                done = await spawns.spawn(client, dep, "idle0", "bench-idle")
                if not done.ok:
                    raise RuntimeError(f"{dep.kind}: idle workspace failed: {done.error}")

    async def stop_all() -> None:
        async with spawns._client() as client:
            for dep in deps:
                await spawns.stop(client, dep, "idle0", "bench-idle")

    asyncio.run(start_all())
    time.sleep(idle_seconds)
    out: dict[str, Any] = {"idle_seconds": idle_seconds}
    for dep in deps:
        if dep.kind == "cleanroom":
            label = f"cleanroom.instance={dep.instance}"
        else:
            label = f"cleanroom.bench={dep.instance}"
        found = [c for c in memory.containers_of(label) if "idle0" in c.name]
        entry: dict[str, Any] = {
            "workspace": memory.container_memory(found[0].id) if found else None,
            "processes": {
                role: memory.process_memory(pid) for role, pid in dep.process_ids().items()
            },
        }
        out[dep.kind] = entry
    asyncio.run(stop_all())
    return out


def run_concurrency(deps: list[Deployment], levels: list[int]) -> dict[str, Any]:
    """N users starting at once, per deployment, one deployment at a time."""
    from benchmarks import phases, spawns

    out: dict[str, Any] = {}
    for level in levels:
        users = [f"c{level}u{i}" for i in range(level)]
        # Projects of at most 10 members: the standard quota tier runs at most 10
        # workspaces of one project at once.
        servers = {u: f"bench-c{level}p{i // PROJECT_SIZE}" for i, u in enumerate(users)}
        out[str(level)] = {}
        # One member of each project starts once first (untimed), so the burst starts
        # workspaces of existing projects, as on any day but a project's first.
        firsts = {s: u for u, s in reversed(servers.items())}
        for dep in deps:
            for user, server in servers.items():
                dep.add_users([user], server)
            asyncio.run(spawns.prime(dep, [(u, s) for s, u in firsts.items()]))
            log = dep.hub.state / "hub.log"
            mark = phases.log_size(log)
            all_ready, found, stopped = asyncio.run(spawns.concurrent(dep, servers))
            entry = spawns.report(found)
            entry["phases"] = phases.report(log, mark)
            entry["all_ready_seconds"] = all_ready
            entry["stop_all_seconds"] = stopped
            out[str(level)][dep.kind] = entry
            print(
                f"   {dep.kind} x{level}: all ready in {all_ready:.1f} s, "
                f"{entry['failures']} failed",
                flush=True,
            )
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the chosen parts and write the results."""
    args = build_parser().parse_args(argv)
    if args.parts is None:
        args.parts = default_parts()
    if args.quick:
        _quick(args)
    from benchmarks import machine

    started = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    result: dict[str, Any] = {
        "started": started,
        "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": machine.describe(IMAGE),
    }
    needs_hubs = {"spawn", "memory", "concurrency", "gateway"} & set(args.parts)
    root = Path(tempfile.mkdtemp(prefix="cleanroom-bench-"))
    deps: list[Deployment] = []
    try:
        if (needs_hubs or K8S_PART in args.parts) and not args.skip_build:
            _step("images", _build_images)
        if needs_hubs:
            deps = _start_hubs(root)
        if "spawn" in args.parts:
            result["spawn"] = _step("spawn latency", lambda: run_spawns(deps, args.spawns))
        if "memory" in args.parts:
            result["memory"] = _step("memory", lambda: run_memory(deps, args.idle_seconds))
        if "concurrency" in args.parts:
            result["concurrency"] = _step(
                "concurrency", lambda: run_concurrency(deps, args.concurrency)
            )
        if "gateway" in args.parts:
            from benchmarks import gateway

            result["gateway"] = _step("gateway", lambda: gateway.run(deps, args.gateway_loads))
            cleanroom = [d for d in deps if d.kind == "cleanroom"]
            if cleanroom and args.gateway_workspaces > 0 and "error" not in result["gateway"]:
                from benchmarks import gateway_load

                result["gateway"]["load"] = _step(
                    "gateway load",
                    lambda: gateway_load.run(
                        cleanroom[0], args.gateway_workspaces, args.gateway_active_seconds
                    ),
                )
    finally:
        for dep in deps:
            try:
                stop(dep)
            except Exception as exc:  # cleanup must go on for the other deployment
                print(f"stopping {dep.kind}: {exc!r}", file=sys.stderr)
    try:
        if K8S_PART in args.parts:
            from benchmarks import k8s_spawns

            result["k8s"] = _step(
                "kubernetes spawns",
                lambda: k8s_spawns.run(root / "k8s", args.k8s_spawns, args.k8s_concurrency),
            )
        if "airlock" in args.parts:
            from benchmarks import airlock

            result["airlock"] = _step(
                "airlock",
                lambda: airlock.run(
                    root / "airlock", args.airlock_requests, args.airlock_sizes_mb, args.page_loads
                ),
            )
        if "library" in args.parts:
            from benchmarks import library

            n = args.library_items
            result["library"] = _step(
                "library", lambda: library.run(root / "library", n, n, args.page_loads)
            )
        if "checks" in args.parts:
            from benchmarks import checks

            result["checks"] = _step("checks", lambda: checks.run(args.check_rows))
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    result["finished"] = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    # Another build during the run would have changed what later spawns ran.
    result["machine"]["image_at_end"] = machine.describe(IMAGE)["image"]
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = args.out or RESULTS / f"{started}.json"
    out.write_text(json.dumps(result, indent=2, default=str))
    print(f"results: {out}")
    # Each block of docs/benchmarks.md is rewritten only by a run of its parts.
    if set(args.parts) - {K8S_PART}:
        markdown = report.markdown(result)
        print(markdown)
        if not args.no_docs:
            report.write(DOCS, markdown)
            print(f"tables: {DOCS}")
    if K8S_PART in args.parts:
        markdown = report.k8s_markdown(result)
        print(markdown)
        if not args.no_docs:
            report.write(DOCS, markdown, report.K8S_START, report.K8S_END)
            print(f"Kubernetes tables: {DOCS}")
    return 0


def _start_hubs(root: Path) -> list[Deployment]:
    print("== hubs", flush=True)
    deps: list[Deployment] = []
    try:
        deps.append(start_cleanroom(root))
        deps.append(start_plain(root))
    except Exception:
        for dep in deps:
            stop(dep)
        raise
    return deps


def _build_images() -> None:
    from cleanroom.images.build import build_images

    build_images(("base", "notebook"), progress=lambda line: None)


if __name__ == "__main__":
    sys.exit(main())
