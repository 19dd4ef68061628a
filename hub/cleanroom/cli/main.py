"""The ``cleanroom`` command: operators' verbs over the registry, library and hub.

Every verb has ``--help``; bad input prints one clear line on stderr, changes nothing,
and exits non-zero. ``--json`` gives machine-readable output for scripts.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from cleanroom.cli import commands as ops
from cleanroom.cli import library as library_verbs
from cleanroom.cli.egress import add_egress_verbs
from cleanroom.cli.identity import add_credential, add_identity_verbs, bootstrap_decider
from cleanroom.cli.output import emit, emit_rows
from cleanroom.errors import CleanroomError, InvalidInput, NotFound
from cleanroom.registry import Registry
from cleanroom.registry.events import FirewallChanged, TokenIssued
from cleanroom.registry.governance import Governance

Handler = Callable[[argparse.Namespace, Registry], Any]


_out = emit


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from exc


class _Progress:
    """A one-line progress bar on stderr for long copies."""

    def __init__(self) -> None:
        self.last = -1

    def __call__(self, done: int, total: int, name: str) -> None:
        percent = 100 if total == 0 else done * 100 // total
        if percent != self.last:
            self.last = percent
            end = "\n" if done >= total else ""
            print(
                f"\r  {percent:3d}%  {done / 2**20:8.1f} / {total / 2**20:.1f} MiB  {name}",
                end=end,
                file=sys.stderr,
                flush=True,
            )


# -- users -----------------------------------------------------------------------------
def users_add(args: argparse.Namespace, reg: Registry) -> None:
    password = os.environ.get(args.password_env) if args.password_env else None
    if args.password_env and not password:
        raise InvalidInput(f"environment variable {args.password_env} is empty or unset")
    user = Governance(reg).add_user(
        args.name, args.role or ["researcher"], password, actor=ops.actor_of(args)
    )
    _out(args, user, f"added user {user.name} ({', '.join(sorted(user.roles))})")


def users_list(args: argparse.Namespace, reg: Registry) -> None:
    users = reg.list_users()
    emit_rows(args, users, lambda u: f"{u.name}\t{','.join(sorted(u.roles))}")


def users_roles(args: argparse.Namespace, reg: Registry) -> None:
    # Granting a role is a decision: the signed-in operator's (host only at bootstrap).
    decider = bootstrap_decider(args, reg, "change people's roles")
    user = Governance(reg).set_roles(args.name, args.role, actor=decider)
    _out(args, user, f"{user.name} now has the roles {', '.join(sorted(user.roles))}")


def users_passwd(args: argparse.Namespace, reg: Registry) -> None:
    password = os.environ.get(args.password_env, "")
    if not password:
        raise InvalidInput(f"environment variable {args.password_env} is empty or unset")
    Governance(reg).set_password(args.name, password, actor=ops.actor_of(args))
    _out(args, {"user": args.name}, f"password of {args.name} changed")


# -- projects --------------------------------------------------------------------------
def projects_create(args: argparse.Namespace, reg: Registry) -> None:
    Governance(reg).create_project(
        args.name,
        args.title,
        images=tuple(args.image or ["notebook"]),
        quota_tier=args.tier,
        ends_on=args.ends,
        actor=ops.actor_of(args),
    )
    project = reg.get_project(args.name)
    _out(args, project, f"created project {project.name}")


def projects_list(args: argparse.Namespace, reg: Registry) -> None:
    projects = reg.list_projects()
    emit_rows(
        args,
        projects,
        lambda p: (
            f"{p.name}\t{p.status}\t{len(p.members)} members\t"
            f"{','.join(d.name for d in p.datasets) or '-'}\t{p.title}"
        ),
    )


def projects_show(args: argparse.Namespace, reg: Registry) -> None:
    p = reg.get_project(args.name)
    _out(
        args,
        p,
        "\n".join(
            [
                f"project:  {p.name} ({p.status})",
                f"title:    {p.title}",
                f"tier:     {p.quota_tier}",
                f"mode:     {p.access_mode}",
                f"ends on:  {p.ends_on or '-'}",
                f"members:  {', '.join(p.members) or '-'}",
                f"images:   {', '.join(p.images)}",
                f"datasets: {', '.join(f'{d.name}@{d.version}' for d in p.datasets) or '-'}",
            ]
        ),
    )


def projects_status(args: argparse.Namespace, reg: Registry) -> None:
    # Approving, suspending or closing is a decision: the signed-in operator's.
    decider = bootstrap_decider(args, reg, "change a project's status")
    Governance(reg).set_project_status(args.name, args.status, actor=decider)
    p = reg.get_project(args.name)
    _out(args, p, f"project {p.name} is {p.status}")


def projects_allow_image(args: argparse.Namespace, reg: Registry) -> None:
    # The same act as ``images allow --project``: refused while the image is retired.
    # A decision (as `images allow --project`): the authenticated operator's, never --by.
    Governance(reg).allow_project_image(args.project, args.image, actor=ops.decider_of(args))
    _out(args, reg.get_project(args.project), f"{args.project} may run {args.image}")


# -- members ---------------------------------------------------------------------------
def members_add(args: argparse.Namespace, reg: Registry) -> None:
    Governance(reg).add_member(args.project, args.user, actor=ops.actor_of(args), ends_on=args.ends)
    _out(
        args,
        {"project": args.project, "user": args.user},
        f"{args.user} is now a member of {args.project}",
    )


def members_remove(args: argparse.Namespace, reg: Registry) -> None:
    Governance(reg).remove_member(args.project, args.user, actor=ops.actor_of(args))
    stopped = _stop_workspace(args.user, args.project)
    _out(
        args,
        {"project": args.project, "user": args.user, "workspace_stopped": stopped},
        f"{args.user} removed from {args.project}"
        + ("; their running workspace was stopped" if stopped else ""),
    )


def _stop_workspace(user: str, project: str) -> bool:
    """Stop a removed member's workspace (the act the console's stop shares)."""
    from cleanroom.workspace.stopping import stop_workspace

    return stop_workspace(user, project)


def members_list(args: argparse.Namespace, reg: Registry) -> None:
    p = reg.get_project(args.project)
    emit_rows(args, list(p.members), str)


# -- datasets --------------------------------------------------------------------------
def datasets_register(args: argparse.Namespace, reg: Registry) -> None:
    from cleanroom.library.register import register_dataset

    print(f"registering {args.path} as {args.name} {args.version}", file=sys.stderr)
    info = register_dataset(
        reg,
        Path(args.path),
        name=args.name,
        version=args.version,
        provider=args.provider,
        actor=ops.actor_of(args),
        progress=_Progress(),
        **library_verbs.register_options(args),
    )
    _out(
        args,
        info,
        f"registered {info.name} {info.version}: {len(info.files)} files, "
        f"{info.total_bytes} bytes, in {info.location}",
    )


def datasets_list(args: argparse.Namespace, reg: Registry) -> None:
    found = reg.list_datasets()
    emit_rows(
        args,
        found,
        lambda d: (
            f"{d.name}\t{d.version}\t{d.provider}\t{len(d.files)} files\t{d.total_bytes} bytes"
        ),
    )


def datasets_reindex(args: argparse.Namespace, reg: Registry) -> None:
    from cleanroom.library.register import index_is_current, reindex_dataset

    targets = [
        d
        for d in reg.list_datasets()
        if (args.name in (None, d.name)) and (args.version in (None, d.version))
    ]
    if args.name and not targets:
        raise NotFound(f"there is no dataset {args.name} {args.version or ''}".strip())
    done = []
    for d in targets:
        if args.stale and index_is_current(d.index_location):
            continue
        print(f"rebuilding the index of {d.name} {d.version}", file=sys.stderr)
        done.append(reindex_dataset(reg, d.name, d.version, actor=ops.actor_of(args)))
    _out(args, done, f"rebuilt {len(done)} index(es)")


def datasets_attach(args: argparse.Namespace, reg: Registry) -> None:
    Governance(reg).attach_dataset(
        args.project, args.dataset, args.version, actor=ops.actor_of(args)
    )
    _out(
        args,
        reg.get_project(args.project),
        f"{args.project} now mounts {args.dataset} at /data/{args.dataset}",
    )


# -- hub, firewall, demo ---------------------------------------------------------------
def token(args: argparse.Namespace, reg: Registry) -> None:
    from cleanroom.hub.api import HubAPI

    reg.get_user(args.user)
    value = HubAPI().new_token(args.user, args.note, args.expires_in)
    actor = ops.actor_of(args)
    Governance(reg).record(
        TokenIssued(actor=actor, user=args.user, note=args.note, expires_in=args.expires_in),
        actor=actor,
    )
    _out(args, {"user": args.user, "token": value}, value)


def firewall(args: argparse.Namespace, reg: Registry) -> None:
    from cleanroom.gateway.hub_config import host_firewall
    from cleanroom.settings import Settings

    settings = Settings.from_env()
    fw = host_firewall(settings)
    if args.action in ("install", "remove"):
        if args.action == "install":
            fw.install()
        else:
            fw.remove()
        actor = ops.actor_of(args)
        Governance(reg).record(
            FirewallChanged(actor=actor, instance=settings.instance, action=args.action),
            actor=actor,
        )
    installed = fw.is_installed()
    _out(args, {"installed": installed}, "installed" if installed else "not installed")


def demo(args: argparse.Namespace, reg: Registry) -> None:
    from cleanroom.demo.seed import current_codes, seed_demo

    if args.codes:
        codes = current_codes()
        emit_rows(args, sorted(codes.items()), lambda item: f"{item[0]}\t{item[1]}")
        return
    result = seed_demo(reg, rows=args.rows, actor=ops.actor_of(args))
    _out(args, result, result.describe())


# -- parser ----------------------------------------------------------------------------
WRITES: tuple[Handler, ...] = (
    users_add,
    users_passwd,
    users_roles,
    projects_create,
    projects_status,
    members_add,
    members_remove,
    datasets_register,
    datasets_reindex,
    datasets_attach,
    token,
    firewall,
    demo,
)
"""Handlers of the host administration verbs here. None takes a typed actor: each is
recorded as the signed-in operator when it carries a credential, else as the host
account running it (:func:`cleanroom.cli.identity.admin_actor`). Decisions (``users
roles``, ``projects status``, ``projects allow-image`` here, the governance verbs in
:mod:`cleanroom.cli.commands`) are the signed-in person's whose role is checked."""


