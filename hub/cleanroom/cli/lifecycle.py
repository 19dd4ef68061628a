"""The lifecycle verbs of the ``cleanroom`` command: ``backup`` and ``teardown``.

They parse their own arguments and never open the registry first: a restore must find
its target state folder empty, and a teardown must work when the registry is gone.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cleanroom.errors import CleanroomError


class _Progress:
    """One line on stderr, rewritten as a long copy goes."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.last = 0.0

    def __call__(self, done: int, total: int, name: str) -> None:
        now = time.monotonic()
        if self.quiet or (now - self.last < 0.5 and done < total):
            return
        self.last = now
        percent = 100 if total == 0 else done * 100 // total
        end = "\n" if done >= total else ""
        print(
            f"\r  {percent:3d}%  {done / 2**20:9.1f} / {total / 2**20:.1f} MiB  {name[-50:]:<50}",
            end=end,
            file=sys.stderr,
            flush=True,
        )


def _warn_if_key_beside_state(state: Path) -> None:
    """A backup restores only with the master key: say so when the key would be lost with
    the machine (the default key file lies in the state folder)."""
    from cleanroom.lifecycle.keys import KeySource

    source = KeySource.from_env()
    if source.command is None and state in source.file.resolve().parents:
        print(
            f"cleanroom: warning: the master key ({source.file}) lies in the state folder: "
            "keep a copy elsewhere (or set CLEANROOM_KEY_COMMAND), a backup cannot be "
            "restored without it",
            file=sys.stderr,
        )


def _backup_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cleanroom backup",
        description="Encrypted, incremental, checksummed backups of the whole deployment "
        "(docs/lifecycle.md).",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--repository",
        type=Path,
        help="the backup repository (default $CLEANROOM_BACKUP_DIR or backups/ beside state/)",
    )
    common.add_argument("--json", action="store_true", help="machine-readable output")
    common.add_argument("--quiet", action="store_true", help="no progress on stderr")
    verbs = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = verbs.add_parser(
        "create", help="back up the state folder and the databases", parents=[common]
    )
    p.add_argument("--state", type=Path, help="default: $CLEANROOM_STATE_DIR or state/")
    verbs.add_parser("list", help="list the backups in the repository", parents=[common])
    p = verbs.add_parser(
        "verify", help="re-read backups: every chunk opened and re-hashed", parents=[common]
    )
    p.add_argument("id", nargs="?", help="one backup (default: all)")
    p = verbs.add_parser(
        "restore", help="restore a backup into an empty state folder", parents=[common]
    )
    p.add_argument("id")
    p.add_argument("--into", type=Path, help="default: $CLEANROOM_STATE_DIR or state/")
    return parser


