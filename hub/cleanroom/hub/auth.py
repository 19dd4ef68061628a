"""Log-in against the registry's users (scrypt password hashes)."""

from __future__ import annotations

from typing import Any

from jupyterhub.auth import Authenticator
from jupyterhub.handlers.login import LoginHandler
from traitlets import Unicode, default

from cleanroom import paths
from cleanroom.airlock.hub_config import role_scopes
from cleanroom.errors import NotFound
from cleanroom.registry import Registry, shared_registry

# Registry role -> hub role. Researchers get JupyterHub's own "user" role only.
_HUB_ROLE = {
    "officer": "cleanroom-officer",
    "operator": "cleanroom-operator",
    "provider": "cleanroom-provider",
}


def hub_roles(roles: frozenset[str] | set[str]) -> list[str]:
    """The hub roles of a user with these registry roles (always including "user")."""
    return ["user", *sorted(_HUB_ROLE[r] for r in roles if r in _HUB_ROLE)]


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
        {"name": "user", "scopes": ["self"], "description": "every logged-in person"},
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


class CleanroomLoginHandler(LoginHandler):
    """JupyterHub's log-in form, refusing a form without both fields with a 400.

    JupyterHub's own handler reads the username of a failed log-in without checking it
    was sent, so a form without one got a 500.
    """

    async def post(self) -> None:
        """Log in, once the form carries a username and a password."""
        missing = [f for f in ("username", "password") if f not in self.request.body_arguments]
        if missing:
            self.set_status(400)
            html = await self._render(
                login_error=f"Give your {' and '.join(missing)} to log in.", username=""
            )
            self.finish(html)
            return
        await super().post()


class CleanroomAuthenticator(Authenticator):
    """Users and passwords live in the registry; only registered users may log in."""

    def get_handlers(self, app: Any) -> list[tuple[str, type]]:
        """The log-in form, with cleanroom's check of its fields."""
        return [("/login", CleanroomLoginHandler)]

    registry_url = Unicode(help="SQLAlchemy URL of the cleanroom registry.").tag(config=True)

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

    @default("manage_roles")
    def _default_manage_roles(self) -> bool:
        # Officer and operator roles follow the registry at every log-in.
        return True

    @default("reset_managed_roles_on_startup")
    def _default_reset_roles(self) -> bool:
        # At start the registry is the truth: stale officer or operator grants go.
        return True

    async def authenticate(self, handler: Any, data: dict[str, str]) -> dict[str, Any] | None:
        """The user and their hub roles when the password matches, else None."""
        name = (data.get("username") or "").strip().lower()
        password = data.get("password") or ""
        if name and password and self.registry.check_password(name, password):
            wanted = hub_roles(self.registry.get_user(name).roles)
            roles = [dict(r) for r in role_definitions() if r["name"] in wanted]
            return {"name": name, "roles": roles}
        return None

    async def load_managed_roles(self) -> list[dict[str, Any]]:
        """The hub roles of cleanroom, with their current members from the registry."""
        users = self.registry.list_users()
        defined = []
        for role in role_definitions():
            members = [u.name for u in users if role["name"] in hub_roles(u.roles)]
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
