"""Benchmark: check a large table against a large source dataset's index.

Measures, each in a fresh process so that peak memory is the process's own:

* baseline: a plain ``pandas.read_csv`` (or ``read_parquet``) of the output table;
* check: ``check_bytes`` on the same bytes with the source index loaded.

It reports seconds (median of the repeats), the ratio check / baseline, peak resident
memory, and the index's size, for a source of ``--source-rows`` and a smaller one, so
that memory growth with the source's size can be read off.

It also times a release request of ``--request-files`` small outputs (tables in CSV,
JSON and Markdown, printed frames, figures, notebooks) the way the airlock checks
them: one process, the adapter's context loaded once, every file checked and then the
request-level checks (differencing) across them. It reports the time per file against
a baseline of reading the same files with pandas in the same run.

Results are printed and written as JSON to ``benchmarks/results/``. It never asserts
on time.

    python benchmarks/bench_checks.py                 # 1,000,000 x 1,000,000
    python benchmarks/bench_checks.py --rows 100000 --source-rows 100000 --repeat 1
    python benchmarks/bench_checks.py --only-request --small-source-rows 100000
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def _peak_rss_mb() -> float:
    # VmHWM is this process's own peak; ru_maxrss would carry the parent's peak across
    # fork and exec on Linux.
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(mode: str, table: Path, index: Path | None) -> dict[str, float]:
    """Run one measurement in this process and return its numbers."""
    import pandas as pd
    from cleanroom.checks import CheckContext, DisclosurePolicy, check_bytes, load_source_index

    data = table.read_bytes()
    sources = [load_source_index(index)] if index else []
    context = CheckContext(DisclosurePolicy.load(), sources)
    import io

    before = _peak_rss_mb()
    start = time.perf_counter()
    verdict = ""
    if mode == "baseline":
        reader = pd.read_parquet if table.suffix == ".parquet" else pd.read_csv
        reader(io.BytesIO(data))
    else:
        report = check_bytes(data, table.name, context)
        verdict = report.verdict.value
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "peak_rss_mb": _peak_rss_mb(),
        "rss_before_mb": before,
        "verdict": verdict,  # type: ignore[dict-item]
    }


def _run_worker(mode: str, table: Path, index: Path | None) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--worker", mode, "--table", str(table)]
    if index:
        cmd += ["--index", str(index)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _prepare(work: Path, rows: int, source_rows: int) -> tuple[Path, Path, Path, float]:
    from cleanroom.checks import build_source_index
    from cleanroom.demo.press_line import IDENTIFIER_COLUMNS, generate_press_line

    work.mkdir(parents=True, exist_ok=True)
    source = work / f"source_{source_rows}.parquet"
    index = work / f"index_{source_rows}"
    build_seconds = float("nan")
    if not _index_current(index):
        print(f"generating a {source_rows}-row source and building its index ...", flush=True)
        if not source.exists():
            generate_press_line(source_rows, seed=7).to_parquet(source, index=False)
        shutil.rmtree(index, ignore_errors=True)
        start = time.perf_counter()
        build_source_index([source], index, identifier_columns=IDENTIFIER_COLUMNS)
        build_seconds = time.perf_counter() - start
    csv = work / f"table_{rows}.csv"
    parquet = work / f"table_{rows}.parquet"
    if not csv.exists():
        print(f"generating a {rows}-row output table ...", flush=True)
        # Another stretch of the same line (another seed): the same columns and
        # distributions, so every lookup runs, but only chance matches with the source.
        table = generate_press_line(rows, seed=11)
        table.to_csv(csv, index=False)
        table.to_parquet(parquet, index=False)
    return csv, parquet, index, build_seconds


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or, with --worker, one measurement)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the output table")
    parser.add_argument("--source-rows", type=int, default=1_000_000, help="rows in the source")
    parser.add_argument("--small-source-rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", type=Path, default=RESULTS / "cache")
    parser.add_argument("--worker", choices=["baseline", "check"], help=argparse.SUPPRESS)
    parser.add_argument("--table", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--index", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--request-files", type=int, default=100)
    parser.add_argument("--only-request", action="store_true", help="only the request part")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.table, args.index)))
        return 0
    if args.only_request:
        _c, _p, small_index, _s = _prepare(args.work, 1_000, args.small_source_rows)
        source = args.work / f"source_{args.small_source_rows}.parquet"
        request = _request_benchmark(small_index, source, args.request_files, args.repeat)
        _write({"benchmark": "request_per_file", "request": request})
        return 0

    csv, parquet, index, build_s = _prepare(args.work, args.rows, args.source_rows)
    _csv2, _pq2, small_index, small_build_s = _prepare(args.work, args.rows, args.small_source_rows)
    result: dict[str, object] = {
        "benchmark": "check_table_against_source_index",
        "rows": args.rows,
        "source_rows": args.source_rows,
        "machine": {"python": platform.python_version(), "cpus": _cpus(), "node": platform.node()},
        "index_build_seconds": build_s,
        "index_mb": _size_mb(index),
        "small_source_rows": args.small_source_rows,
        "small_index_mb": _size_mb(small_index),
        "small_index_build_seconds": small_build_s,
        "formats": {},
    }
    for fmt, table in (("csv", csv), ("parquet", parquet)):
        runs: dict[str, list[dict[str, float]]] = {"baseline": [], "check": [], "check_small": []}
        for _ in range(args.repeat):
            runs["baseline"].append(_run_worker("baseline", table, None))
            runs["check"].append(_run_worker("check", table, index))
            runs["check_small"].append(_run_worker("check", table, small_index))
        base = statistics.median(r["seconds"] for r in runs["baseline"])
        check = statistics.median(r["seconds"] for r in runs["check"])
        entry = {
            "baseline_seconds": base,
            "check_seconds": check,
            "ratio_check_to_baseline": check / base,
            "check_small_source_seconds": statistics.median(
                r["seconds"] for r in runs["check_small"]
            ),
            "baseline_peak_rss_mb": max(r["peak_rss_mb"] for r in runs["baseline"]),
            "check_peak_rss_mb": max(r["peak_rss_mb"] for r in runs["check"]),
            "check_small_source_peak_rss_mb": max(r["peak_rss_mb"] for r in runs["check_small"]),
            "verdict": runs["check"][0]["verdict"],
        }
        result["formats"][fmt] = entry  # type: ignore[index]
        print(
            f"{fmt:8} {args.rows} rows vs {args.source_rows}-row source: check "
            f"{check:.2f} s, baseline read {base:.2f} s, ratio {check / base:.1f}x; "
            f"peak RSS {entry['check_peak_rss_mb']:.0f} MB "
            f"(with a {args.small_source_rows}-row source: "
            f"{entry['check_small_source_peak_rss_mb']:.0f} MB; baseline "
            f"{entry['baseline_peak_rss_mb']:.0f} MB)",
            flush=True,
        )
    # The worst case for the row lookup: the source itself submitted as an output.
    dump = args.work / f"source_{args.source_rows}.parquet"
    if dump.exists():
        runs_dump = [_run_worker("check", dump, index) for _ in range(max(1, args.repeat // 2))]
        result["dump_check_seconds"] = statistics.median(r["seconds"] for r in runs_dump)
        result["dump_check_peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs_dump)
        print(
            f"dump     the {args.source_rows}-row source itself: check "
            f"{result['dump_check_seconds']:.2f} s, peak RSS "
            f"{result['dump_check_peak_rss_mb']:.0f} MB",
            flush=True,
        )
    print(
        f"index: {result['index_mb']:.0f} MB for {args.source_rows} rows, "
        f"{result['small_index_mb']:.0f} MB for {args.small_source_rows}"
    )
    small_source = args.work / f"source_{args.small_source_rows}.parquet"
    result["request"] = _request_benchmark(
        small_index, small_source, args.request_files, args.repeat
    )
    _write(result)
    return 0


def _write(result: dict[str, object]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"bench_checks-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"written to {out}")


def _request_files(source: Path, n: int) -> list[tuple[str, bytes]]:
    """``n`` small outputs a researcher would submit together, from the source."""
    import io

    import numpy as np
    import pandas as pd

    frame = pd.read_parquet(source)
    rng = np.random.default_rng(1)
    files: list[tuple[str, bytes]] = []
    groupings = ["shift", "material_grade", "defect_type", "machine_id"]
    for i in range(n):
        a, b = rng.choice(groupings, 2, replace=False)
        sub = frame.sample(frac=0.5, random_state=i)
        kind = i % 5
        if kind == 0:
            files.append((f"ct_{i}.csv", pd.crosstab(sub[a], sub[b]).to_csv().encode()))
        elif kind == 1:
            means = sub.groupby(a)[["force_kn", "temperature_c"]].mean().round(2)
            files.append(
                (f"means_{i}.json", means.reset_index().to_json(orient="records").encode())
            )
        elif kind == 2:
            counts = sub.groupby([a, b]).size().rename("n").reset_index()
            files.append((f"counts_{i}.txt", counts.to_string().encode()))
        elif kind == 3:
            buf = io.BytesIO()
            sub.groupby(a)["force_kn"].sum().round(1).reset_index().to_parquet(buf)
            files.append((f"sums_{i}.parquet", buf.getvalue()))
        else:
            text = f"Across {len(sub)} strokes the defect rate was {sub['defect'].mean():.2%}.\n"
            files.append((f"note_{i}.txt", text.encode()))
    return files


def _request_benchmark(index: Path, source: Path, n: int, repeat: int) -> dict[str, float]:
    """Per-file time of a request of ``n`` files inside one airlock process."""
    import io

    import pandas as pd
    from cleanroom.airlock.checks_adapter import DisclosureChecks

    files = _request_files(source, n)
    checks = DisclosureChecks(datasets_of=lambda project: (("press-line", "v1", str(index)),))
    checks(b"a,b\n1,2\n", "warm-up.csv", "bench")  # the context loads once per project
    timings, baselines = [], []
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        for name, data in files:
            if name.endswith(".parquet"):
                pd.read_parquet(io.BytesIO(data))
            elif name.endswith(".json"):
                pd.read_json(io.BytesIO(data))
            elif name.startswith("counts_"):
                pd.read_fwf(io.BytesIO(data))
            elif name.endswith(".csv"):
                pd.read_csv(io.BytesIO(data))
            else:
                data.decode("utf-8")
        baselines.append(time.perf_counter() - start)
        start = time.perf_counter()
        results = [(name, data, checks(data, name, "bench")) for name, data in files]
        checks.check_request(results, "bench")
        timings.append(time.perf_counter() - start)
    per_file = statistics.median(timings) / n
    base = statistics.median(baselines) / n
    verdicts = [r["verdict"] for _n, _d, r in results]
    print(
        f"request  {n} files in one airlock process: {per_file * 1000:.1f} ms per file "
        f"(pandas read {base * 1000:.1f} ms, ratio {per_file / base:.0f}x); verdicts "
        f"{ {v: verdicts.count(v) for v in sorted(set(verdicts))} }",
        flush=True,
    )
    return {
        "files": n,
        "seconds_per_file": per_file,
        "baseline_seconds_per_file": base,
        "ratio_check_to_baseline": per_file / base,
        "pass": verdicts.count("pass"),
        "review": verdicts.count("review"),
        "fail": verdicts.count("fail"),
    }


def _index_current(index: Path) -> bool:
    from cleanroom.checks.source_index import INDEX_VERSION

    try:
        return json.loads((index / "index.json").read_text())["version"] == INDEX_VERSION
    except (OSError, ValueError, KeyError):
        return False


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file()) / 1e6


if __name__ == "__main__":
    sys.exit(main())
