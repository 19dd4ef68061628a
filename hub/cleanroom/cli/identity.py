"""Who acts on the command line, and the verbs about people.

Decisions (approvals, grants, ingress) are recorded as the person whose personal
credential the command carries, never a name typed after ``--by``: ``cleanroom login``
checks password and second factor exactly as the web log-in does (same throttle) and
saves a 12-hour token; ``--token`` or ``$CLEANROOM_TOKEN`` pass one explicitly.
"""

from __future__ import annotations

import argparse
import getpass
import os
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from cleanroom.cli.output import emit
from cleanroom.errors import InvalidInput
from cleanroom.registry import Registry
from cleanroom.registry.people import People, shared_people

_out = emit


def token_file() -> Path:
    """Where ``cleanroom login`` keeps the token: ``$CLEANROOM_TOKEN_FILE`` or
    ``~/.config/cleanroom/token`` (mode 0600)."""
    env = os.environ.get("CLEANROOM_TOKEN_FILE")
    return Path(env) if env else Path.home() / ".config" / "cleanroom" / "token"


def credential(args: argparse.Namespace) -> str:
    """The personal token of this command: ``--token``, ``$CLEANROOM_TOKEN``, the saved one."""
    value = getattr(args, "token", None) or os.environ.get("CLEANROOM_TOKEN")
    if not value and token_file().is_file():
        value = token_file().read_text().strip()
    if not value:
        raise InvalidInput(
            "this act is recorded by name: run `cleanroom login` first "
            "(or pass --token / set CLEANROOM_TOKEN)"
        )
    return value


def actor(args: argparse.Namespace, reg: Registry) -> str:
    """The authenticated person doing this command's act."""
    return shared_people(reg).actor_of_token(credential(args))


def carries_credential(args: argparse.Namespace) -> bool:
    """Whether this command carries a personal credential (``--token``,
    ``$CLEANROOM_TOKEN`` or the one ``cleanroom login`` saved)."""
    return bool(
        getattr(args, "token", None) or os.environ.get("CLEANROOM_TOKEN") or token_file().is_file()
    )


def host_actor() -> str:
    """``host:<account>``: the host account running this command, from its real user id
    (under sudo, the account that ran sudo), never a name typed on the command line or
    put in the environment by its caller."""
    import pwd

    name = pwd.getpwuid(os.getuid()).pw_name
    if os.getuid() == 0 and os.environ.get("SUDO_USER"):
        name = os.environ["SUDO_USER"]  # set by sudo itself; root could name anyone anyway
    return "host:" + name


def lifecycle_actor(args: argparse.Namespace, reg: Registry) -> str:
    """The actor of a verb about people: the authenticated person, or, while no operator
    is in standing (a new deployment), the host account (the bootstrap)."""
    people = shared_people(reg)
    if carries_credential(args):
        return people.actor_of_token(credential(args))
    if not people.any_operator_in_standing():
        return host_actor()
    raise InvalidInput("an operator in standing acts on people's records: run `cleanroom login`")


def admin_actor(args: argparse.Namespace, reg: Registry) -> str:
    """Who does a host administration verb (accounts, projects, members, datasets,
    tokens, the firewall, the demo): the signed-in person, who must be an operator in
    standing, when the command carries a credential; else the host account running it
    (:func:`host_actor`). Never a typed name."""
    if carries_credential(args):
        person = actor(args, reg)
        shared_people(reg).check_may_act(person, "operator", what="administer the clean room")
        return person
    return host_actor()


def bootstrap_decider(args: argparse.Namespace, reg: Registry, what: str) -> str:
    """Who takes a decision the deployment also needs before anyone can decide (people's
    roles, a project's status): an operator in standing, signed in; while no operator is
    in standing yet (a new deployment), the host account, as for people's records."""
    people = shared_people(reg)
    if carries_credential(args) or people.any_operator_in_standing():
        person = actor(args, reg)  # without a credential: "run cleanroom login"
        people.check_may_act(person, "operator", what=what)
        return person
    return host_actor()


def add_credential(p: Any) -> None:
    """The ``--token`` option of every verb that acts as a person."""
    p.add_argument(
        "--token",
        metavar="TOKEN",
        help="your personal credential (default: $CLEANROOM_TOKEN, then the one "
        "`cleanroom login` saved)",
    )


# -- login / logout ---------------------------------------------------------------------
def login(args: argparse.Namespace, reg: Registry) -> None:
    password = os.environ.get(args.password_env, "") if args.password_env else ""
    if args.password_env and not password:
        raise InvalidInput(f"environment variable {args.password_env} is empty or unset")
    password = password or getpass.getpass(f"password of {args.name}: ")
    code = args.code or input("code from your authenticator app (or a recovery code): ")
    value = shared_people(reg).open_cli_session(args.name, password, code)
    if args.print_token:
        _out(args, {"user": args.name, "token": value}, value)
        return
    path = token_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value)
    _out(args, {"user": args.name, "token_file": str(path)}, f"logged in as {args.name} ({path})")


def logout(args: argparse.Namespace, reg: Registry) -> None:
    path = token_file()
    if path.is_file():
        shared_people(reg).close_cli_session(path.read_text())
        path.unlink()
    _out(args, {"logged_out": True}, "logged out")


def whoami(args: argparse.Namespace, reg: Registry) -> None:
    name = actor(args, reg)
    _out(args, {"user": name}, name)


# -- people -----------------------------------------------------------------------------
def _people(reg: Registry) -> People:
    return shared_people(reg)


