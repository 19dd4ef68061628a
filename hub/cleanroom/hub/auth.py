"""Log-in against the registry's users: scrypt password hashes, a TOTP second factor
enrolled at the first log-in, back-off and lock-out (``cleanroom.registry.people``)."""

from __future__ import annotations

import json
from typing import Any

from jupyterhub.auth import Authenticator
from traitlets import Bool, Unicode, default

from cleanroom import paths
from cleanroom.airlock.hub_config import role_scopes
from cleanroom.errors import CleanroomError, NotFound
from cleanroom.hub.login import (
    ENROL_MAX_AGE_DAYS,
    ENROL_TOKEN,
    CleanroomLoginHandler,
    EnrolmentNeeded,
    LoginRefused,
    in_thread,
)
from cleanroom.registry import Registry, shared_registry
from cleanroom.registry.people import PRIVILEGED_ROLES, People, shared_people

# Registry role -> hub role. Researchers get JupyterHub's own "user" role only.
_HUB_ROLE = {
    "officer": "cleanroom-officer",
    "operator": "cleanroom-operator",
    "provider": "cleanroom-provider",
}


def hub_roles(roles: frozenset[str] | set[str], *, mfa: bool = True) -> list[str]:
    """The hub roles of a user with these registry roles (always including "user").

    Officers, operators and providers hold their hub role only with a second factor
    (``mfa``): the airlock's and the services' scope checks then see no privileged role
    for a person who has none.
    """
    return [
        "user",
        *sorted(
            _HUB_ROLE[r] for r in roles if r in _HUB_ROLE and (mfa or r not in PRIVILEGED_ROLES)
        ),
    ]


def role_definitions() -> list[dict[str, Any]]:
    """The cleanroom hub roles and their scopes.

    Operators may see and stop every workspace but never open one: ``access:servers``
    would show them a project's data. The airlock adds its custom scopes to these.
    """
    operator_scopes = [
        "admin-ui",
        "list:users",
        "read:users",
        "read:servers",
        "admin:servers",
        "read:roles",
        "read:groups",
    ]
    roles = [
        # The egress gateway is a hub OAuth client: every researcher logs in to it
        # (cleanroom.gateway), and only through it reaches their workspaces.
        {
            "name": "user",
            # ... and to the data library's pages (cleanroom.library), every person.
            "scopes": [
                "self",
                "access:services!service=cleanroom-gateway",
                "access:services!service=library",
            ],
            "description": "every logged-in person",
        },
        {
            "name": "cleanroom-operator",
            "scopes": operator_scopes,
            "description": "runs images, projects and quotas; never opens a workspace",
        },
        {
            "name": "cleanroom-officer",
            "scopes": ["read:users:name"],
            "description": "reviews release requests in the airlock",
        },
        {
            "name": "cleanroom-provider",
            "scopes": ["read:users:name"],
            "description": "provides datasets and sees how they are used",
        },
    ]
    # Imported at the top, never behind an ImportError fallback: a hub without the
    # airlock's scopes would silently lock every role out of the airlock.
    extra = role_scopes()
    for role in roles:
        name = str(role["name"])
        role["scopes"] = sorted(set(role["scopes"]) | set(extra.get(name, [])))
    return roles


