"""Log-in through an institution's OpenID Connect provider (``oauthenticator``'s
GenericOAuthenticator), still held to the registry.

Chosen with ``CLEANROOM_AUTHENTICATOR=oidc`` (see :func:`configure_oidc`). The provider
proves who the person is; the clean room still decides what they may do:

- only people in the registry sign in, and never a disabled or expired account;
- the hub roles are the registry's roles that the provider's role claim also grants
  (both the institution and the clean room must agree);
- the ID token's ``amr`` claim must show a second factor (RFC 8176 values), else the
  log-in is refused; the confirmation is recorded, so officers', operators' and
  providers' decisions see a second factor;
- verification and training are the registry's, as for every person (workspace starts
  and decisions check them).
"""

from __future__ import annotations

import os
from typing import Any

import requests
from oauthenticator.generic import GenericOAuthenticator
from tornado import web
from traitlets import Bool, Dict, List, Unicode, default

from cleanroom import paths
from cleanroom.errors import NotFound
from cleanroom.registry import Registry, shared_registry
from cleanroom.registry.people import People, shared_people

# RFC 8176 authentication method references that are a second factor or stronger.
MFA_METHODS = ["mfa", "otp", "hwk", "swk", "sc", "fpt", "face", "iris", "retina", "vbm"]


class CleanroomOIDCAuthenticator(GenericOAuthenticator):
    """An OpenID Connect provider signs people in; the registry says what they may do."""

    registry_url = Unicode(help="SQLAlchemy URL of the cleanroom registry.").tag(config=True)

    role_claim = Unicode(
        "cleanroom_roles",
        help="""ID token claim listing the person's roles at the institution (a list or a
        space-separated string); mapped through ``claim_roles``.""",
    ).tag(config=True)

    claim_roles = Dict(
        {
            "researcher": "researcher",
            "officer": "officer",
            "operator": "operator",
            "provider": "provider",
        },
        help="""Institution role (a value of ``role_claim``) → cleanroom role. A registry
        role reaches the hub only when the provider grants it too.""",
    ).tag(config=True)

    require_idp_mfa = Bool(
        True,
        help="""Refuse a log-in whose ID token's ``amr`` claim names no second factor
        (``mfa_methods``): every person signs in with two factors.""",
    ).tag(config=True)

    mfa_methods = List(
        Unicode(),
        default_value=MFA_METHODS,
        help="``amr`` values (RFC 8176) that count as a second factor.",
    ).tag(config=True)

    @default("registry_url")
    def _default_registry_url(self) -> str:
        return paths.registry_url()

    @default("userdata_from_id_token")
    def _default_from_id_token(self) -> bool:
        # The claims (amr, roles) are the ID token's, fetched by the hub directly.
        return True

    @default("username_claim")
    def _default_username_claim(self) -> str:
        return "preferred_username"

    @default("scope")
    def _default_scope(self) -> list[str]:
        return ["openid", "profile"]

    @default("login_service")
    def _default_login_service(self) -> str:
        return "your institution"

    @default("manage_roles")
    def _default_manage_roles(self) -> bool:
        return True

    @property
    def registry(self) -> Registry:
        """The shared registry."""
        return shared_registry(self.registry_url)

    @property
    def people(self) -> People:
        """People's standing on the shared registry."""
        return shared_people(self.registry)

    def _claimed_roles(self, claims: dict[str, Any]) -> set[str]:
        raw = claims.get(self.role_claim) or []
        values = raw.split() if isinstance(raw, str) else list(raw)
        return {self.claim_roles[v] for v in values if v in self.claim_roles}

    async def update_auth_model(self, auth_model: dict[str, Any]) -> dict[str, Any]:
        """Hold the provider's answer to the registry: known person, active account, a
        second factor, and the roles both sides grant."""
        from cleanroom.hub.auth import hub_roles, role_definitions

        name = auth_model["name"]
        claims = auth_model["auth_state"].get(self.user_auth_state_key) or {}
        try:
            user = self.registry.get_user(name)
        except NotFound:
            raise web.HTTPError(403, "%s", f"{name} is not a person of this clean room") from None
        blocked = self.people.account_block(name)
        if blocked:
            raise web.HTTPError(403, "%s", blocked)
        methods = [str(m) for m in claims.get("amr") or []]
        strong = [m for m in methods if m in self.mfa_methods]
        if self.require_idp_mfa and not strong:
            raise web.HTTPError(
                403,
                "%s",
                "your identity provider did not confirm a second factor for this sign-in "
                f"(amr: {', '.join(methods) or 'none'}); sign in there with two factors",
            )
        if strong:
            self.people.record_external_factor(name, str(claims.get("iss", "")), strong)
        granted = set(user.roles) & (self._claimed_roles(claims) | {"researcher"})
        wanted = hub_roles(granted, mfa=bool(strong) or self.people.mfa_enrolled(name))
        auth_model["roles"] = [dict(r) for r in role_definitions() if r["name"] in wanted]
        return auth_model

    async def check_allowed(self, username: str, auth_model: Any = None) -> bool:
        """Only people in the registry (update_auth_model refused everyone else)."""
        try:
            self.registry.get_user(username)
        except NotFound:
            return False
        return True

    async def load_managed_roles(self) -> list[dict[str, Any]]:
        """The cleanroom hub roles (members follow each log-in)."""
        from cleanroom.hub.auth import role_definitions

        return [dict(r) for r in role_definitions()]


