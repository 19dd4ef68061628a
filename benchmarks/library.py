"""The data library's pages with many datasets and applications in the store.

Two real JupyterHubs run the library as their managed service (the production service
entry, ``cleanroom.library.hub_config``), side by side on loopback: one over a registry
with ``datasets`` dataset versions and ``applications`` applications (the target store:
10,000 of each), one over the same shape at a thousandth of the size (the baseline: the
same pages with almost nothing stored). Both are seeded through the registry's one writer
(``Governance``), so every row has its journal entry as in production.

The shape: versions spread over ``PROVIDERS`` providers (``pat`` acts for the first),
each with a card, a three-file listing and a small quality report; applications by
``RESEARCHERS`` researchers (``alice`` is the first), each wanting one version, every
tenth one withdrawn; and as many projects (one member, one image each) and people again
for the operators' console (``benchmarks.console.seed``). Each page is loaded ``loads``
times by a signed-in person through the proxy (the first load is dropped: it warms the
service's caches as a person's first look would, once); p50, p95, the ratio against the
baseline hub, and whether p50 stays under the 200 ms target are reported.
"""

from __future__ import annotations

import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import requests

from benchmarks.console import seed as console_seed
from benchmarks.stats import ratio, summary
from tests.library.hub import LibraryHub, start_library_hub, stop_library_hub
from tests.people import in_standing

PROVIDERS = 10
RESEARCHERS = 100
TARGET_MS = 200.0
NEXT_YEAR = date.today() + timedelta(days=365)


def _name(i: int) -> str:
    return f"ds-{i:05d}"


def seed(url: str, datasets: int, applications: int) -> dict[str, float]:
    """Fill the registry at ``url`` through the domain; seconds each part took."""
    from cleanroom.registry import DatasetInfo, Registry
    from cleanroom.registry.governance import Governance
    from cleanroom.registry.library import NewCard

    registry = Registry(url)
    gov = Governance(registry)
    began = time.monotonic()
    researchers = ["alice"] + [f"r{i:03d}" for i in range(1, RESEARCHERS)]
    people = [(r, ["researcher"]) for r in researchers]
    people += [("olga", ["operator"]), ("pat", ["provider"])]
    for name, roles in people:
        gov.add_user(name, roles, actor="seed")
    for name in ("olga", "pat"):
        in_standing(registry, name)
    for p in range(PROVIDERS):
        gov.add_user(f"steward{p}", ["provider"], actor="seed")
        gov.add_provider_account(f"Provider {p}", "pat" if p == 0 else f"steward{p}",
                                 actor="olga")  # fmt: skip
    timings = {"people": time.monotonic() - began}
    began = time.monotonic()
    for i in range(datasets):
        name = _name(i)
        files = tuple((f"part-{k}.csv", 1000 + k, f"{i:060d}{k:04d}") for k in range(3))
        gov.register_dataset_version(
            DatasetInfo(name, "v1", f"Provider {i % PROVIDERS}", f"/lib/{name}/v1", None,
                        3003, files),
            NewCard("internal", "verified", description=f"Press line {i} strokes",
                    quality={"summary": {"rows": 100, "errors": 0}}),
            actor="seed",
        )  # fmt: skip
        if (i + 1) % 1000 == 0:
            print(f"   seeded {i + 1}/{datasets} dataset versions", file=sys.stderr, flush=True)
    timings["datasets"] = time.monotonic() - began
    began = time.monotonic()
    for i in range(applications):
        applicant = researchers[i % len(researchers)]
        app = gov.submit_application(
            title=f"Study {i}", purpose="which settings drive defects", ends_on=NEXT_YEAR,
            actor=applicant, members=[applicant], datasets=[_name(i % max(datasets, 1))],
        )  # fmt: skip
        if i % 10 == 0:
            gov.withdraw_application(app.id, actor=applicant, reason="seeded as decided")
        if (i + 1) % 1000 == 0:
            print(f"   seeded {i + 1}/{applications} applications", file=sys.stderr, flush=True)
    timings["applications"] = time.monotonic() - began
    registry.db.engine.dispose()
    return timings


