"""People's standing in the registry: second factors, recovery codes, log-in failures and
locks, identity verification, training, account state, and applications' data
processing assessments.

Every change is a domain method that writes its typed journal event
(:mod:`cleanroom.registry.events`) in the same transaction, through the registry's write
transactions (the Governance pattern, docs/development.md "How to add a registry write");
every refusal raises before any write. The tables live in :mod:`cleanroom.registry.models`.

Two pieces of state are *operational* and not journaled (see
:mod:`cleanroom.registry.database`): the failed sign-in counters (with their clearing on a
successful sign-in) and the last TOTP step used. A lock, an unlock, an enrolment, a
recovery code used and every record about a person are journaled.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from cleanroom.errors import Conflict, Forbidden, InvalidInput, NotFound
from cleanroom.identity import throttle, totp
from cleanroom.identity.policy import IdentityPolicy, load_policy
from cleanroom.registry import events
from cleanroom.registry.models import (
    AccountState,
    Application,
    CliSession,
    ExternalFactor,
    IdentityVerification,
    LoginFailures,
    ProcessingAssessment,
    RecoveryCode,
    SecondFactor,
    TotpStep,
    TrainingRecord,
    User,
)
from cleanroom.registry.passwords import hash_password, verify_password
from cleanroom.registry.store import Registry, user_row

PRIVILEGED_ROLES = frozenset({"officer", "operator", "provider"})

READS = (
    "is_",
    "mfa_enrolled",
    "recovery_codes_left",
    "actor_of_token",
    "any_operator_in_standing",
    "account_block",
    "standing",
    "check_",
    "can_",
    "lifecycle_actor",
    "assessment",
    "throttle_verdict",
)
"""Prefixes of :class:`People`'s public methods that only read; every other one writes,
journaled (tests/unit/test_registry_writer.py holds each to one entry of its kind)."""


CLI_TOKEN_PREFIX = "crcli_"
"""What every command-line token starts with (never "-": see open_cli_session)."""


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    # SQLite gives back naive datetimes; every stored time is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


# -- what callers see -----------------------------------------------------------------
@dataclass(frozen=True)
class Standing:
    """A person's standing now: what blocks them, in words they can act on."""

    user: str
    roles: frozenset[str]
    mfa: bool
    verified: bool
    missing_training: tuple[str, ...]
    disabled: bool
    expired: bool
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """True when nothing blocks this person."""
        return not self.problems


@dataclass(frozen=True)
class LoginOutcome:
    """The answer to one log-in attempt."""

    ok: bool
    message: str = ""
    needs_enrolment: bool = False
    used_recovery_code: bool = False


def _actor(value: str) -> str:
    if not value or not value.strip():
        raise InvalidInput("every act needs an actor (who does it)")
    return value.strip()


# A hash checked when the user does not exist, so that the answer takes as long.
@functools.cache
def _dummy_hash() -> str:
    return hash_password("not-a-password-of-anyone")