def backup_main(argv: Sequence[str]) -> int:
    """``cleanroom backup ...``"""
    from cleanroom.lifecycle import backup

    args = _backup_parser().parse_args(argv)
    progress = _Progress(args.quiet)
    out: Any
    try:
        if args.action == "create":
            snap, written = backup.create(args.state, args.repository, progress=progress)
            _warn_if_key_beside_state(Path(snap.state))
            out = {"id": snap.id, "size": snap.size, "written": written}
            text = (
                f"backup {snap.id}: {snap.size / 2**20:.1f} MiB of state, "
                f"{written / 2**20:.1f} MiB new in the repository"
            )
        elif args.action == "list":
            repo = backup.Repository(args.repository or backup.default_repository())
            snaps = repo.snapshots()
            out = [
                {"id": s.id, "created": s.created, "size": s.size, "state": s.state} for s in snaps
            ]
            text = (
                "\n".join(
                    f"{s.id}\t{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(s.created))}Z"
                    f"\t{s.size / 2**20:.1f} MiB\t{s.state}"
                    for s in snaps
                )
                or "no backups"
            )
        elif args.action == "verify":
            problems = backup.verify(args.repository, args.id, progress=progress)
            out = {"ok": not problems, "problems": problems}
            text = "\n".join(problems) if problems else "every backup checked: intact"
            if problems:
                print(json.dumps(out) if args.json else text)
                return 1
        else:
            snap = backup.restore(args.id, args.into, args.repository, progress=progress)
            out = {"id": snap.id, "size": snap.size}
            text = f"restored {snap.id} ({snap.size / 2**20:.1f} MiB)"
    except CleanroomError as exc:
        print(f"cleanroom: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(out) if args.json else text)
    return 0


def teardown_main(argv: Sequence[str]) -> int:
    """``cleanroom teardown``: remove what the deployment made on this host."""
    from cleanroom.lifecycle.closure import teardown
    from cleanroom.settings import Settings

    parser = argparse.ArgumentParser(
        prog="cleanroom teardown",
        description="Remove everything this deployment made on the host (containers, "
        "volumes, networks, firewall chain, loop devices; images with --images) and report "
        "what is left. The state folder, backups and keys are data: never removed here.",
    )
    parser.add_argument("--images", action="store_true", help="also remove the images")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
    try:
        report = teardown(Settings.from_env().instance, images=args.images)
    except CleanroomError as exc:
        print(f"cleanroom: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"removed": report.removed, "left": report.left}))
        return 0
    for kind, names in sorted(report.removed.items()):
        print(f"removed {len(names)} {kind}: {', '.join(names)}")
    if not report.removed:
        print("nothing of this deployment was left to remove")
    for line in report.left:
        print(f"left: {line}")
    return 0


# -- verbs inside the main parser (they use the registry) -------------------------------
def projects_close(args: argparse.Namespace, reg: Any) -> None:
    """``cleanroom projects close NAME``"""
    from cleanroom.cli.identity import actor
    from cleanroom.cli.output import emit
    from cleanroom.lifecycle.closure import close_project
    from cleanroom.lifecycle.retention import deployment_stores
    from cleanroom.settings import Settings

    decider = actor(args, reg)  # the signed-in operator's decision, never a typed name
    stores = deployment_stores()
    report = close_project(
        reg, args.name, actor=decider, instance=Settings.from_env().instance,
        blobs=stores.blobs, airlock=stores.airlock, keyring=stores.keyring,
    )  # fmt: skip
    emit(args, report.__dict__, report.describe())


def retention_plan(args: argparse.Namespace, reg: Any) -> None:
    """``cleanroom retention plan``: when each kind of each ended project is deleted."""
    from datetime import UTC, datetime

    from cleanroom.cli.output import emit_rows
    from cleanroom.lifecycle import retention
    from cleanroom.registry.governance import Governance

    policy = retention.load_policy()
    now = datetime.now(UTC)
    closures = retention.closure_times(Governance(reg))
    rows = []
    for project in reg.list_projects():
        ended = retention.ended_at(project, closures, now.date())
        if ended is None:
            continue
        for kind in retention.KINDS:
            period = policy.periods[kind]
            rows.append(
                {
                    "project": project.name,
                    "kind": kind,
                    "ended": ended.isoformat(),
                    "delete_at": (ended + period).isoformat() if period is not None else None,
                    "due": policy.due(kind, ended, now),
                }
            )
    emit_rows(
        args,
        rows,
        lambda r: (
            f"{r['project']}\t{r['kind']}\t{r['delete_at'] or 'kept forever'}"
            + ("\tdue" if r["due"] else "")
        ),
    )


def retention_run(args: argparse.Namespace, reg: Any) -> None:
    """``cleanroom retention run``: one retention round now."""
    from cleanroom.cli.output import emit
    from cleanroom.lifecycle.retention import enforce_deployment
    from cleanroom.settings import Settings

    done = enforce_deployment(reg, Settings.from_env().instance)
    emit(
        args,
        [d.__dict__ for d in done],
        "\n".join(f"deleted {d.kind} of {d.project} ({d.items})" for d in done) or "nothing is due",
    )


def datasets_delete(args: argparse.Namespace, reg: Any) -> None:
    """``cleanroom datasets delete NAME --version V`` (as the signed-in person)"""
    from cleanroom.cli.identity import actor
    from cleanroom.cli.output import emit
    from cleanroom.lifecycle.datasets import request_deletion

    pending = request_deletion(reg, args.name, args.version, actor=actor(args, reg))
    if pending.waiting_for:
        text = f"{args.name} {args.version} will be deleted once these projects end: " + ", ".join(
            pending.waiting_for
        )
    else:
        text = f"{args.name} {args.version} deleted from the library, its index and every project"
    emit(args, pending.__dict__, text)


def datasets_encrypt(args: argparse.Namespace, reg: Any) -> int:
    """``cleanroom datasets encrypt [--check]``: move what is still in clear at rest in."""
    from cleanroom.cli.output import emit
    from cleanroom.lifecycle.at_rest_status import clear_at_rest, encrypt_all
    from cleanroom.settings import Settings

    if not args.check:
        moved = encrypt_all(
            reg, instance=Settings.from_env().instance, progress=_Progress(args.json)
        )
        for m in moved:
            state = "encrypted" if m.done else f"not moved ({m.note})"
            print(f"{m.kind} {m.what}: {state}", file=sys.stderr)
    left = clear_at_rest(reg)
    emit(
        args,
        [item.__dict__ for item in left],
        "\n".join(f"in clear: {i.kind}: {i.path} (fix: {i.fix})" for i in left)
        or "nothing of this deployment lies in clear at rest",
    )
    return 1 if args.check and left else 0


def add_verbs(verbs: Any, projects: Any, datasets: Any, verb: Any) -> None:
    """Add ``projects close``, ``datasets delete|encrypt`` and ``retention plan|run``."""
    from cleanroom.cli.identity import add_credential

    p = verb(
        datasets,
        "encrypt",
        "move clear dataset versions and incoming folders into encrypted filesystems",
        datasets_encrypt,
    )
    p.add_argument(
        "--check", action="store_true",
        help="only list what still lies in clear (exit 1 if anything does)",
    )  # fmt: skip
    p = verb(
        datasets,
        "delete",
        "delete a dataset version (its provider or an operator), once no open project uses it",
        datasets_delete,
    )
    p.add_argument("name")
    p.add_argument("--version", required=True)
    add_credential(p)  # the signed-in provider's account or operator
    p = verb(
        projects,
        "close",
        "close a project: stop, archive, release its folders and network, apply retention",
        projects_close,
    )
    p.add_argument("name")
    add_credential(p)  # the signed-in operator
    ret = verb(verbs, "retention", "what of ended projects is deleted when (policy)")
    ret = ret.add_subparsers(dest="action", required=True, metavar="ACTION")
    verb(ret, "plan", "when each kind of each ended project's data is deleted", retention_plan)
    verb(ret, "run", "apply the retention policy now (the enforcer does it every round)",
         retention_run)  # fmt: skip
