"""Demo content: people, two projects and the synthetic press-line dataset.

Idempotent: what exists is kept, so ``make up`` can call it every time. Passwords come
from ``CLEANROOM_DEMO_PASSWORD_<NAME>`` when set, else are generated once and kept in
the state folder's secrets (mode 0600) so that every start prints the same ones.

Demo people are verified and trained, and enrolled with a TOTP key kept in the secrets
too (``demo-totp.json``): the log-in sheet prints each key, so a first visit needs only
an authenticator app (or ``cleanroom demo --codes``), not an enrolment. Why enrolled and
not enrolling at the first log-in: the provider must approve the demo dataset's use
before anyone logs in, and a decision needs a second factor. People added later enrol
at their first log-in (the QR code page).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cleanroom import paths
from cleanroom.errors import NotFound
from cleanroom.registry import Registry
from cleanroom.registry.passwords import generate_password

PROVIDER = "Acme Stamping Works (demo)"
DEMO_USERS: dict[str, tuple[str, ...]] = {
    "alice": ("researcher",),
    "bob": ("researcher",),
    "olivia": ("officer",),
    "oscar": ("officer",),
    "opal": ("operator",),
    "paul": ("provider",),
}
OPERATOR = "opal"
MAIN_PROJECT = "press-quality"
OTHER_PROJECT = "supplier-audit"
DATASET = "press-line"
DATASET_VERSION = "v1"


@dataclass
class DemoResult:
    """What the demo holds, for printing at start-up."""

    passwords: dict[str, str] = field(default_factory=dict)
    roles: dict[str, tuple[str, ...]] = field(default_factory=dict)
    projects: dict[str, list[str]] = field(default_factory=dict)
    totp_keys: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """The log-in sheet."""
        lines = ["Demo users (name / password / authenticator key / role):"]
        for name, password in self.passwords.items():
            key = self.totp_keys.get(name, "-")
            lines.append(f"  {name:8s} {password:24s} {key:34s} {', '.join(self.roles[name])}")
        lines.append(
            "  (add a key to any TOTP authenticator app, or print the current codes with "
            "`cleanroom demo --codes`)"
        )
        lines.append("Projects:")
        for project, members in self.projects.items():
            lines.append(f"  {project:16s} members: {', '.join(members)}")
        return "\n".join(lines)


def _passwords() -> dict[str, str]:
    store = paths.secrets_dir() / "demo-passwords.json"
    known: dict[str, str] = json.loads(store.read_text()) if store.exists() else {}
    for name in DEMO_USERS:
        env = os.environ.get(f"CLEANROOM_DEMO_PASSWORD_{name.upper()}")
        known[name] = env or known.get(name) or generate_password()
    store.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(store.parent, 0o700)
    fd = os.open(store, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(known, f, indent=2)
    return known


def _totp_keys(reg: Registry) -> dict[str, str]:
    """Verify, train and enrol each demo person (once); their TOTP keys."""
    from datetime import date, timedelta

    from cleanroom.identity import totp
    from cleanroom.registry.people import People

    store = paths.secrets_dir() / "demo-totp.json"
    keys: dict[str, str] = json.loads(store.read_text()) if store.exists() else {}
    people = People(reg)
    # Records first, second factors after: until an operator has all three, the host
    # may record (the bootstrap); after that only an operator in standing may.
    actor = "demo" if not people.any_operator_in_standing() else OPERATOR
    for name in DEMO_USERS:
        standing = people.standing(name)
        if not standing.verified:
            people.record_verification(name, "in-person", actor=actor, reference="demo seed")
        for course in standing.missing_training:
            people.record_training(
                name,
                course,
                passed_on=date.today(),
                expires_on=date.today() + timedelta(days=365),
                actor=actor,
            )
    for name in DEMO_USERS:
        if not people.mfa_enrolled(name):
            keys[name] = totp.new_secret()
            people.enrol(name, keys[name], totp.current_code(keys[name]))
    fd = os.open(store, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(keys, f, indent=2)
    return {n: k for n, k in keys.items() if n in DEMO_USERS}


def current_codes() -> dict[str, str]:
    """Each demo person's current TOTP code (from the demo's own keys)."""
    from cleanroom.identity import totp

    store = paths.secrets_dir() / "demo-totp.json"
    keys: dict[str, str] = json.loads(store.read_text()) if store.exists() else {}
    return {name: totp.current_code(key) for name, key in keys.items()}


def _ensure_dataset(reg: Registry, rows: int, actor: str) -> None:
    if reg.dataset_exists(DATASET, DATASET_VERSION):
        return
    from cleanroom.demo.press_line import write_press_line
    from cleanroom.library.register import register_dataset

    with tempfile.TemporaryDirectory(prefix="press-line-") as tmp:
        print(f"generating the demo press-line dataset ({rows} rows)", flush=True)
        write_press_line(Path(tmp), rows=rows)
        register_dataset(
            reg,
            Path(tmp),
            name=DATASET,
            version=DATASET_VERSION,
            provider=PROVIDER,
            actor=actor,
        )


def _provider_approves(reg: Registry, project: str, actor: str) -> None:
    """Paul, for the demo dataset's provider, approves the project's use of it."""
    from cleanroom.registry.governance import Governance

    governance = Governance(reg)
    if PROVIDER not in governance.providers_of("paul"):
        governance.add_provider_account(PROVIDER, "paul", actor=OPERATOR)
    if reg.unapproved_datasets(project):
        governance.approve_dataset_use(project, DATASET, DATASET_VERSION, actor="paul")


def seed_demo(reg: Registry, rows: int = 300_000, *, actor: str = "demo") -> DemoResult:
    """Create (or complete) the demo content and return the log-in sheet (every change
    journaled as ``actor``'s)."""
    from cleanroom.registry.governance import Governance

    writer = Governance(reg)
    passwords = _passwords()
    existing = {u.name for u in reg.list_users()}
    for name, roles in DEMO_USERS.items():
        if name not in existing:
            writer.add_user(name, roles, passwords[name], actor=actor)
        else:
            writer.set_password(name, passwords[name], actor=actor)
    keys = _totp_keys(reg)
    _ensure_dataset(reg, rows, actor)
    plans = {
        MAIN_PROJECT: ("Press line defect drivers", ["alice", "bob"]),
        OTHER_PROJECT: ("Supplier quality audit", ["bob"]),
    }
    for project, (title, members) in plans.items():
        try:
            reg.get_project(project)
        except NotFound:
            writer.create_project(project, title, images=("notebook", "pytorch"), actor=actor)
        current = reg.get_project(project)
        for member in members:
            if member not in current.members:
                writer.add_member(project, member, actor=actor)
        if not current.datasets:
            writer.attach_dataset(project, DATASET, DATASET_VERSION, actor=actor)
        _provider_approves(reg, project, actor)
    return DemoResult(
        totp_keys=keys,
        passwords=passwords,
        roles=dict(DEMO_USERS),
        projects={p: list(reg.get_project(p).members) for p in plans},
    )
