"""Storage on SQLite and (marked ``postgres``) a real PostgreSQL server; the audit chain."""

from __future__ import annotations

import inspect
import json
import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from cleanroom.airlock.blobs import BlobStore
from cleanroom.airlock.domain import Decision, State
from cleanroom.airlock.exceptions import IntegrityFailure, InvalidTransition, NotFound
from cleanroom.airlock.models import Base
from cleanroom.airlock.service import Airlock
from cleanroom.airlock.storage import Storage
from sqlalchemy import text

from ..tamper import TAMPERS, Chain, Tamper
from .factories import PROJECT, actor, csv_file, engine_of, request_in, review, submit

READS = ("get_", "list_", "find_", "count_", "audit_")


def test_every_storage_write_takes_an_audit_event() -> None:
    writes = [
        name
        for name, fn in inspect.getmembers(Storage, inspect.isfunction)
        if not name.startswith("_") and not name.startswith(READS)
    ]
    assert writes  # the protocol has writes at all
    for name in writes:
        params = inspect.signature(getattr(Storage, name)).parameters
        assert "audit" in params, f"Storage.{name} writes without an audit event"
        assert params["audit"].kind is inspect.Parameter.KEYWORD_ONLY


def test_migrations_match_the_models(db_url: str, make_airlock) -> None:
    airlock = make_airlock(db_url)
    with engine_of(airlock).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_migrating_twice_is_harmless(db_url: str, make_airlock) -> None:
    make_airlock(db_url)
    airlock = make_airlock(db_url)
    assert airlock.verify_audit().ok


def test_sqlite_runs_in_wal_mode(airlock: Airlock) -> None:
    with engine_of(airlock).connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_whole_lifecycle_round_trips(db_url: str, make_airlock) -> None:
    airlock = make_airlock(db_url)
    released = request_in(airlock, State.RELEASED)
    again = airlock.storage.get_request(released.id)
    assert again.state is State.RELEASED
    assert {v.officer for v in again.votes} == {"olga", "oscar"}
    assert again.created.tzinfo is not None
    assert again.current_files()[0].checks["verdict"] == "pass"
    assert airlock.verify_audit().ok


def test_state_moves_are_conditional(db_url: str, make_airlock) -> None:
    airlock = make_airlock(db_url)
    rid = submit(airlock).id
    with pytest.raises(InvalidTransition):
        airlock.storage.set_state(
            rid,
            State.APPROVED,
            State.RELEASED,
            audit=_event(rid),
        )
    assert airlock.storage.get_request(rid).state is State.SUBMITTED
    # The failed move left no audit entry behind either.
    assert all(r.action != "release" for r in airlock.storage.audit_records())


def _event(rid: str):
    from cleanroom.airlock.domain import Action, AuditEvent

    return AuditEvent(actor="x", action=Action.RELEASE, request_id=rid)