def pages(datasets: int) -> dict[str, tuple[str, str]]:
    """Each page timed: (who loads it, its path under the library)."""
    middle = _name(datasets // 2)
    return {
        "catalogue": ("alice", ""),
        "catalogue search": ("alice", "?q=line+4999"),
        "catalogue, a late page": ("alice", f"?page={max(datasets // 100 - 1, 1)}"),
        "card": ("alice", f"datasets/{middle}/v1"),
        "your applications": ("alice", "applications"),
        "an application": ("alice", "applications/1"),
        "apply (the form)": ("alice", "applications/new"),
        "your datasets (provider)": ("pat", "provider"),
        "applications to decide (operator)": ("olga", "operator"),
        "console: projects": ("olga", "operator/projects"),
        "console: projects search": ("olga", "operator/projects?q=p04999"),
        "console: a project": ("olga", f"operator/projects/p{datasets // 2:05d}"),
        "console: people": ("olga", "operator/users"),
        "console: a person": ("olga", "operator/users/alice"),
        "console: images": ("olga", "operator/images"),
        "console: running workspaces": ("olga", "operator/workspaces"),
    }


def _time(session: requests.Session, url: str) -> float:
    began = time.perf_counter()
    r = session.get(url, timeout=120)
    elapsed = time.perf_counter() - began
    r.raise_for_status()
    return elapsed * 1000


def _measure(hub: LibraryHub, datasets: int, loads: int) -> dict[str, list[float]]:
    sessions: dict[str, requests.Session] = {}
    out: dict[str, list[float]] = {}
    for page, (who, path) in pages(datasets).items():
        s = sessions.get(who) or sessions.setdefault(who, hub.session(who))
        url = hub.library + path
        _time(s, url)  # the first look
        out[page] = [_time(s, url) for _ in range(loads)]
    return out


def run(root: Path, datasets: int, applications: int, loads: int) -> dict[str, Any]:
    """Seed both registries, start both hubs, time every page on each, interleaved."""
    small = (max(datasets // 1000, 10), max(applications // 1000, 10))
    hubs: dict[str, LibraryHub] = {}
    out: dict[str, Any] = {"datasets": datasets, "applications": applications, "loads": loads}
    try:
        for kind, (n_data, n_apps) in (("store", (datasets, applications)), ("baseline", small)):
            url = f"sqlite:///{root / kind / 'registry.sqlite'}"
            (root / kind).mkdir(parents=True)
            print(
                f"   seeding {kind}: {n_data} versions, {n_apps} applications",
                file=sys.stderr,
                flush=True,
            )
            out[f"seed_seconds_{kind}"] = seed(url, n_data, n_apps)
            # The console's rows (projects with a member, people), in one transaction.
            out[f"seed_seconds_{kind}"]["console"] = console_seed(url, n_data)
            hubs[kind] = start_library_hub(root / kind / "hub", root / kind / "state", url)
        runs = {kind: _measure(hub, datasets if kind == "store" else small[0], loads)
                for kind, hub in hubs.items()}  # fmt: skip
    finally:
        for hub in hubs.values():
            stop_library_hub(hub)
    out["pages"] = {}
    for page in pages(datasets):
        store, base = summary(runs["store"][page]), summary(runs["baseline"][page])
        out["pages"][page] = {
            "store_ms": store,
            "baseline_ms": base,
            "ratio_p50": ratio(store["p50"], base["p50"]),
            "under_target": store["p50"] < TARGET_MS,
        }
    return out


def main() -> None:
    """``python -m benchmarks.library [DATASETS APPLICATIONS LOADS]``: print the JSON."""
    import json
    import sys
    import tempfile

    args = [int(a) for a in sys.argv[1:4]] + [10_000, 10_000, 10][len(sys.argv[1:4]) :]
    with tempfile.TemporaryDirectory(prefix="bench-library-") as tmp:
        print(json.dumps(run(Path(tmp), *args), indent=2))


if __name__ == "__main__":
    main()
