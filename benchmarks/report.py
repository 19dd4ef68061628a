"""The Markdown tables of a benchmark run, written into ``docs/benchmarks.md``.

Only the part between two markers is replaced, so the hand-written notes around it
(method, what profiling found, what changed) survive every run. The Kubernetes part
(``k8s-spawn``) has markers of its own, so a run on the cluster alone keeps the Docker
tables, and a run without it keeps the Kubernetes ones.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

PHASES = ("prepare", "boot", "detect")
START = "<!-- benchmark-results:start -->"
END = "<!-- benchmark-results:end -->"
K8S_START = "<!-- k8s-benchmark-results:start -->"
K8S_END = "<!-- k8s-benchmark-results:end -->"
K8S_STEPS = ("registry", "concurrency", "datasets", "storage", "policies", "pod", "gateway")


def _s(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _table(head: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_s(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _machine(m: dict[str, Any]) -> list[str]:
    rows = [[k.replace("_", " "), v] for k, v in m.items()]
    return ["### Machine", "", *_table(["", ""], rows)]


def _latency_rows(spawn: dict[str, Any]) -> tuple[list[list[Any]], list[str]]:
    """The spawn-latency table's rows (cold and warm, each hub and their ratio), and its
    head: the Docker part's and the cluster's alike."""
    rows = []
    for phase in ("cold", "warm"):
        found = spawn.get(phase) or {}
        for kind in ("cleanroom", "plain"):
            if kind in found:
                r = found[kind]
                rows.append([phase, kind, r["n"], r["p50"], r["p95"], r["max"], r["failures"]])
        rows.append([phase, "ratio cleanroom / plain", "", found.get("ratio_p50"),
                     found.get("ratio_p95"), "", ""])  # fmt: skip
    return rows, ["spawn", "hub", "n", "p50 s", "p95 s", "max s", "failures"]


def _spawn(spawn: dict[str, Any]) -> list[str]:
    rows, head = _latency_rows(spawn)
    lines = [
        "### Spawn latency (REST request until JupyterLab answers through the proxy)",
        "",
        *_table(head, rows),
    ]
    found = spawn.get("phases") or {}
    rows = []
    for phase in ("cold", "warm"):
        for kind, parts in (found.get(phase) or {}).items():
            rows.append([phase, kind, *(parts[p]["p50"] for p in PHASES)])
    if rows:
        lines += [
            "Where the time goes (p50 seconds, from the hub's log): *prepare* is hub-side "
            "work until `docker start`, *boot* the container and JupyterLab until the server "
            "reports to the hub, *detect* until the hub declares it ready.",
            "",
            *_table(["spawn", "hub", *PHASES], rows),
        ]
    return lines


def _memory(mem: dict[str, Any]) -> list[str]:
    rows = []
    for kind in ("cleanroom", "plain"):
        entry = mem.get(kind)
        if not entry:
            continue
        ws = entry.get("workspace") or {}
        rows.append([kind, "idle workspace container", ws.get("used_mib"), ws.get("rss_mib")])
        for role, m in entry.get("processes", {}).items():
            rows.append([kind, f"{role} process", m["rss_mib"], m["uss_mib"]])
    head = ["hub", "what", "MiB (container: used; process: RSS)", "MiB (rss / USS)"]
    return [
        f"### Memory (after {_s(mem.get('idle_seconds'), 0)} s idle)",
        "",
        *_table(head, rows),
    ]


def _concurrency(conc: dict[str, Any]) -> list[str]:
    rows = []
    for level, found in conc.items():
        for kind in ("cleanroom", "plain"):
            if kind in found:
                r = found[kind]
                parts = r.get("phases") or {}
                rows.append(
                    [level, kind, r["all_ready_seconds"], r["p50"], r["max"], r["failures"],
                     r["retries_429"], *((parts.get(p) or {}).get("p50") for p in PHASES)]
                )  # fmt: skip
    head = ["users at once", "hub", "all ready s", "p50 s", "slowest s", "failures", "429s"]
    head += [f"{p} p50 s" for p in PHASES]
    return ["### Concurrent spawns", "", *_table(head, rows)]


def _airlock(air: dict[str, Any]) -> list[str]:
    lines = ["### Airlock", ""]
    if air.get("missing"):
        lines += [f"Not measured: {air['missing']}", ""]
        return lines
    rows = [
        [f"submit {size} MB file (to queued)", r["p50"], r["p95"], r["n"]]
        for size, r in (air.get("submit") or {}).items()
    ]
    for page, r in (air.get("pages") or {}).items():
        rows.append([f"{page} page, {air.get('requests_in_store')} requests in store",
                     r["p50"], r["p95"], r["n"]])  # fmt: skip
    lines += _table(["what", "p50 s", "p95 s", "n"], rows)
    if air.get("queue_total") is not None:
        lines += [f"The queue held {air['queue_total']} requests, {air['queue_rows']} a page.", ""]
    elif air.get("queue_rows") is not None:
        lines += [f"The queue page listed {air['queue_rows']} requests.", ""]
    if air.get("seed_seconds") is not None:
        lines += [
            f"Seeding {air.get('requests_in_store')} requests through the airlock's domain "
            f"took {_s(air['seed_seconds'], 0)} s.",
            "",
        ]
    return lines


def _library(lib: dict[str, Any]) -> list[str]:
    lines = [
        "### Data library pages",
        "",
        f"{lib.get('datasets')} dataset versions, {lib.get('applications')} applications and "
        f"as many console projects and people in the store; the baseline hub's store holds a "
        f"thousandth. Target: p50 under 200 ms with the full store.",
        "",
    ]
    rows = [
        [page, r["store_ms"]["p50"], r["store_ms"]["p95"], r["baseline_ms"]["p50"],
         r["ratio_p50"], "met" if r["under_target"] else "NOT met"]
        for page, r in (lib.get("pages") or {}).items()
    ]  # fmt: skip
    head = ["page", "p50 ms", "p95 ms", "baseline p50 ms", "ratio p50", "< 200 ms"]
    return lines + _table(head, rows)


def _checks(checks: dict[str, Any]) -> list[str]:
    if checks.get("missing"):
        return ["### Disclosure checks", "", f"Not measured: {checks['missing']}", ""]
    rows = []
    for fmt, r in (checks.get("formats") or {}).items():
        rows.append(
            [fmt, checks.get("rows"), r["check_seconds"], r.get("rows_per_second"),
             r["baseline_seconds"], r["ratio_check_to_baseline"], r["check_peak_rss_mb"]]
        )  # fmt: skip
    head = ["format", "rows", "check s", "rows/s", "read-only s", "ratio", "peak MB"]
    return [
        f"### Disclosure checks (a table checked against a {checks.get('source_rows')}-row "
        "source index; `benchmarks/bench_checks.py`)",
        "",
        *_table(head, rows),
    ]


def _gateway(gw: dict[str, Any]) -> list[str]:
    names = {
        "contents": "contents GET, 1 MB notebook (s)",
        "roundtrip": "kernel round trip, small execute (s)",
        "page": "JupyterLab page, `GET lab` (s)",
        "throughput": "stream output (MiB/s)",
    }
    ratios, overhead = gw.get("ratios") or {}, gw.get("overhead_ms") or {}
    rows = []
    for key, label in names.items():
        cr = (gw.get("cleanroom") or {}).get(key) or {}
        pl = (gw.get("plain") or {}).get(key) or {}
        rows.append(
            [label, _s(cr.get("p50"), 4), _s(cr.get("p95"), 4), _s(pl.get("p50"), 4),
             _s(pl.get("p95"), 4), _s(ratios.get(key)), _s(overhead.get(key), 1)]
        )  # fmt: skip
    head = ["action", "gateway p50", "gateway p95", "direct p50", "direct p95", "ratio p50",
            "overhead p50 (ms)"]  # fmt: skip
    return [
        f"### Egress gateway ({gw.get('loads')} interleaved rounds; the gateway path against "
        "the plain hub's direct proxy-to-server path; `benchmarks/gateway.py`)",
        "",
        *_table(head, rows),
        "",
        f"The policy's output rate limit: {_s(gw.get('policy_rate_mib_s'))} MiB/s with a burst "
        f"of {_s(gw.get('policy_burst_mib'))} MiB; each stream output measured (512 KiB) "
        "starts with that much in the bucket (the rounds are paced), so its ratio is the "
        "path's own cost.",
        "",
        *_gateway_load(gw.get("load")),
    ]


def _gateway_load(load: dict[str, Any] | None) -> list[str]:
    if not load:
        return []
    if "error" in load:
        return [f"The gateway under load failed: `{load['error']}`", ""]
    rows = [
        ["workspaces asked / started / active", f"{load.get('workspaces_asked')} / "
         f"{load.get('workspaces_started')} / {load.get('workspaces_active')}"],
        ["window (s) / actions (executes + contents GETs)",
         f"{_s(load.get('window_seconds'), 1)} / {load.get('actions')}"],
        ["gateway CPU seconds (user + system)", _s(load.get("gateway_cpu_seconds"), 2)],
        ["gateway CPU share of one core", _s(load.get("gateway_cpu_share"), 3)],
        ["gateway CPU per action (ms)", _s(load.get("gateway_cpu_ms_per_action"), 2)],
        ["gateway RSS before the workspaces started (MiB)",
         _s(load.get("gateway_rss_before_mib"), 1)],
        ["gateway RSS, routes registered, idle (MiB)", _s(load.get("gateway_rss_idle_mib"), 1)],
        ["gateway RSS, highest while active (MiB)", _s(load.get("gateway_rss_peak_mib"), 1)],
    ]  # fmt: skip
    errors = load.get("errors") or []
    return [
        "Gateway under load (`benchmarks/gateway_load.py`): real workspaces, each with a "
        "kernel websocket open and, about once a second, a small execute and a contents GET "
        "of a 20 kB notebook, through the proxy and the gateway.",
        "",
        *_table(["measure", "value"], rows),
        "",
        *([f"Errors: {'; '.join(errors)}", ""] if errors else []),
    ]


def _k8s_sequential(seq: dict[str, Any]) -> list[str]:
    rows, head = _latency_rows(seq)
    lines = [
        "### Spawn latency on the cluster (REST request until JupyterLab answers through "
        "the proxy)",
        "",
        *_table(head, rows),
    ]
    rows, steps = [], []
    for phase in ("cold", "warm"):
        for kind, where in ((seq.get("phases") or {}).get(phase) or {}).items():
            rows.append([phase, kind, *((where.get(p) or {}).get("p50") for p in PHASES)])
            if where.get("steps"):
                steps.append([phase, kind, *_steps(where["steps"])])
    lines += [
        "Where the time goes (p50 seconds, from the hubs' logs): *prepare* is hub-side work "
        "until KubeSpawner asks for the pod, *boot* the pod and JupyterLab until the server "
        "reports to the hub, *detect* until the hub declares it ready.",
        "",
        *_table(["spawn", "hub", *PHASES], rows),
    ]
    if steps:
        lines += [
            "Cleanroom's spawner, step by step (p50 seconds, its `start steps` log line; "
            "*pod*: KubeSpawner's create and wait until the pod runs; *gateway*: the route "
            "registered and the server answering through the gateway).",
            "",
            *_table(["spawn", "hub", *K8S_STEPS], steps),
        ]
    return lines


def _steps(found: dict[str, Any]) -> list[Any]:
    return [(found.get(step) or {}).get("p50") for step in K8S_STEPS]


def _k8s_concurrent(conc: dict[str, Any]) -> list[str]:
    where = conc.get("where") or {}
    tier = conc.get("tier") or {}
    row = [conc.get("count"), conc.get("all_ready_seconds"), conc.get("p50"), conc.get("p95"),
           conc.get("max"), conc.get("failures"), conc.get("retries_429"),
           *((where.get(p) or {}).get("p50") for p in PHASES)]  # fmt: skip
    head = ["pods at once", "all ready s", "p50 s", "p95 s", "max s", "failures", "429s"]
    head += [f"{p} p50 s" for p in PHASES]
    lines = [
        "### Concurrent spawns on the cluster (cleanroom's backend)",
        "",
        *_table(head, [row]),
        f"Quota tier `{tier.get('name')}`: {tier.get('cpu')} CPU and {tier.get('memory')} "
        "per pod (requests = limits), projects of at most 10 members.",
        "",
    ]
    if where.get("steps"):
        lines += [*_table(["steps p50 s", *K8S_STEPS], [["", *_steps(where["steps"])]])]
    if conc.get("errors"):
        lines += [f"Errors: {'; '.join(conc['errors'])}", ""]
    return lines


def k8s_markdown(result: dict[str, Any]) -> str:
    """The Kubernetes tables of one run (the part ``k8s-spawn``)."""
    k8s = result.get("k8s") or {}
    lines = [
        f"Run {result.get('started')} to {result.get('finished')}; arguments: "
        f"`{_arguments(result.get('arguments') or {}, K8S_ARGUMENTS)}`.",
        "",
    ]
    if "error" in k8s:
        return "\n".join([*lines, f"This part failed: `{k8s['error']}`", ""])
    machine = {**(result.get("machine") or {}), **(k8s.get("cluster") or {})}
    lines += _machine(machine)
    if "sequential" in k8s:
        lines += _k8s_sequential(k8s["sequential"])
    if "error" in (k8s.get("concurrent") or {}):
        lines += ["### Concurrent spawns on the cluster", "",
                  f"This part failed: `{k8s['concurrent']['error']}`", ""]  # fmt: skip
    elif "concurrent" in k8s:
        lines += _k8s_concurrent(k8s["concurrent"])
    return "\n".join(lines).rstrip() + "\n"


def markdown(result: dict[str, Any]) -> str:
    """The tables of one run."""
    lines = [
        f"Run {result.get('started')} to {result.get('finished')}; "
        f"arguments: `{_arguments(result.get('arguments') or {})}`.",
        "",
    ]
    lines += _machine(result.get("machine") or {})
    parts = {
        "spawn": _spawn,
        "memory": _memory,
        "concurrency": _concurrency,
        "gateway": _gateway,
        "airlock": _airlock,
        "library": _library,
        "checks": _checks,
    }
    for name, table in parts.items():
        if name not in result:
            continue
        if "error" in result[name]:
            lines += [f"### {name}", "", f"This part failed: `{result[name]['error']}`", ""]
        else:
            lines += table(result[name])
    return "\n".join(lines).rstrip() + "\n"


ARGUMENTS = ("spawns", "concurrency", "idle_seconds", "gateway_loads", "gateway_workspaces",
             "gateway_active_seconds", "airlock_requests", "library_items", "check_rows",
             "quick")  # fmt: skip
K8S_ARGUMENTS = ("k8s_spawns", "k8s_concurrency", "quick")


def _arguments(args: dict[str, Any], keep: tuple[str, ...] = ARGUMENTS) -> str:
    return " ".join(f"{k}={args[k]}" for k in keep if k in args)


def write(path: Path, tables: str, start: str = START, end: str = END) -> None:
    """Put ``tables`` between the markers of ``path`` (created with them if missing)."""
    block = f"{start}\n{tables}{end}"
    if path.exists() and start in (text := path.read_text(encoding="utf-8")) and end in text:
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        path.write_text(head + block + tail, encoding="utf-8")
        return
    if path.exists():
        # A page without these markers keeps what it has; the block goes at its end.
        path.write_text(text.rstrip() + "\n\n" + block + "\n", encoding="utf-8")
        return
    path.write_text(
        "# Benchmarks\n\nMeasured with `python -m benchmarks` (`make bench`); see "
        "`benchmarks/__main__.py` for what each number means.\n\n" + block + "\n",
        encoding="utf-8",
    )
