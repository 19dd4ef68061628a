"""The registry's database: engine, read-only and journaled write transactions, upgrades.

Two kinds of transaction, and only two:

- :meth:`RegistryDatabase.read` gives a session that cannot write: a flush carrying any
  change, or an INSERT/UPDATE/DELETE statement, raises :class:`ReadOnly`.
  :class:`cleanroom.registry.Registry` reads through it.
- :meth:`RegistryDatabase.write` gives a :class:`Write`; its changes commit only together
  with at least one journal entry (:meth:`Write.journal`), or not at all
  (:class:`JournalMissing`). :class:`cleanroom.registry.governance.Governance`, the
  registry's one writer, is its only caller.

So no change exists without its journal record and no record describes a change that did
not happen; a test proves it for every write (tests/unit/test_registry_writer.py).

One exception, by design: *operational* tables (marked with
:data:`cleanroom.registry.models.OPERATIONAL`: sign-in failure counters, the last TOTP
step used) hold state the system keeps to run, not anyone's act. They are changed in
:meth:`RegistryDatabase.operational` transactions, which need no journal entry and refuse
to change anything else (:class:`OperationalOnly`); the acts around them (an account
locked, an operator's unlock) are journaled. Why: a failed sign-in is made by whoever
reaches the log-in page, named or not, so journaling each would let an anonymous client
grow the hash-chained journal with names of its choosing; the lock is the signal, and the
hub's log has every attempt. A TOTP step moves at every sign-in and records nothing.

The schema is created with ``create_all`` plus idempotent upgrade steps (:meth:`_upgrade`),
each run once, when what it introduces is missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, inspect, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from cleanroom import paths
from cleanroom.errors import CleanroomError
from cleanroom.registry import journal
from cleanroom.registry.events import (
    ApplicationUsesBuilt,
    ApprovalsGrandfathered,
    JournalEvent,
    JournalHeadBuilt,
)
from cleanroom.registry.models import (
    Application,
    ApplicationUse,
    Base,
    Dataset,
    DatasetApproval,
    JournalEntry,
    JournalHead,
    ProjectDataset,
    is_operational,
)

_WRITER = "cleanroom.registry.writer"
_CHANGED = "cleanroom.registry.changed"
_JOURNALED = "cleanroom.registry.journaled"
_OPERATIONAL = "cleanroom.registry.operational"
_JOURNAL_TABLES = (JournalEntry, JournalHead)


class ReadOnly(CleanroomError):
    """A read transaction tried to change the registry (a programming error)."""


class JournalMissing(CleanroomError):
    """A write transaction changed the registry without a journal entry: rolled back."""


class OperationalOnly(CleanroomError):
    """An operational transaction tried to change a journaled table (a programming
    error): rolled back."""


def _changes(session: Session) -> list[Any]:
    dirty = [o for o in session.dirty if session.is_modified(o)]
    return [
        o for o in (*session.new, *session.deleted, *dirty) if not isinstance(o, _JOURNAL_TABLES)
    ]


def _check(session: Session, changed: list[Any]) -> None:
    """Hold ``changed`` rows to the rules; note a change that needs its journal entry."""
    if not changed:
        return
    if not session.info.get(_WRITER):
        raise ReadOnly(
            "registry reads never write; make changes through Governance "
            f"(tried to change {type(changed[0]).__name__})"
        )
    recorded = [o for o in changed if not is_operational(type(o).__table__)]
    if recorded and session.info.get(_OPERATIONAL):
        raise OperationalOnly(
            "an operational transaction changes operational state only "
            f"(tried to change {type(recorded[0]).__name__})"
        )
    if recorded:
        session.info[_CHANGED] = True


def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    _check(session, _changes(session))


def _on_execute(state: ORMExecuteState) -> None:
    # Statement-level writes (session.execute(update(...))) never reach a flush: the same
    # rules apply to them. The journal's own tables are written by the ORM only.
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    session = state.session
    if not session.info.get(_WRITER):
        raise ReadOnly("registry reads never write; make changes through Governance")
    table = getattr(state.statement, "table", None)
    if is_operational(table):
        return
    if session.info.get(_OPERATIONAL):
        raise OperationalOnly("an operational transaction changes operational state only")
    session.info[_CHANGED] = True


def _before_commit(session: Session) -> None:
    # Runs before the commit's own final flush, so count what is still pending too.
    _check(session, _changes(session))
    if session.info.get(_CHANGED) and not session.info.get(_JOURNALED):
        raise JournalMissing("a registry change without its journal entry was refused")


def _sqlite_transactions(engine: Engine) -> None:
    """WAL (the hub reads while the command line writes), foreign keys, and write
    transactions that take the write lock when they begin, so two writers queue instead
    of one failing when it first writes after the other committed."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.get_execution_options().get(_WRITER, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


