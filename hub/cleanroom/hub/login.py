"""The hub's log-in pages: password and second factor in one form, enrolment of a TOTP
second factor (QR code) at the first log-in, and recovery codes shown once.

The decisions live in :class:`cleanroom.registry.people.People`; these handlers only turn
its outcomes into pages. Every failure renders the same sentence whether or not the
user exists (``cleanroom.identity.throttle.INVALID``).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from jupyterhub.handlers.login import LoginHandler
from tornado import web

from cleanroom.identity import totp

ENROL_TOKEN = "cleanroom-mfa-enrolment"
# A pending enrolment proves a correct password for this long.
ENROL_MAX_AGE_DAYS = 10 / (24 * 60)


class LoginRefused(web.HTTPError):
    """A log-in attempt refused, with the sentence the person reads."""

    def __init__(self, message: str) -> None:
        super().__init__(403, "%s", message)
        self.message = message


class EnrolmentNeeded(Exception):
    """The password was right and the person has no second factor yet."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class CleanroomLoginHandler(LoginHandler):
    """JupyterHub's login handler, with MFA enrolment and recovery codes."""

    recovery_codes: list[str] | None = None

    async def post(self) -> None:
        """Sign in, or show the enrolment page, or the recovery codes after enrolment.

        A log-in form without a username or a password is a 400 that says so (JupyterHub's
        own handler answered a 500); the enrolment form carries its signed token instead.
        """
        if "enrolment" not in self.request.body_arguments:
            missing = [f for f in ("username", "password") if f not in self.request.body_arguments]
            if missing:
                self.set_status(400)
                html = await self._render(
                    login_error=f"Give your {' and '.join(missing)} to log in.", username=""
                )
                self.finish(html)
                return
        data = {
            arg: self.get_argument(arg, strip=arg == "username")
            for arg in self.request.body_arguments
            if arg != "_xsrf"
        }
        data.setdefault("username", "")
        try:
            user = await self.login_user(data)
        except EnrolmentNeeded as need:
            await self._render_enrolment(need.name)
            return
        except LoginRefused as refused:
            await self._refuse(refused.message, data["username"], data)
            return
        if user is None:
            from cleanroom.identity.throttle import INVALID

            await self._refuse(INVALID, data["username"], data)
            return
        self._jupyterhub_user = user
        if self.recovery_codes:
            self.finish(
                await self.render_template(
                    "mfa_recovery_codes.html",
                    codes=self.recovery_codes,
                    next_url=self.get_next_url(user),
                )
            )
            return
        self.redirect(self.get_next_url(user))

    async def _refuse(self, message: str, username: str, data: dict[str, str]) -> None:
        self.set_status(403)
        if data.get("enrolment"):
            # A wrong code on the enrolment page: the same page again, with the reason.
            pending = self.authenticator.read_enrolment(self, data["enrolment"])
            if pending is not None:
                await self._render_enrolment(pending[0], pending[1], error=message)
                return
        self.finish(await self._render(login_error=message, username=username[:32]))

    async def _render_enrolment(
        self, name: str, secret: str | None = None, error: str = ""
    ) -> None:
        secret = secret or totp.new_secret()
        issuer = self.authenticator.people.policy.mfa_issuer
        uri = totp.provisioning_uri(secret, name, issuer)
        token = self.create_signed_value(ENROL_TOKEN, json.dumps([name, secret])).decode()
        self.finish(
            await self.render_template(
                "mfa_enrol.html",
                username=name,
                secret=secret,
                qr_data_uri=totp.qr_svg_data_uri(uri),
                otpauth_uri=uri,
                enrolment=token,
                error=error,
                next=self.get_argument("next", default=""),
                xsrf=self.xsrf_token.decode("ascii"),
            )
        )


async def in_thread(func: Any, *args: Any) -> Any:
    """Run a blocking registry call (scrypt, SQLite) off the hub's event loop."""
    return await asyncio.get_running_loop().run_in_executor(None, func, *args)
