"""Test helper: bring a registry person into standing through the real domain.

Verified (in person), trained in every course the identity policy names for their
roles, and enrolled with a TOTP secret the test knows, so suites that log in through
the hub, start workspaces or take decisions can pass the identity checks honestly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, timedelta

from cleanroom.identity import totp
from cleanroom.registry import Registry
from cleanroom.registry.governance import Governance
from cleanroom.registry.people import People

VERIFIER = "test-verifier"


def _actor(people: People, name: str) -> str:
    if not people.any_operator_in_standing():
        return VERIFIER
    for user in people.registry.list_users():
        if user.name != name and people.can_act(user.name, "operator"):
            return user.name
    return VERIFIER


def in_standing(registry: Registry, name: str, *, enrol: bool = True) -> str | None:
    """Verify, train and (with ``enrol``) enrol ``name``; returns their TOTP secret."""
    people = People(registry)
    standing = people.standing(name)
    if not standing.verified:
        people.record_verification(name, "in-person", actor=_actor(people, name))
    for course in people.standing(name).missing_training:
        people.record_training(
            name,
            course,
            passed_on=date.today(),
            expires_on=date.today() + timedelta(days=365),
            actor=_actor(people, name),
        )
    if not enrol or standing.mfa:
        return None
    secret = totp.new_secret()
    people.enrol(name, secret, totp.current_code(secret))
    return secret


def person(
    registry: Registry, name: str, roles: list[str], password: str | None = None
) -> str | None:
    """Add ``name`` with ``roles`` through the registry's writer and bring them into
    standing; returns their TOTP secret."""
    Governance(registry).add_user(name, roles, password, actor=VERIFIER)
    return in_standing(registry, name)


@dataclass
class Authenticator:
    """A test's authenticator app: codes for known secrets, never one twice (the hub
    refuses a spent time step, as RFC 6238 asks)."""

    secrets: dict[str, str] = field(default_factory=dict)
    spent: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, secret: str) -> None:
        """Know ``name``'s secret; the step spent at enrolment counts as used."""
        self.secrets[name] = secret
        self.spent[name] = int(time.time() // totp.PERIOD)

    def code(self, name: str) -> str:
        """A fresh code for ``name``: the current step, or the next when it is spent."""
        secret = self.secrets[name]
        while True:  # until a period with an unspent step comes (at most 30 s)
            step = int(time.time() // totp.PERIOD)
            last = self.spent.get(name, -1)
            # The hub accepts one step ahead (clock drift), so two log-ins in one
            # period work; a third waits for the next period.
            for candidate in (step, step + 1):
                if candidate > last:
                    self.spent[name] = candidate
                    return totp.current_code(secret, at=candidate * totp.PERIOD)
            time.sleep((step + 1) * totp.PERIOD - time.time() + 0.05)


def personal_token(
    registry: Registry, name: str, app: Authenticator, password: str = "test-password-1"
) -> str:
    """``name`` in standing, with ``password``, signed in on the command line: their
    personal token (what ``cleanroom login`` saves)."""
    Governance(registry).set_password(name, password, actor=VERIFIER)
    if name not in app.secrets:
        secret = in_standing(registry, name)
        if secret is None:
            raise AssertionError(f"{name} is enrolled already with a secret this test lacks")
        app.add(name, secret)
    return People(registry).open_cli_session(name, password, app.code(name))
