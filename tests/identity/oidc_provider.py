"""A real OpenID Connect provider for the tests, built on ``pyop`` (an OP library), served
by tornado on loopback: discovery, a sign-in form, the authorization code flow, signed ID
tokens, userinfo and the key set.

Run as ``python -m tests.identity.oidc_provider PORT CALLBACK_URL CERT KEY`` (OpenID
Connect requires https: the test makes the certificate). Its people: ``ada``
(an officer at the institution, signs in with a code: ``amr`` pwd+otp), ``ben`` (signs
in with a password only: ``amr`` pwd), ``cyd`` (not a person of the clean room).
"""

from __future__ import annotations

import json
import sys
from urllib.parse import urlencode

from Cryptodome.PublicKey import RSA
from jwkest.jwk import RSAKey
from pyop.authz_state import AuthorizationState
from pyop.provider import Provider
from pyop.subject_identifier import HashBasedSubjectIdentifierFactory
from pyop.userinfo import Userinfo
from tornado import ioloop, web

CLIENT_ID = "cleanroom"
CLIENT_SECRET = "test-client-secret"
PASSWORD = "institution-password"
PEOPLE = {
    "ada": {
        "sub": "ada",
        "preferred_username": "ada",
        "name": "Ada",
        "cleanroom_roles": ["officer"],
    },
    "ben": {"sub": "ben", "preferred_username": "ben", "name": "Ben", "cleanroom_roles": []},
    "cyd": {"sub": "cyd", "preferred_username": "cyd", "name": "Cyd", "cleanroom_roles": []},
}
# How each person signs in at the institution (RFC 8176 values).
AMR = {"ada": ["pwd", "otp"], "ben": ["pwd"], "cyd": ["pwd", "otp"]}

FORM = """<!DOCTYPE html><html><body><h1>Institution sign-in</h1>
<form method="post" action="/authorize"><input type="hidden" name="request" value="{request}">
<input id="op-user" name="user"><input id="op-password" name="password" type="password">
<input id="op-submit" type="submit" value="Sign in"></form></body></html>"""


def make_provider(base: str, callback: str) -> Provider:
    """The OP: one client (the hub), the people above."""
    key = RSAKey(key=RSA.generate(2048), alg="RS256", kid="test")
    configuration = {
        "issuer": base,
        "authorization_endpoint": f"{base}/authorize",
        "token_endpoint": f"{base}/token",
        "userinfo_endpoint": f"{base}/userinfo",
        "jwks_uri": f"{base}/jwks",
        "response_types_supported": ["code"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "subject_types_supported": ["public"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "scopes_supported": ["openid", "profile"],
        "claims_parameter_supported": True,
    }
    clients = {
        CLIENT_ID: {
            "client_secret": CLIENT_SECRET,
            "redirect_uris": [callback],
            "response_types": ["code"],
            "token_endpoint_auth_method": "client_secret_post",
        }
    }
    state = AuthorizationState(HashBasedSubjectIdentifierFactory("test-salt"))
    return Provider(key, configuration, state, clients, Userinfo(PEOPLE))


def _claims(user_id: str, client_id: str) -> dict[str, object]:
    person = PEOPLE[user_id]
    return {
        "preferred_username": person["preferred_username"],
        "cleanroom_roles": person["cleanroom_roles"],
        "amr": AMR[user_id],
    }


class Discovery(web.RequestHandler):
    def get(self) -> None:
        self.write(self.settings["op"].provider_configuration.to_dict())


class Jwks(web.RequestHandler):
    def get(self) -> None:
        self.write(self.settings["op"].jwks)


class Authorize(web.RequestHandler):
    def get(self) -> None:
        # Validate now, so a bad request never reaches the form.
        self.settings["op"].parse_authentication_request(self.request.query)
        self.write(FORM.format(request=self.request.query.replace('"', "&quot;")))

    def post(self) -> None:
        op = self.settings["op"]
        request = op.parse_authentication_request(self.get_body_argument("request"))
        user = self.get_body_argument("user")
        if user not in PEOPLE or self.get_body_argument("password") != PASSWORD:
            self.set_status(403)
            self.write("wrong user or password")
            return
        response = op.authorize(request, user)
        self.redirect(response.request(request["redirect_uri"]))


class Token(web.RequestHandler):
    def check_xsrf_cookie(self) -> None:
        return None

    def post(self) -> None:
        op = self.settings["op"]
        response = op.handle_token_request(
            self.request.body.decode(), dict(self.request.headers), extra_id_token_claims=_claims
        )
        self.set_header("Content-Type", "application/json")
        self.write(response.to_json())


class UserInfoHandler(web.RequestHandler):
    def get(self) -> None:
        op = self.settings["op"]
        response = op.handle_userinfo_request(self.request.query, dict(self.request.headers))
        self.set_header("Content-Type", "application/json")
        self.write(json.dumps(response.to_dict()))


def main() -> None:
    port, callback, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    base = f"https://127.0.0.1:{port}"
    app = web.Application(
        [
            (r"/\.well-known/openid-configuration", Discovery),
            (r"/jwks", Jwks),
            (r"/authorize", Authorize),
            (r"/token", Token),
            (r"/userinfo", UserInfoHandler),
        ],
        op=make_provider(base, callback),
    )
    app.listen(port, "127.0.0.1", ssl_options={"certfile": cert, "keyfile": key})
    print(f"OP ready on {base} ({urlencode({'client': CLIENT_ID})})", flush=True)
    ioloop.IOLoop.current().start()


if __name__ == "__main__":
    main()