class Write:
    """One write transaction: change rows through ``session``, then :meth:`journal` it."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def journal(self, event: JournalEvent) -> journal.Entry:
        """Append ``event`` to the journal in this transaction."""
        entry = journal.append(self.session, event)
        self.session.info[_JOURNALED] = True
        return entry


class RegistryDatabase:
    """The registry's engine and its two kinds of transaction."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or paths.registry_url()
        if self.url.startswith("sqlite:///"):
            Path(self.url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        url = self.url
        if url.startswith("postgresql://"):  # the driver we install is psycopg (3)
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        self.engine = create_engine(url, future=True)
        if self.engine.dialect.name == "sqlite":
            _sqlite_transactions(self.engine)
        self._reads = sessionmaker(self.engine, expire_on_commit=False)
        self._writes = sessionmaker(
            self.engine.execution_options(**{_WRITER: True}), expire_on_commit=False
        )
        for maker in (self._reads, self._writes):
            event.listen(maker, "before_flush", _before_flush)
            event.listen(maker, "before_commit", _before_commit)
            event.listen(maker, "do_orm_execute", _on_execute)
        self._upgrade()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only transaction (any attempt to change a row raises :class:`ReadOnly`)."""
        with self._reads() as session, session.begin():
            yield session

    @contextmanager
    def write(self) -> Iterator[Write]:
        """A write transaction: committed with its journal entries, or rolled back whole."""
        with self._writes() as session, session.begin():
            session.info[_WRITER] = True
            yield Write(session)

    @contextmanager
    def operational(self) -> Iterator[Session]:
        """A transaction that changes operational tables only (no journal entry needed;
        any other change raises :class:`OperationalOnly`)."""
        with self._writes() as session, session.begin():
            session.info[_WRITER] = True
            session.info[_OPERATIONAL] = True
            yield session

    # -- upgrade steps -----------------------------------------------------------------
    def _upgrade(self) -> None:
        """Create missing tables, then run each upgrade step whose table was missing."""
        existing = set(inspect(self.engine).get_table_names())
        Base.metadata.create_all(self.engine)
        if "journal_head" not in existing:
            self._build_journal_head()
        if "dataset_approvals" not in existing:
            self._grandfather_dataset_links()
        if "projects" in existing:
            self._add_access_mode_column()
        if "applications" in existing:
            self._add_column("applications", "assessment_reference", "VARCHAR(200)", "''")
        if "provider_accounts" in existing:
            self._add_column("provider_accounts", "delegated_by", "VARCHAR(32)", "''")
        if "applications" in existing and "application_uses" not in existing:
            self._build_application_uses()

    def _add_access_mode_column(self) -> None:
        """Upgrade step, run when ``projects`` lacks ``access_mode`` (restricted mode).

        Not journaled: it changes no project's meaning, since every project before it
        ran in the standard mode, which is the column's default.
        """
        columns = {c["name"] for c in inspect(self.engine).get_columns("projects")}
        if "access_mode" in columns:
            return
        with self.engine.begin() as conn:
            conn.exec_driver_sql(
                "ALTER TABLE projects ADD COLUMN access_mode VARCHAR(20) "
                "NOT NULL DEFAULT 'standard'"
            )

    def _add_column(self, table: str, column: str, kind: str, default: str) -> None:
        """Upgrade step: add ``column`` to ``table`` when it lacks it (not journaled: the
        default keeps every existing row's meaning). The same SQL runs on SQLite and
        PostgreSQL."""
        if column in {c["name"] for c in inspect(self.engine).get_columns(table)}:
            return
        with self.engine.begin() as conn:
            conn.exec_driver_sql(
                f"ALTER TABLE {table} ADD COLUMN {column} {kind} NOT NULL DEFAULT {default}"
            )

    def _build_application_uses(self) -> None:
        """Upgrade step, run once when providers start deciding applications' uses.

        An application still waiting for its decision gets one waiting use per wanted
        dataset, at the newest version (what its approval linked before), so its providers
        decide it like any new one; journaled, with the datasets no longer registered.
        """
        with self.write() as tx:
            s = tx.session
            built, missing = [], []
            for app in s.scalars(select(Application).where(Application.status == "pending")):
                for name in (n for n in app.datasets.split(",") if n):
                    d = s.scalars(
                        select(Dataset)
                        .where(Dataset.name == name)
                        .order_by(Dataset.registered_at.desc())
                    ).first()
                    if d is None:
                        missing.append(f"{app.id}:{name}")
                        continue
                    app.uses.append(
                        ApplicationUse(
                            dataset_name=d.name, dataset_version=d.version, provider=d.provider
                        )
                    )
                    built.append(f"{app.id}:{d.name}@{d.version}")
            if built or missing:
                tx.journal(
                    ApplicationUsesBuilt(actor="upgrade", uses=tuple(built), missing=tuple(missing))
                )

    def _build_journal_head(self) -> None:
        """Upgrade step, run once when the journal's head record is introduced.

        The head is built from the last existing entry; the step itself is journaled, so
        the journal says from which entry on truncation is detected.
        """
        with self.write() as tx:
            last = journal.build_head(tx.session)
            if last is not None:
                tx.journal(JournalHeadBuilt(actor="upgrade", seq=last))

    def _grandfather_dataset_links(self) -> None:
        """Upgrade step, run once when provider approvals are introduced.

        Links made before providers approved each use were made by an operator on the
        provider's behalf; recording them as approved (by ``upgrade``, visibly) keeps a
        running deployment's workspaces starting, while every new link needs a provider.
        """
        with self.write() as tx:
            links = list(tx.session.scalars(select(ProjectDataset)))
            if not links:
                return
            for link in links:
                tx.session.add(
                    DatasetApproval(
                        project_name=link.project_name,
                        dataset_name=link.dataset_name,
                        dataset_version=link.dataset_version,
                        approved_by="upgrade",
                    )
                )
            tx.journal(
                ApprovalsGrandfathered(
                    actor="upgrade",
                    links=tuple(
                        f"{x.project_name}:{x.dataset_name}@{x.dataset_version}" for x in links
                    ),
                )
            )
