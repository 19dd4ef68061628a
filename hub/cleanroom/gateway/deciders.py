"""Who grants egress: a person the gateway identifies itself, never a name it is sent.

A grant is a decision (design.md, threat model 5: every act has an authenticated actor).
The internal API's token proves only that the caller is a hub-side process or the host's
command line; it says nothing about which person decides. So a grant carries the deciding
person's own credential and the gateway resolves it here, against the registry: a
command-line token (``cleanroom login``) or the person's hub token (the airlock's officer
pages forward the signed-in officer's). Either way the person must hold the officer or
the operator role and be in standing (second factor, verified, trained, active), and
nobody grants egress to themselves.
"""

from __future__ import annotations

from cleanroom.errors import Forbidden
from cleanroom.registry import shared_registry
from cleanroom.registry.people import People, shared_people

GRANT_ROLES = ("officer", "operator")
"""The roles that may grant egress, strongest duty first (an officer's review role)."""


class GrantDecider:
    """Checks the person behind a grant (reads the registry; call it off the event loop)."""

    def __init__(self, registry_url: str) -> None:
        self.registry_url = registry_url

    @property
    def people(self) -> People:
        """The registry's people (one per process and URL)."""
        return shared_people(shared_registry(self.registry_url))

    def person_of_cli_token(self, token: str) -> str:
        """The person a command-line credential belongs to (Forbidden when unknown,
        expired or of someone who may no longer sign in)."""
        return self.people.actor_of_token(token)

    def check(self, person: str, grantee: str) -> str:
        """``person``, once they may grant ``grantee`` more egress (else Forbidden)."""
        self.people.check_may_decide(person, GRANT_ROLES, what="grant egress")
        if person == grantee.strip().lower():
            raise Forbidden("nobody grants egress to themselves: ask another officer")
        return person