def test_concurrent_appends_keep_one_chain(db_url: str, make_airlock) -> None:
    airlock = make_airlock(db_url)
    rid = submit(airlock).id
    alice = actor(airlock, "alice")

    def views() -> None:
        for _ in range(15):
            airlock.view(alice, rid)

    threads = [threading.Thread(target=views) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = airlock.verify_audit()
    assert result.ok, result.problems
    assert result.count == 1 + 60


def test_filters(db_url: str, make_airlock) -> None:
    airlock = make_airlock(db_url)
    a = submit(airlock).id
    b = request_in(airlock, State.IN_REVIEW).id
    storage = airlock.storage
    assert [r.id for r in storage.list_requests(states=[State.IN_REVIEW])] == [b]
    assert {r.id for r in storage.list_requests(project=PROJECT, author="alice")} == {a, b}
    assert storage.list_requests(project="elsewhere") == []
    with pytest.raises(NotFound):
        storage.get_request("missing")


# -- the audit chain catches every kind of tampering ---------------------------------------


@pytest.fixture
def audited(db_url: str, make_airlock) -> Airlock:
    airlock = make_airlock(db_url)
    rid = submit(airlock).id
    review(airlock, rid, "olga", Decision.APPROVE)
    assert airlock.verify_audit().ok
    return airlock


def _sql(airlock: Airlock, statement: str) -> None:
    with engine_of(airlock).begin() as conn:
        conn.execute(text(statement))


AUDIT_CHAIN = Chain(
    "airlock_audit",
    ("seq", "time", "actor", "action", "request_id", "file_sha256", "detail", "prev_hash", "hash"),
    "airlock_audit_head",
)


@pytest.mark.parametrize("tamper", TAMPERS, ids=lambda t: t.name)
def test_every_kind_of_tampering_is_found(audited: Airlock, tamper: Tamper) -> None:
    n = audited.verify_audit().count
    assert n >= 4  # enough entries for a first, a middle and a last one
    for statement in tamper.statements(AUDIT_CHAIN, n):
        _sql(audited, statement)
    result = audited.verify_audit()
    assert not result.ok
    assert (tamper.at(n), tamper.kind) in [(p.seq, p.kind) for p in result.problems]


def test_an_untouched_chain_reports_nothing(audited: Airlock) -> None:
    result = audited.verify_audit()
    assert result.ok and result.problems == []
    head = audited.storage.audit_head()
    assert head is not None and head.seq == result.count


def test_no_entry_is_appended_over_a_lost_head(audited: Airlock) -> None:
    _sql(audited, "DELETE FROM airlock_audit_head")
    before = audited.verify_audit().count
    with pytest.raises(IntegrityFailure, match="head record is missing"):
        submit(audited)
    assert audited.verify_audit().count == before


def test_export_is_json_lines(audited: Airlock) -> None:
    lines = list(audited.export_audit())
    first = json.loads(lines[0])
    assert first["seq"] == 1 and first["action"] == "submit" and first["prev_hash"] == "0" * 64
    assert len(lines) == audited.verify_audit().count


# -- blobs -----------------------------------------------------------------------------


def test_blobs_are_content_addressed_and_verified(tmp_path) -> None:
    store = BlobStore(tmp_path)
    sha = store.put(b"hello")
    assert store.put(b"hello") == sha
    assert store.get(sha) == b"hello"
    store.path_for(sha).write_bytes(b"jello")
    with pytest.raises(IntegrityFailure):
        store.get(sha)
    # A later put of the true bytes repairs the damaged blob.
    store.put(b"hello")
    assert store.get(sha) == b"hello"
    assert not [p for p in tmp_path.rglob(".tmp-*")]


def test_missing_or_malformed_blob_is_not_found(tmp_path) -> None:
    store = BlobStore(tmp_path)
    with pytest.raises(NotFound):
        store.get("0" * 64)
    with pytest.raises(NotFound):
        store.get("../../etc/passwd")


def test_tampered_blob_is_never_downloaded(airlock: Airlock) -> None:
    released = request_in(airlock, State.RELEASED)
    f = released.current_files()[0]
    airlock.blobs.path_for(f.sha256).write_bytes(b"group,count\nsecret,1\n")
    with pytest.raises(IntegrityFailure):
        airlock.download(actor(airlock, "alice"), released.id, f.path)


def test_stale_review_count_is_refused(db_url: str, make_airlock) -> None:
    from cleanroom.airlock.domain import Action, AuditEvent, Review
    from cleanroom.airlock.storage import StaleRequest

    airlock = make_airlock(db_url)
    rid = submit(airlock).id
    review(airlock, rid, "olga", Decision.APPROVE)
    stale = Review(officer="oscar", round=1, time=airlock.clock())
    with pytest.raises(StaleRequest):
        airlock.storage.complete_review(
            rid,
            stale,
            None,
            0,  # computed before olga's review existed
            audit=AuditEvent(actor="oscar", action=Action.COMPLETE_REVIEW, request_id=rid),
        )
    assert airlock.storage.get_request(rid).reviewers() == ["olga"]


def test_officers_finishing_together_still_decide(db_url: str, make_airlock) -> None:
    airlock = make_airlock(db_url)
    for _ in range(4):
        rid = submit(airlock).id
        for officer in ("olga", "oscar"):
            who = actor(airlock, officer)
            airlock.view(who, rid)
            airlock.vote(who, rid, "out/table.csv", Decision.APPROVE)
        barrier = threading.Barrier(2)

        def finish(officer: str, rid: str = rid, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            airlock.complete_review(actor(airlock, officer), rid)

        threads = [threading.Thread(target=finish, args=(o,)) for o in ("olga", "oscar")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert airlock.storage.get_request(rid).state is State.APPROVED
    assert airlock.verify_audit().ok


@pytest.mark.parametrize("with_key", [True, False])
def test_racing_identical_submissions_make_one_request(
    db_url: str, make_airlock, with_key: bool
) -> None:
    airlock = make_airlock(db_url)
    alice = actor(airlock, "alice", PROJECT)
    barrier = threading.Barrier(4)
    results: list[str] = []

    def send() -> None:
        barrier.wait()
        done = airlock.submit(
            alice, PROJECT, "double click", [csv_file()], "key-1" if with_key else None
        )
        results.append(done.request.id)

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and len(set(results)) == 1
    assert len(airlock.storage.list_requests()) == 1
    assert airlock.verify_audit().ok