def build_parser() -> argparse.ArgumentParser:
    """The command's argument parser (every verb documented)."""
    parser = argparse.ArgumentParser(
        prog="cleanroom",
        description="Operate the clean room: projects, members, datasets, "
        "users, tokens, checks, images and the audit log.",
    )
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    def verb(parent: Any, name: str, help_text: str, handler: Handler | None = None) -> Any:
        sub = parent.add_parser(name, help=help_text, description=help_text)
        sub.add_argument(
            "--json",
            action="store_true",
            default=argparse.SUPPRESS,
            help="print machine-readable JSON",
        )
        if handler:
            sub.set_defaults(handler=handler)
            if handler in WRITES:
                # Recorded as the signed-in operator, else the host account: no --by.
                add_credential(sub)
        return sub

    users = verb(verbs, "users", "manage people who can log in").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    p = verb(users, "add", "add a user", users_add)
    p.add_argument("name")
    p.add_argument(
        "--role",
        action="append",
        help="researcher, officer, operator or provider (repeat for several; default researcher)",
    )
    p.add_argument("--password-env", metavar="VAR", help="read the password from this variable")
    verb(users, "list", "list users", users_list)
    p = verb(users, "roles", "replace a user's roles (effective at their next log-in)", users_roles)
    p.add_argument("name")
    p.add_argument(
        "--role", action="append", required=True, help="researcher, officer, operator or provider"
    )
    p = verb(users, "passwd", "set a user's password", users_passwd)
    p.add_argument("name")
    p.add_argument("--password-env", metavar="VAR", required=True)

    projects = verb(verbs, "projects", "manage projects").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    p = verb(projects, "create", "create an approved project", projects_create)
    p.add_argument("name")
    p.add_argument("--title", required=True)
    p.add_argument("--image", action="append", help="allowed image (repeat; default notebook)")
    p.add_argument("--tier", default="standard", help="quota tier from policies/quotas.yaml")
    p.add_argument("--ends", type=_date, help="end date, YYYY-MM-DD")
    verb(projects, "list", "list projects", projects_list)
    p = verb(projects, "show", "show one project", projects_show)
    p.add_argument("name")
    p = verb(projects, "status", "approve, suspend or close a project", projects_status)
    p.add_argument("name")
    p.add_argument("status", choices=["approved", "suspended", "closed"])
    p = verb(projects, "allow-image", "let a project run an image", projects_allow_image)
    p.add_argument("project")
    p.add_argument("image")
    add_credential(p)

    members = verb(verbs, "members", "manage project members").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    p = verb(members, "add", "add a member to a project", members_add)
    p.add_argument("project")
    p.add_argument("user")
    p.add_argument("--ends", type=_date, help="membership end date, YYYY-MM-DD")
    p = verb(members, "remove", "remove a member (stops their workspace)", members_remove)
    p.add_argument("project")
    p.add_argument("user")
    p = verb(members, "list", "list a project's members", members_list)
    p.add_argument("project")
    ops.add_end_verbs(projects, members, verb)
    ops.add_mode_verb(projects, verb)

    datasets = verb(verbs, "datasets", "manage the data library").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    p = verb(
        datasets, "register", "copy, checksum and register a dataset version", datasets_register
    )
    p.add_argument("path", help="a file or a folder of files")
    p.add_argument("--name", required=True)
    p.add_argument("--version", required=True)
    p.add_argument("--provider", required=True)
    library_verbs.add_register_options(p)
    verb(datasets, "list", "list dataset versions", datasets_list)
    p = verb(
        datasets,
        "reindex",
        "rebuild disclosure-check indexes (after an upgrade of the checks)",
        datasets_reindex,
    )
    p.add_argument("name", nargs="?", help="one dataset (default: all)")
    p.add_argument("--version", help="one version (default: all)")
    p.add_argument("--stale", action="store_true", help="only indexes that no longer load")
    p = verb(datasets, "attach", "let a project mount a dataset", datasets_attach)
    p.add_argument("project")
    p.add_argument("dataset")
    p.add_argument("--version", help="default: the newest version")
    ops.add_dataset_verbs(datasets, verb)
    library_verbs.add_library_verbs(datasets, verb)

    p = verb(verbs, "token", "issue an API token for a user (operators only)", token)
    p.add_argument("user")
    p.add_argument("--note", default="issued by cleanroom token")
    p.add_argument("--expires-in", type=int, metavar="SECONDS")

    p = verb(verbs, "firewall", "install, remove or show the host firewall", firewall)
    p.add_argument("action", choices=["install", "remove", "status"])

    p = verb(verbs, "demo", "seed demo users, projects and the press-line dataset", demo)
    p.add_argument("--rows", type=int, default=300_000)
    p.add_argument(
        "--codes", action="store_true", help="print each demo person's current TOTP code"
    )

    ops.add_verbs(verbs, verb)
    from cleanroom.cli import lifecycle

    lifecycle.add_verbs(verbs, projects, datasets, verb)
    add_egress_verbs(verbs, verb)
    add_identity_verbs(verbs, verb)

    for name, help_text in [
        ("backup", "create, list, verify or restore backups (see cleanroom backup --help)"),
        ("teardown", "remove what the deployment made on this host (cleanroom teardown --help)"),
        ("check", "run the disclosure checks on files (see cleanroom check --help)"),
        ("audit", "verify or export the airlock's audit log (see cleanroom audit --help)"),
        (
            "images",
            "build, list, allow or retire workspace images (cleanroom images allow|retire "
            "--help; cleanroom images --help for the rest)",
        ),
    ]:
        # Their own parsers own --help, so it passes through.
        sub = verbs.add_parser(name, help=help_text, description=help_text, add_help=False)
        sub.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