class People:
    """The identity side of the registry, with journaled writes."""

    def __init__(self, registry: Registry | None = None, policy: IdentityPolicy | None = None):
        self.registry = registry or Registry()
        self.policy = policy or load_policy()
        self.db = self.registry.db

    # -- log-in ----------------------------------------------------------------------
    def attempt(
        self, name: str, password: str, code: str, address: str, *, now: datetime | None = None
    ) -> LoginOutcome:
        """Check one log-in: throttle, password (constant time), account, second factor.

        Every failure answers with the same message whether or not ``name`` exists.
        """
        now = now or _now()
        name = name.strip().lower()[:64]
        verdict = self.throttle_verdict(name, address, now=now)
        if not verdict.allowed:
            return LoginOutcome(False, verdict.message)
        with self.registry.session() as s:
            user = s.get(User, name)
            stored = user.password_hash if user is not None else None
        # Verify against a dummy hash for unknown names: same work, same time.
        password_ok = verify_password(password, stored or _dummy_hash()) and stored is not None
        if not password_ok:
            return self._fail(name, address, now)
        blocked = self.account_block(name, today=now.date())
        if blocked:
            # The password was right, so saying why is no leak; it is not a failure either.
            return LoginOutcome(False, blocked)
        if not self.mfa_enrolled(name):
            if code.strip():
                return self._fail(name, address, now)
            return LoginOutcome(True, needs_enrolment=True)
        if not code.strip():
            return LoginOutcome(False, "Enter the code from your authenticator app.")
        used_recovery = False
        if totp.looks_like_totp(code):
            ok = self._use_totp(name, code, now)
        else:
            ok = used_recovery = self._use_recovery_code(name, code)
        if not ok:
            return self._fail(name, address, now)
        self._succeed(name, address)
        return LoginOutcome(True, used_recovery_code=used_recovery)

    def throttle_verdict(
        self, name: str, address: str, *, now: datetime | None = None
    ) -> throttle.Verdict:
        """Whether an attempt for ``name`` from ``address`` may go ahead now."""
        now = now or _now()
        policy = self.policy.login
        window = now - timedelta(minutes=policy.window_minutes)
        with self.registry.session() as s:
            account = s.get(LoginFailures, f"user:{name}")
            where = s.get(LoginFailures, f"addr:{address}")
            acc_count, acc_last, acc_lock = self._counts(account, window)
            addr_count, addr_last, _ = self._counts(where, window)
        verdict = throttle.account_verdict(acc_count, acc_last, acc_lock, now, policy)
        if not verdict.allowed:
            return verdict
        return throttle.address_verdict(addr_count, addr_last, now, policy)

    @staticmethod
    def _counts(
        row: LoginFailures | None, window: datetime
    ) -> tuple[int, datetime | None, datetime | None]:
        if row is None:
            return 0, None, None
        last = _aware(row.last_failure_at)
        count = row.count if last is not None and last >= window else 0
        return count, last, _aware(row.locked_until)

    def _fail(self, name: str, address: str, now: datetime) -> LoginOutcome:
        policy = self.policy.login
        window = now - timedelta(minutes=policy.window_minutes)
        # The counters are operational state; a lock is an event, journaled with them.
        with self.db.write() as tx:
            s = tx.session
            for key in (f"user:{name}", f"addr:{address}"):
                row = s.get(LoginFailures, key)
                if row is None:
                    row = LoginFailures(key=key, count=0)
                    s.add(row)
                last = _aware(row.last_failure_at)
                row.count = (row.count if last is not None and last >= window else 0) + 1
                row.last_failure_at = now
                if key.startswith("user:") and throttle.should_lock(row.count, policy):
                    row.locked_until = now + timedelta(minutes=policy.lock_minutes)
                    row.count = 0
                    tx.journal(
                        events.LoginLocked(
                            actor="system", user=name, address=address, until=row.locked_until
                        )
                    )
        return LoginOutcome(False, throttle.INVALID)

    def _succeed(self, name: str, address: str) -> None:
        with self.db.operational() as s:
            for key in (f"user:{name}", f"addr:{address}"):
                row = s.get(LoginFailures, key)
                if row is not None:
                    row.count, row.last_failure_at = 0, None

    def unlock(self, name: str, *, actor: str) -> None:
        """An operator lifts a lock and forgets the account's failures (journaled)."""
        actor, _ = self.lifecycle_actor(actor, "unlock accounts")
        with self.db.write() as tx:
            user_row(tx.session, name)
            row = tx.session.get(LoginFailures, f"user:{name}")
            if row is None or (row.count == 0 and row.locked_until is None):
                raise Conflict(f"{name!r} is not locked and has no failed sign-ins")
            row.count, row.last_failure_at, row.locked_until = 0, None, None
            tx.journal(events.LoginUnlocked(actor=actor, user=name))

    def is_locked(self, name: str, *, now: datetime | None = None) -> bool:
        """True while the account is locked."""
        now = now or _now()
        with self.registry.session() as s:
            row = s.get(LoginFailures, f"user:{name}")
            until = _aware(row.locked_until) if row else None
            return until is not None and until > now

    # -- second factors --------------------------------------------------------------
    def mfa_enrolled(self, name: str) -> bool:
        """True when ``name`` has a second factor (here, or confirmed by their IdP)."""
        with self.registry.session() as s:
            return s.get(SecondFactor, name) is not None or s.get(ExternalFactor, name) is not None

    def record_external_factor(self, name: str, issuer: str, methods: list[str]) -> None:
        """An identity provider confirmed ``name``'s second factor at this log-in.

        Recorded (and journaled) when first seen and whenever the issuer or the methods
        change; a sign-in that confirms the same factor again changes nothing, so the
        journal is not one entry per sign-in.
        """
        joined = ",".join(methods)
        with self.db.read() as s:
            user_row(s, name)
            known = s.get(ExternalFactor, name)
            if known is not None and (known.issuer, known.methods) == (issuer, joined):
                return
        with self.db.write() as tx:
            row = tx.session.get(ExternalFactor, name)
            if row is None:
                row = ExternalFactor(user_name=name)
                tx.session.add(row)
            row.issuer, row.methods, row.seen_at = issuer, joined, _now()
            tx.journal(
                events.ExternalFactorRecorded(
                    actor=name, user=name, issuer=issuer, methods=tuple(methods)
                )
            )

    def enrol(self, name: str, secret: str, code: str, *, now: datetime | None = None) -> list[str]:
        """Enrol ``secret`` once ``code`` proves the person's app holds it; returns the
        recovery codes (shown once, stored hashed)."""
        at = (now or _now()).timestamp()
        step = totp.matching_step(secret, code, at=at)
        if step is None:
            raise InvalidInput("that code does not match: check your app's clock and try again")
        codes = totp.new_recovery_codes(self.policy.recovery_codes)
        with self.db.write() as tx:
            s = tx.session
            user_row(s, name)
            if s.get(SecondFactor, name) is not None:
                raise Conflict(f"{name!r} has a second factor already")
            s.add(SecondFactor(user_name=name, secret=secret))
            step_row = s.get(TotpStep, name)
            if step_row is None:
                s.add(TotpStep(user_name=name, last_step=step))
            else:  # left from a factor an operator reset: the new one starts here
                step_row.last_step = step
            for c in codes:
                s.add(RecoveryCode(user_name=name, code_hash=totp.hash_recovery_code(c)))
            tx.journal(
                events.SecondFactorEnrolled(actor=name, user=name, method="totp", codes=len(codes))
            )
        return codes

    def reset_mfa(self, name: str, *, actor: str, reason: str) -> None:
        """An operator removes a person's second factor and recovery codes (journaled);
        the person enrols again at their next log-in."""
        actor, _ = self.lifecycle_actor(actor, "reset second factors")
        if not reason.strip():
            raise InvalidInput("resetting a second factor needs a reason")
        with self.db.write() as tx:
            s = tx.session
            user_row(s, name)
            factor = s.get(SecondFactor, name)
            if factor is None:
                raise Conflict(f"{name!r} has no second factor to reset")
            s.delete(factor)
            for row in s.scalars(select(RecoveryCode).where(RecoveryCode.user_name == name)):
                s.delete(row)
            tx.journal(events.SecondFactorReset(actor=actor, user=name, reason=reason.strip()))

    def recovery_codes_left(self, name: str) -> int:
        """How many unused recovery codes ``name`` holds."""
        with self.registry.session() as s:
            rows = s.scalars(
                select(RecoveryCode).where(
                    RecoveryCode.user_name == name, RecoveryCode.used_at.is_(None)
                )
            )
            return len(list(rows))

    def _use_totp(self, name: str, code: str, now: datetime) -> bool:
        # Operational: the replay guard's step moves at every sign-in (not journaled).
        with self.db.operational() as s:
            factor = s.get(SecondFactor, name)
            if factor is None:
                return False
            guard = s.get(TotpStep, name)
            if guard is None:
                guard = TotpStep(user_name=name, last_step=-1)
                s.add(guard)
            step = totp.matching_step(
                factor.secret, code, after_step=guard.last_step, at=now.timestamp()
            )
            if step is None:
                return False
            guard.last_step = step
            return True

    def _use_recovery_code(self, name: str, code: str) -> bool:
        wanted = totp.hash_recovery_code(code)
        with self.db.write() as tx:
            rows = list(
                tx.session.scalars(
                    select(RecoveryCode).where(
                        RecoveryCode.user_name == name, RecoveryCode.used_at.is_(None)
                    )
                )
            )
            match = None
            for row in rows:
                if hmac.compare_digest(row.code_hash, wanted):
                    match = row
            if match is None:
                return False
            match.used_at = _now()
            tx.journal(events.RecoveryCodeUsed(actor=name, user=name, left=len(rows) - 1))
            return True

    # -- the command line's personal credentials -----------------------------------
    CLI_SESSION_HOURS = 12

    def open_cli_session(self, name: str, password: str, code: str) -> str:
        """``cleanroom login``: the same checks as the web log-in (throttle, password,
        second factor), then a personal token for the command line, valid 12 hours."""
        outcome = self.attempt(name, password, code, "cli")
        if outcome.needs_enrolment:
            raise Forbidden(
                "set up your second factor first: sign in once on the web (QR code page)"
            )
        if not outcome.ok:
            raise Forbidden(outcome.message)
        # A prefix: a token that began with "-" (one in 32 of token_urlsafe's) would read as
        # an option in `cleanroom ... --token TOKEN`; it also names what a leaked one is.
        token = CLI_TOKEN_PREFIX + secrets.token_urlsafe(32)
        person = name.strip().lower()
        with self.db.write() as tx:
            tx.session.add(
                CliSession(
                    token_hash=hashlib.sha256(token.encode()).hexdigest(),
                    user_name=person,
                    expires_at=_now() + timedelta(hours=self.CLI_SESSION_HOURS),
                )
            )
            tx.journal(events.CliLoggedIn(actor=person, user=person))
        return token

    def actor_of_token(self, token: str) -> str:
        """The person a command-line token belongs to, or Forbidden (unknown, expired,
        or the person may no longer log in)."""
        digest = hashlib.sha256(token.strip().encode()).hexdigest()
        with self.registry.session() as s:
            row = s.get(CliSession, digest)
            expires = _aware(row.expires_at) if row else None
            name = row.user_name if row else ""
        if row is None or expires is None or expires <= _now():
            raise Forbidden(
                "this command-line credential is unknown or expired: run cleanroom login"
            )
        blocked = self.account_block(name)
        if blocked:
            raise Forbidden(blocked)
        return name

    def close_cli_session(self, token: str) -> None:
        """Forget a command-line token (``cleanroom logout``)."""
        digest = hashlib.sha256(token.strip().encode()).hexdigest()
        with self.db.write() as tx:
            row = tx.session.get(CliSession, digest)
            if row is not None:
                tx.session.delete(row)
                tx.journal(events.CliLoggedOut(actor=row.user_name, user=row.user_name))

    def any_operator_in_standing(self) -> bool:
        """True once some operator may act (verified, trained, with a second factor):
        until then the lifecycle verbs bootstrap from the host (see docs/identity.md)."""
        with self.registry.session() as s:
            names = [u.name for u in s.scalars(select(User)) if "operator" in u.role_set]
        return any(self.can_act(n, "operator") for n in names)

    # -- verification, training, account state --------------------------------------
    def record_verification(
        self, name: str, method: str, *, actor: str, reference: str = "", at: datetime | None = None
    ) -> None:
        """Record how ``name``'s identity was verified, by ``actor`` (journaled)."""
        actor, bootstrap = self.lifecycle_actor(actor, "verify identities")
        if method not in self.policy.verification_methods:
            raise InvalidInput(
                f"unknown verification method {method!r}: use "
                + ", ".join(self.policy.verification_methods)
            )
        if actor == name:
            raise Forbidden("nobody verifies their own identity")
        with self.db.write() as tx:
            user_row(tx.session, name)
            row = IdentityVerification(
                user_name=name, method=method, reference=reference, verified_by=actor
            )
            if at is not None:
                row.verified_at = at
            tx.session.add(row)
            tx.journal(
                events.IdentityVerified(
                    actor=actor, user=name, method=method, reference=reference, bootstrap=bootstrap
                )
            )

    def record_training(
        self,
        name: str,
        course: str,
        *,
        passed_on: date,
        expires_on: date | None,
        actor: str,
    ) -> None:
        """Record a passed course and its expiry (journaled)."""
        actor, bootstrap = self.lifecycle_actor(actor, "record training")
        if not course.strip():
            raise InvalidInput("a training record needs a course")
        if expires_on is not None and expires_on < passed_on:
            raise InvalidInput(
                f"training cannot expire ({expires_on}) before it was passed ({passed_on})"
            )
        if passed_on > date.today():
            raise InvalidInput(f"a course passed on {passed_on} is in the future")
        with self.db.write() as tx:
            user_row(tx.session, name)
            tx.session.add(
                TrainingRecord(
                    user_name=name,
                    course=course.strip(),
                    passed_on=passed_on,
                    expires_on=expires_on,
                    recorded_by=actor,
                )
            )
            tx.journal(
                events.TrainingRecorded(
                    actor=actor,
                    user=name,
                    course=course.strip(),
                    passed_on=passed_on,
                    expires_on=expires_on,
                    bootstrap=bootstrap,
                )
            )

    def set_disabled(self, name: str, disabled: bool, *, actor: str, reason: str = "") -> None:
        """Disable (with a reason) or enable an account (journaled)."""
        actor, _ = self.lifecycle_actor(actor, "disable or enable accounts")
        if disabled and not reason.strip():
            raise InvalidInput("disabling an account needs a reason")
        with self.db.write() as tx:
            s = tx.session
            user_row(s, name)
            state = s.get(AccountState, name)
            if state is None:
                state = AccountState(user_name=name, disabled=False, reason="")
                s.add(state)
            if bool(state.disabled) == disabled:
                raise Conflict(f"{name!r} is {'disabled' if disabled else 'enabled'} already")
            state.disabled, state.reason = disabled, reason.strip()
            kind = events.AccountDisabled if disabled else events.AccountEnabled
            tx.journal(kind(actor=actor, user=name, reason=reason.strip()))

    def set_expiry(self, name: str, expires_on: date | None, *, actor: str) -> None:
        """Set (or clear, with None) the day after which an account may not log in."""
        actor, _ = self.lifecycle_actor(actor, "set account expiry")
        with self.db.write() as tx:
            s = tx.session
            user_row(s, name)
            state = s.get(AccountState, name)
            if state is None:
                state = AccountState(user_name=name, disabled=False, reason="")
                s.add(state)
            before = state.expires_on
            state.expires_on = expires_on
            tx.journal(
                events.AccountExpirySet(actor=actor, user=name, before=before, after=expires_on)
            )

    def account_block(self, name: str, *, today: date | None = None) -> str:
        """Why ``name`` may not log in at all (disabled, expired), or ``""``."""
        today = today or date.today()
        with self.registry.session() as s:
            state = s.get(AccountState, name)
            if state is None:
                return ""
            if state.disabled:
                return "This account is disabled" + (f": {state.reason}" if state.reason else ".")
            if state.expires_on is not None and state.expires_on < today:
                return f"This account expired on {state.expires_on}."
        return ""

    def standing(self, name: str, *, today: date | None = None) -> Standing:
        """Everything that blocks ``name`` now, each as a sentence."""
        today = today or date.today()
        problems: list[str] = []
        with self.registry.session() as s:
            user = user_row(s, name)
            roles = frozenset(user.role_set)
            verifications = list(
                s.scalars(
                    select(IdentityVerification)
                    .where(IdentityVerification.user_name == name)
                    .order_by(IdentityVerification.verified_at.desc())
                )
            )
            records = list(
                s.scalars(select(TrainingRecord).where(TrainingRecord.user_name == name))
            )
            mfa = s.get(SecondFactor, name) is not None or s.get(ExternalFactor, name) is not None
        blocked = self.account_block(name, today=today)
        if blocked:
            problems.append(blocked)
        disabled = blocked.startswith("This account is disabled")
        expired = bool(blocked) and not disabled
        verified = False
        if not verifications:
            problems.append(
                f"{name}'s identity has not been verified yet: an operator records it "
                "(cleanroom people verify)."
            )
        else:
            newest = _aware(verifications[0].verified_at)
            valid_days = self.policy.verification_valid_days
            assert newest is not None
            if valid_days and newest.date() + timedelta(days=valid_days) < today:
                problems.append(
                    f"{name}'s identity verification of {newest.date()} expired after "
                    f"{valid_days} days: it must be renewed."
                )
            else:
                verified = True
        missing: list[str] = []
        for course in self.policy.courses_for(roles):
            passes = [r for r in records if r.course == course]
            current = [r for r in passes if r.expires_on is None or r.expires_on >= today]
            if current:
                continue
            missing.append(course)
            if passes:
                last = max(r.expires_on for r in passes if r.expires_on is not None)
                problems.append(f"{name}'s training {course!r} expired on {last}.")
            else:
                problems.append(f"{name} has not passed the training {course!r}.")
        return Standing(
            user=name,
            roles=roles,
            mfa=mfa,
            verified=verified,
            missing_training=tuple(missing),
            disabled=disabled,
            expired=expired,
            problems=tuple(problems),
        )

    def check_may_start(self, name: str) -> None:
        """Raise Forbidden, saying why, unless ``name`` may start a workspace now."""
        standing = self.standing(name)
        if not standing.ok:
            raise Forbidden("Workspace start refused: " + " ".join(standing.problems))

    def check_may_act(self, name: str, role: str, *, what: str = "act") -> None:
        """Raise Forbidden unless ``name`` holds ``role``, has a second factor, and is
        verified, trained and active: the rule for every decision (approvals, reviews,
        grants)."""
        with self.registry.session() as s:
            user = s.get(User, name)
            roles = user.role_set if user else set()
        if user is None:
            raise Forbidden(f"{name!r} is not a registered person and may not {what}")
        if role not in roles:
            raise Forbidden(f"{name!r} does not hold the {role} role and may not {what}")
        standing = self.standing(name)
        problems = list(standing.problems)
        if role in PRIVILEGED_ROLES and not standing.mfa:
            problems.insert(0, f"{name} has no second factor enrolled.")
        if problems:
            raise Forbidden(f"{name!r} may not {what}: " + " ".join(problems))

    def check_may_decide(self, name: str, roles: tuple[str, ...], *, what: str) -> str:
        """Raise Forbidden unless ``name`` holds one of ``roles`` (the first they hold
        counts, so list the strongest first) and may act in it (:meth:`check_may_act`);
        returns that role. For decisions more than one role may take (an operator or the
        dataset's provider deletes it; an officer or an operator grants egress)."""
        with self.registry.session() as s:
            user = s.get(User, name)
            held = user.role_set if user else set()
        if user is None:
            raise Forbidden(f"{name!r} is not a registered person and may not {what}")
        role = next((r for r in roles if r in held), None)
        if role is None:
            raise Forbidden(
                f"{name!r} holds none of the roles {' or '.join(roles)} and may not {what}"
            )
        self.check_may_act(name, role, what=what)
        return role

    def can_act(self, name: str, role: str) -> bool:
        """True when :meth:`check_may_act` would pass."""
        try:
            self.check_may_act(name, role)
        except Forbidden:
            return False
        return True

    def lifecycle_actor(self, actor: str, what: str) -> tuple[str, bool]:
        """(actor, bootstrap) for an act on people's records: an operator in standing, or,
        while no operator is in standing yet, anyone the host names (``bootstrap``, so the
        first operator can be verified and trained). The journal records which."""
        actor = _actor(actor)
        if not self.any_operator_in_standing():
            return actor, True
        self.check_may_act(actor, "operator", what=what)
        return actor, False

    # -- data processing assessments -------------------------------------------------
    def record_assessment(
        self, application_id: int, *, reference: str, outcome: str, actor: str
    ) -> None:
        """Record (or replace) an application's data processing assessment (journaled), by
        an operator in standing."""
        actor = _actor(actor)
        self.check_may_act(actor, "operator", what="record data processing assessments")
        if not reference.strip():
            raise InvalidInput("a data processing assessment needs a reference")
        if not outcome.strip():
            raise InvalidInput("a data processing assessment needs an outcome")
        with self.db.write() as tx:
            s = tx.session
            app = s.get(Application, application_id)
            if app is None:
                raise NotFound(f"there is no application {application_id}")
            if app.status == "draft":
                raise Conflict(
                    f"application {application_id} is a draft: it is assessed once submitted"
                )
            if app.status != "pending":
                raise Conflict(f"application {application_id} is {app.status} already")
            row = s.get(ProcessingAssessment, application_id)
            if row is None:
                row = ProcessingAssessment(application_id=application_id)
                s.add(row)
            row.reference, row.outcome, row.recorded_by = reference.strip(), outcome.strip(), actor
            row.recorded_at = _now()
            tx.journal(
                events.AssessmentRecorded(
                    actor=actor,
                    application=application_id,
                    reference=reference.strip(),
                    outcome=outcome.strip(),
                )
            )

    def assessment(self, application_id: int) -> tuple[str, str] | None:
        """(reference, outcome) of an application's assessment, or None."""
        with self.registry.session() as s:
            row = s.get(ProcessingAssessment, application_id)
            return (row.reference, row.outcome) if row else None

    def check_assessment(self, s: Session, application_id: int) -> None:
        """Inside a Governance transaction: refuse approval without an approving
        data processing assessment."""
        row = s.get(ProcessingAssessment, application_id)
        if row is None:
            raise Forbidden(
                f"application {application_id} has no data processing assessment: record its "
                "reference and outcome first (cleanroom applications assess)"
            )
        if row.outcome not in self.policy.approving_outcomes:
            raise Forbidden(
                f"application {application_id}'s data processing assessment {row.reference} "
                f"has outcome {row.outcome!r}, which does not allow approval"
            )


@functools.cache
def _shared_people(url: str) -> People:
    from cleanroom.registry.store import shared_registry

    return People(shared_registry(url))


def shared_people(registry: Registry) -> People:
    """One :class:`People` per registry URL for a long-running process (hub, spawner)."""
    return _shared_people(registry.url)