class CleanroomAuthenticator(Authenticator):
    """Users and passwords live in the registry; only registered users may log in, each
    with a password and a TOTP code (enrolled at the first log-in)."""

    registry_url = Unicode(help="SQLAlchemy URL of the cleanroom registry.").tag(config=True)

    require_mfa = Bool(
        True,
        help="""Ask for a TOTP code at every log-in, and enrolment (QR code) at the first.
        Only a test of the password form alone may turn this off; officers, operators and
        providers get their hub roles only with a second factor either way.""",
    ).tag(config=True)

    @default("request_otp")
    def _default_request_otp(self) -> bool:
        return bool(self.require_mfa)

    @default("otp_prompt")
    def _default_otp_prompt(self) -> str:
        return "Code from your authenticator app, or a recovery code (empty at your first sign-in):"

    @default("registry_url")
    def _default_registry_url(self) -> str:
        return paths.registry_url()

    @default("allow_all")
    def _default_allow_all(self) -> bool:
        # Being in the registry is the allow list; check_allowed below reads it.
        return False

    @property
    def registry(self) -> Registry:
        """The shared registry."""
        return shared_registry(self.registry_url)

    @property
    def people(self) -> People:
        """People's standing: second factors, failures, locks (shared per registry)."""
        return shared_people(self.registry)

    def get_handlers(self, app: Any) -> list[tuple[str, Any]]:
        """Our log-in handler replaces JupyterHub's (it is registered first)."""
        return [("/login", CleanroomLoginHandler)]

    def read_enrolment(self, handler: Any, token: str) -> tuple[str, str] | None:
        """(name, secret) from a pending enrolment's signed token, or None when forged
        or older than ten minutes."""
        raw = handler.get_secure_cookie(ENROL_TOKEN, value=token, max_age_days=ENROL_MAX_AGE_DAYS)
        if raw is None:
            return None
        name, secret = json.loads(raw)
        return str(name), str(secret)

    @default("manage_roles")
    def _default_manage_roles(self) -> bool:
        # Officer and operator roles follow the registry at every log-in.
        return True

    @default("reset_managed_roles_on_startup")
    def _default_reset_roles(self) -> bool:
        # At start the registry is the truth: stale officer or operator grants go.
        return True

    async def authenticate(self, handler: Any, data: dict[str, str]) -> dict[str, Any] | None:
        """The user and their hub roles after password and second factor, else a refusal.

        Raises :class:`LoginRefused` (the page says why: the same sentence for unknown
        users and wrong passwords) or :class:`EnrolmentNeeded` (right password, no second
        factor yet: the handler shows the QR code).
        """
        if data.get("enrolment"):
            return await self._complete_enrolment(handler, data)
        name = (data.get("username") or "").strip().lower()
        password = data.get("password") or ""
        code = data.get("otp") or ""
        address = handler.request.remote_ip if handler is not None else "local"
        if not self.require_mfa:
            outcome = await in_thread(self._password_only, name, password, address)
        else:
            outcome = await in_thread(self.people.attempt, name, password, code, address)
        if outcome.needs_enrolment:
            raise EnrolmentNeeded(name)
        if not outcome.ok:
            raise LoginRefused(outcome.message)
        return self._user_model(name)

    def _password_only(self, name: str, password: str, address: str) -> Any:
        outcome = self.people.attempt(name, password, "", address)
        if outcome.needs_enrolment or outcome.ok:
            from cleanroom.registry.people import LoginOutcome

            return LoginOutcome(True)
        return outcome

    async def _complete_enrolment(self, handler: Any, data: dict[str, str]) -> dict[str, Any]:
        pending = self.read_enrolment(handler, data["enrolment"])
        if pending is None:
            raise LoginRefused("The enrolment page expired: sign in again.")
        name, secret = pending
        try:
            codes = await in_thread(self.people.enrol, name, secret, data.get("otp") or "")
        except CleanroomError as exc:
            raise LoginRefused(str(exc)) from exc
        handler.recovery_codes = codes
        return self._user_model(name)

    def _user_model(self, name: str) -> dict[str, Any]:
        user = self.registry.get_user(name)
        wanted = hub_roles(user.roles, mfa=self.people.mfa_enrolled(name))
        roles = [dict(r) for r in role_definitions() if r["name"] in wanted]
        return {"name": name, "roles": roles}

    async def load_managed_roles(self) -> list[dict[str, Any]]:
        """The hub roles of cleanroom, with their current members from the registry."""
        users = self.registry.list_users()
        people = self.people
        wanted = {u.name: hub_roles(u.roles, mfa=people.mfa_enrolled(u.name)) for u in users}
        defined = []
        for role in role_definitions():
            members = [u.name for u in users if role["name"] in wanted[u.name]]
            defined.append({**role, "users": members})
        return defined

    def check_allowed(self, username: str, authentication: Any = None) -> bool:
        """Only users in the registry are allowed."""
        # Only "no such user" means not allowed; a registry that cannot answer is a
        # fault to see (the log-in fails loudly), not a silent refusal.
        try:
            self.registry.get_user(username)
        except NotFound:
            return False
        return True