def configure_oidc(c: Any, public_url: str) -> None:
    """Use the OpenID provider named by ``CLEANROOM_OIDC_ISSUER`` (its discovery document
    gives the endpoints; the claims are read from the ID token), with
    ``CLEANROOM_OIDC_CLIENT_ID``/``CLEANROOM_OIDC_CLIENT_SECRET``;
    ``CLEANROOM_OIDC_CA_CERT`` names the CA bundle that signs the provider's certificate
    when it is not a public one (an institution's own CA)."""
    issuer = os.environ.get("CLEANROOM_OIDC_ISSUER", "").rstrip("/")
    client_id = os.environ.get("CLEANROOM_OIDC_CLIENT_ID", "")
    secret = os.environ.get("CLEANROOM_OIDC_CLIENT_SECRET", "")
    missing = [
        n
        for n, v in (
            ("CLEANROOM_OIDC_ISSUER", issuer),
            ("CLEANROOM_OIDC_CLIENT_ID", client_id),
            ("CLEANROOM_OIDC_CLIENT_SECRET", secret),
        )
        if not v
    ]
    if missing:
        raise SystemExit(f"cleanroom hub: CLEANROOM_AUTHENTICATOR=oidc needs {', '.join(missing)}")
    ca = os.environ.get("CLEANROOM_OIDC_CA_CERT") or None
    if ca and not os.path.isfile(ca):
        raise SystemExit(f"cleanroom hub: CLEANROOM_OIDC_CA_CERT={ca!r} is not a file")
    try:
        found = requests.get(
            f"{issuer}/.well-known/openid-configuration", timeout=30, verify=ca or True
        )
        found.raise_for_status()
        discovery = found.json()
    except (requests.RequestException, ValueError) as exc:
        raise SystemExit(
            f"cleanroom hub: the OpenID provider {issuer} gave no discovery document ({exc})"
        ) from None
    c.JupyterHub.authenticator_class = "cleanroom.identity.oidc.CleanroomOIDCAuthenticator"
    a = c.CleanroomOIDCAuthenticator
    a.client_id, a.client_secret = client_id, secret
    a.authorize_url = discovery["authorization_endpoint"]
    a.token_url = discovery["token_endpoint"]
    a.oauth_callback_url = f"{public_url.rstrip('/')}/hub/oauth_callback"
    if ca:
        a.http_request_kwargs = {"ca_certs": ca}