DELEGATED = ("check", "audit", "images", "backup", "teardown")


def _delegate(verb: str, rest: list[str]) -> int:
    """Verbs implemented by their own packages, which own their argument parsing."""
    if verb == "check":
        from cleanroom.checks.cli import main as check_main

        return int(check_main(_with_project_indexes(rest)))
    if verb == "audit":
        from cleanroom.airlock.cli import main as audit_main

        return int(audit_main(rest))
    if verb in ("backup", "teardown"):
        from cleanroom.cli import lifecycle

        return lifecycle.backup_main(rest) if verb == "backup" else lifecycle.teardown_main(rest)
    ours = ops.images_main(rest)
    if ours is not None:
        return ours
    from cleanroom.images.build import main as images_main

    return int(images_main(rest))


def _with_project_indexes(rest: list[str]) -> list[str]:
    """Turn ``--project P`` into the index folders and dataset names of P's datasets."""
    if "--project" not in rest:
        return rest
    at = rest.index("--project")
    if at + 1 >= len(rest):
        raise InvalidInput("--project needs a project name")
    project = Registry().get_project(rest[at + 1])
    extra: list[str] = []
    for ds in project.datasets:
        extra += ["--dataset", ds.name]
        if ds.index_location:
            extra += ["--index", ds.index_location]
    # --project stays: the check command reports it (``--json`` prints it).
    return rest + extra


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cleanroom`` command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        # Delegated verbs parse their own arguments (argparse would swallow their --help).
        if argv and argv[0] in DELEGATED:
            return _delegate(argv[0], argv[1:])
        args = parser.parse_args(argv)
        registry = Registry()
        args.registry = registry
        code = args.handler(args, registry)
        if isinstance(code, int):  # a verb that reports by its exit status (a check)
            return code
    except CleanroomError as exc:
        print(f"cleanroom: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cleanroom: interrupted; nothing was half-written", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
