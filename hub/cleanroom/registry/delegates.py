"""Who acts for a data provider: the accounts an operator grants (the provider's
principals) and the delegates a principal names in the browser.

A delegate acts for the provider like a principal (approves or declines uses, votes on
releases in co-review, accepts quarantined versions) but does not name or remove other
people: naming stays with the principals, and with the operators, who may remove any
account. Every act needs the ``provider`` (or ``operator``) role in standing; a delegate
named by a principal who later loses their account stays a delegate of the provider
(they were named for the provider, not for that person) until someone removes them.

Part of the registry's one writer (mixed into ``Governance``): each write validates first
(a refusal writes nothing) and journals its typed event in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from cleanroom.errors import Conflict, Forbidden, InvalidInput, NotFound
from cleanroom.registry import events
from cleanroom.registry.backbone import actor_name
from cleanroom.registry.database import RegistryDatabase
from cleanroom.registry.models import ProviderAccount, User


@dataclass(frozen=True)
class ProviderAccountInfo:
    """One person who acts for a provider; ``delegated_by`` is empty for a principal
    (granted by an operator), else the principal who named this delegate."""

    provider: str
    user: str
    added_by: str
    added_at: datetime
    delegated_by: str

    @property
    def delegate(self) -> bool:
        """True for a delegate named by a principal."""
        return bool(self.delegated_by)


def _account(s: Session, provider: str, user: str) -> ProviderAccount | None:
    return s.scalar(
        select(ProviderAccount).where(
            ProviderAccount.provider == provider, ProviderAccount.user_name == user
        )
    )


def _info(a: ProviderAccount) -> ProviderAccountInfo:
    return ProviderAccountInfo(a.provider, a.user_name, a.added_by, a.added_at, a.delegated_by)


class DelegateWrites:
    """Provider accounts' delegates and removals (mixed into ``Governance``)."""

    db: RegistryDatabase

    if TYPE_CHECKING:

        def _decider(self, actor: str, role: str, what: str) -> str: ...

    def _principal(self, s: Session, provider: str, actor: str, what: str) -> None:
        account = _account(s, provider, actor)
        if account is None:
            raise Forbidden(f"{actor!r} does not act for {provider!r} and may not {what}")
        if account.delegated_by:
            raise Forbidden(
                f"{actor!r} is a delegate of {provider!r}: only its principals "
                f"(granted by an operator) {what}"
            )

    def name_provider_delegate(self, provider: str, user: str, *, actor: str) -> None:
        """A principal of ``provider`` (role provider, in standing) names ``user`` (who
        holds the provider role) a delegate who acts for it."""
        by = self._decider(actor, "provider", "name delegates")
        user = (user or "").strip()
        if not user:
            raise InvalidInput("name the person to delegate to, by user name")
        with self.db.write() as tx:
            s = tx.session
            self._principal(s, provider, by, "name delegates")
            person = s.get(User, user)
            if person is None:
                raise NotFound(f"there is no user {user!r}")
            if "provider" not in person.role_set:
                raise Forbidden(
                    f"{user!r} does not hold the provider role: an operator grants it first"
                )
            if _account(s, provider, user) is not None:
                raise Conflict(f"{user!r} acts for {provider!r} already")
            s.add(ProviderAccount(provider=provider, user_name=user, added_by=by, delegated_by=by))
            tx.journal(events.ProviderDelegateNamed(actor=by, provider=provider, user=user))

    def remove_provider_account(self, provider: str, user: str, *, actor: str) -> None:
        """``user`` no longer acts for ``provider``: an operator removes any account, a
        principal of the provider removes one of its delegates."""
        name = actor_name(actor)
        with self.db.read() as s:
            person = s.get(User, name)
            # An operator decides as one (their standing checked as an operator's).
            operator = person is not None and "operator" in person.role_set
        by = self._decider(name, "operator" if operator else "provider", "remove provider accounts")
        with self.db.write() as tx:
            s = tx.session
            account = _account(s, provider, user)
            if account is None:
                raise NotFound(f"{user!r} does not act for {provider!r}")
            if not operator:
                self._principal(s, provider, by, "remove delegates")
                if not account.delegated_by:
                    raise Forbidden(
                        f"{user!r} is a principal of {provider!r}: only an operator removes them"
                    )
            delegate = bool(account.delegated_by)
            s.delete(account)
            tx.journal(
                events.ProviderAccountRemoved(
                    actor=by, provider=provider, user=user, delegate=delegate
                )
            )

    def provider_accounts(self, provider: str | None = None) -> list[ProviderAccountInfo]:
        """Everyone who acts for ``provider`` (or for any), principals first."""
        with self.db.read() as s:
            query = select(ProviderAccount)
            if provider is not None:
                query = query.where(ProviderAccount.provider == provider)
            rows = [_info(a) for a in s.scalars(query)]
        return sorted(rows, key=lambda a: (a.provider, a.delegate, a.user))