def people_show(args: argparse.Namespace, reg: Registry) -> None:
    people = _people(reg)
    st = people.standing(args.name)
    lines = [
        f"person:     {st.user} ({', '.join(sorted(st.roles))})",
        f"mfa:        {'enrolled' if st.mfa else 'not enrolled'}"
        + (f", {people.recovery_codes_left(args.name)} recovery codes left" if st.mfa else ""),
        f"verified:   {'yes' if st.verified else 'no'}",
        f"locked:     {'yes' if people.is_locked(args.name) else 'no'}",
        "standing:   " + ("in standing" if st.ok else " ".join(st.problems)),
    ]
    _out(args, st, "\n".join(lines))


def people_verify(args: argparse.Namespace, reg: Registry) -> None:
    _people(reg).record_verification(
        args.name, args.method, actor=lifecycle_actor(args, reg), reference=args.reference or ""
    )
    _out(args, {"user": args.name, "method": args.method}, f"{args.name} verified ({args.method})")


def people_train(args: argparse.Namespace, reg: Registry) -> None:
    _people(reg).record_training(
        args.name,
        args.course,
        passed_on=args.passed or date.today(),
        expires_on=args.expires,
        actor=lifecycle_actor(args, reg),
    )
    _out(args, {"user": args.name, "course": args.course}, f"{args.name} passed {args.course}")


def people_disable(args: argparse.Namespace, reg: Registry) -> None:
    _people(reg).set_disabled(args.name, True, actor=lifecycle_actor(args, reg), reason=args.reason)
    _out(args, {"user": args.name, "disabled": True}, f"{args.name} is disabled")


def people_enable(args: argparse.Namespace, reg: Registry) -> None:
    _people(reg).set_disabled(args.name, False, actor=lifecycle_actor(args, reg))
    _out(args, {"user": args.name, "disabled": False}, f"{args.name} is enabled")


def people_expire(args: argparse.Namespace, reg: Registry) -> None:
    if args.never == bool(args.on):
        raise InvalidInput("give either --on YYYY-MM-DD or --never")
    on = None if args.never else args.on
    _people(reg).set_expiry(args.name, on, actor=lifecycle_actor(args, reg))
    _out(args, {"user": args.name, "expires_on": on}, f"{args.name} expires {on or 'never'}")


def people_unlock(args: argparse.Namespace, reg: Registry) -> None:
    _people(reg).unlock(args.name, actor=lifecycle_actor(args, reg))
    _out(args, {"user": args.name, "unlocked": True}, f"{args.name} may sign in again")


def people_reset_mfa(args: argparse.Namespace, reg: Registry) -> None:
    _people(reg).reset_mfa(args.name, actor=lifecycle_actor(args, reg), reason=args.reason)
    _out(
        args,
        {"user": args.name, "mfa": False},
        f"{args.name}'s second factor is removed; they enrol again at their next log-in",
    )


def applications_assess(args: argparse.Namespace, reg: Registry) -> None:
    _people(reg).record_assessment(
        args.id, reference=args.reference, outcome=args.outcome, actor=actor(args, reg)
    )
    _out(
        args,
        {"application": args.id, "reference": args.reference, "outcome": args.outcome},
        f"application {args.id}: assessment {args.reference} ({args.outcome})",
    )


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from exc


def add_identity_verbs(verbs: Any, verb: Callable[..., Any]) -> None:
    """``login``, ``logout``, ``whoami`` and ``people ...`` verbs."""
    p = verb(verbs, "login", "sign in on the command line (password and code)", login)
    p.add_argument("name")
    p.add_argument("--password-env", metavar="VAR", help="read the password from this variable")
    p.add_argument("--code", help="the code from your authenticator app (default: asked)")
    p.add_argument(
        "--print-token", action="store_true", help="print the token instead of saving it"
    )
    verb(verbs, "logout", "forget the saved command-line credential", logout)
    p = verb(verbs, "whoami", "the person this command acts as", whoami)
    add_credential(p)

    people = verb(verbs, "people", "people's verification, training, accounts and sign-in")
    people = people.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = verb(people, "show", "a person's standing: what blocks them", people_show)
    p.add_argument("name")
    p = verb(people, "verify", "record how a person's identity was verified", people_verify)
    p.add_argument("name")
    p.add_argument("--method", required=True, help="as policies/identity.yaml names them")
    p.add_argument("--reference", help="e.g. the document checked or the IdP's subject")
    add_credential(p)
    p = verb(people, "train", "record a passed course", people_train)
    p.add_argument("name")
    p.add_argument("--course", required=True)
    p.add_argument("--passed", type=_date, help="YYYY-MM-DD (default: today)")
    p.add_argument("--expires", type=_date, help="YYYY-MM-DD (default: never)")
    add_credential(p)
    p = verb(people, "disable", "disable an account, with a reason", people_disable)
    p.add_argument("name")
    p.add_argument("--reason", required=True)
    add_credential(p)
    p = verb(people, "enable", "enable a disabled account", people_enable)
    p.add_argument("name")
    add_credential(p)
    p = verb(people, "expire", "set the day after which an account may not sign in", people_expire)
    p.add_argument("name")
    p.add_argument("--on", type=_date, help="YYYY-MM-DD")
    p.add_argument("--never", action="store_true", help="no expiry")
    add_credential(p)
    p = verb(people, "unlock", "lift a sign-in lock", people_unlock)
    p.add_argument("name")
    add_credential(p)
    p = verb(people, "reset-mfa", "remove a second factor (they enrol again)", people_reset_mfa)
    p.add_argument("name")
    p.add_argument("--reason", required=True)
    add_credential(p)
