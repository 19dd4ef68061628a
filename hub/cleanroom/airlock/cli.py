"""``cleanroom audit verify`` and ``cleanroom audit export``: the audit log from the shell.

Exit status: 0 when the chain verifies (or the export was written), 1 when it does not,
2 on a usage or configuration error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from .app import AirlockSettings, blob_store
from .audit import verify
from .blobs import BlobStore
from .exceptions import AirlockError, Misconfigured
from .storage import SqlStorage, make_engine


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cleanroom audit", description="Verify or export the airlock's audit log."
    )
    parser.add_argument("--db", help="database URL (default: $CLEANROOM_AIRLOCK_DB_URL or state)")
    verbs = parser.add_subparsers(dest="verb", required=True)
    v = verbs.add_parser("verify", help="check every entry's hash and the chain's links")
    v.add_argument(
        "--blobs", action="store_true", help="also re-hash every stored file in the blob store"
    )
    e = verbs.add_parser("export", help="write the log as JSON lines")
    e.add_argument("--out", type=Path, help="file to write (default: standard output)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; ``argv`` may start with ``audit`` or directly with the verb."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["audit"]:
        args_list = args_list[1:]
    args = _parser().parse_args(args_list)
    settings = AirlockSettings()
    url = args.db or settings.db_url
    try:
        storage = _open_existing(url)
        if args.verb == "verify":
            result = verify(storage.audit_records(), storage.audit_head())
            blob_problems = _check_blobs(storage, blob_store(settings)) if args.blobs else []
            if result.ok and not blob_problems:
                head = storage.audit_head()
                print(
                    f"audit chain verifies: {result.count} entries, "
                    f"head {head.hash if head else '-'}"
                )
                return 0
            print(f"audit chain BROKEN ({result.count} entries checked):", file=sys.stderr)
            for problem in [*map(str, result.problems), *blob_problems]:
                print(f"  - {problem}", file=sys.stderr)
            return 1
        count = 0
        out = args.out.open("w", encoding="utf-8") if args.out else sys.stdout
        try:
            for rec in storage.audit_records():
                out.write(rec.to_json() + "\n")
                count += 1
        finally:
            if args.out:
                out.close()
        if args.out:
            print(f"wrote {count} entries to {args.out}", file=sys.stderr)
        return 0
    except AirlockError as exc:
        print(f"cleanroom audit: {exc}", file=sys.stderr)
        return 2


def _open_existing(url: str) -> SqlStorage:
    """Storage on an existing airlock database, read as it is: never created, never migrated.

    Verifying must not change what it verifies, nor report an empty new database as intact.
    """
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        raise Misconfigured(f"no airlock database at {url}")
    storage = SqlStorage(make_engine(url))
    try:
        storage.audit_head()
    except SQLAlchemyError as exc:
        raise Misconfigured(f"{url} is not an airlock database: {exc.__class__.__name__}") from exc
    return storage


def _check_blobs(storage: SqlStorage, blobs: BlobStore) -> list[str]:
    """Re-hash every file any request refers to."""
    problems = []
    for request in storage.list_requests():
        for f in request.files:
            try:
                blobs.get(f.sha256, request.project)
            except AirlockError as exc:
                problems.append(f"request {request.id} file {f.path}: {exc}")
    return problems


if __name__ == "__main__":
    sys.exit(main())
