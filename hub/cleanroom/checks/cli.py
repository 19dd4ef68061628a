"""``cleanroom check FILE [FILE...]``: the disclosure checks from the command line.

Exit codes: 0 every file passes, 1 the worst is review, 2 the worst is fail, 3 bad
input (a missing file, a bad policy or index), with a message on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cleanroom.checks.policy import PolicyError
from cleanroom.checks.runner import check_file, load_context
from cleanroom.checks.types import CheckInputError, CheckReport, Verdict

EXIT_BAD_INPUT = 3


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for ``cleanroom check``."""
    parser = argparse.ArgumentParser(
        prog="cleanroom check",
        description="Run the airlock's automatic disclosure checks on files.",
        epilog="Exit code: 0 pass, 1 review, 2 fail, 3 bad input.",
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="files to check")
    parser.add_argument(
        "--project",
        metavar="P",
        help="the project whose datasets the outputs come from (its indexes are passed "
        "as --index by the `cleanroom` command)",
    )
    parser.add_argument(
        "--index",
        action="append",
        default=[],
        type=Path,
        metavar="DIR",
        help="a source index folder (repeatable), from build_source_index",
    )
    parser.add_argument(
        "--dataset",
        action="append",
        default=[],
        metavar="NAME",
        help="a dataset whose stricter policy overrides apply (repeatable)",
    )
    parser.add_argument(
        "--policy", type=Path, metavar="FILE", help="a disclosure policy file (default: policies/)"
    )
    parser.add_argument("--json", action="store_true", help="print the reports as JSON")
    return parser


def _print_report(report: CheckReport) -> None:
    print(f"{report.verdict.value.upper():6} {report.filename} ({report.detected_type})")
    for f in sorted(report.findings, key=lambda f: -f.verdict.rank):
        where = f" [{f.location}]" if f.location else ""
        print(f"  {f.verdict.value:6} {f.rule}{where}: {f.message}")


def main(argv: list[str] | None = None) -> int:
    """Run ``check`` with ``argv`` (a leading ``check`` word is accepted and dropped)."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    if args_in[:1] == ["check"]:
        args_in = args_in[1:]
    parser = build_parser()
    try:
        args = parser.parse_args(args_in)
    except SystemExit as exc:  # argparse exits 2 on bad usage; ours is 3
        return 0 if exc.code == 0 else EXIT_BAD_INPUT
    try:
        context = load_context(args.index, args.dataset, args.policy)
        for file in args.files:
            if not file.is_file():
                raise CheckInputError(f"{file}: no such file")
    except (PolicyError, CheckInputError) as exc:
        print(f"cleanroom check: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    reports = [check_file(f, context) for f in args.files]
    if args.json:
        out = {
            "project": args.project,
            "datasets": args.dataset,
            "verdict": max(r.verdict for r in reports).value,
            "reports": [r.to_dict() for r in reports],
        }
        print(json.dumps(out, indent=2))
    else:
        for report in reports:
            _print_report(report)
    worst = max((r.verdict for r in reports), default=Verdict.PASS)
    return worst.rank


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
