"""SQLAlchemy tables of the airlock's own database.

The schema is created and changed only by the Alembic migrations in ``migrations/``;
a test checks that the migrations and these models agree.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Declarative base of the airlock tables."""


class RequestRow(Base):
    """One release request."""

    __tablename__ = "airlock_requests"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project: Mapped[str] = mapped_column(String(255), index=True)
    author: Mapped[str] = mapped_column(String(255), index=True)
    justification: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(32), index=True)
    round: Mapped[int] = mapped_column(Integer, default=1)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    idempotency_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # sha256 over project, justification and every (path, description, bytes hash):
    # finds a byte-identical repeat of a submission.
    digest: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        UniqueConstraint("author", "idempotency_key", name="uq_airlock_requests_idempotency"),
        Index("ix_airlock_requests_author_digest", "author", "digest"),
    )


class FileRow(Base):
    """One snapshotted file of one round of a request."""

    __tablename__ = "airlock_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("airlock_requests.id"), index=True)
    round: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(1024))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(Text)
    checks: Mapped[str] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("request_id", "round", "path", name="uq_airlock_files_path"),
    )


class VoteRow(Base):
    """One officer's decision on one file in one round (replaced until the review ends)."""

    __tablename__ = "airlock_votes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("airlock_requests.id"), index=True)
    round: Mapped[int] = mapped_column(Integer)
    officer: Mapped[str] = mapped_column(String(255))
    path: Mapped[str] = mapped_column(String(1024))
    decision: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str] = mapped_column(Text, default="")
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("request_id", "round", "officer", "path", name="uq_airlock_votes"),
    )


class ReviewRow(Base):
    """An officer's finished review of one round."""

    __tablename__ = "airlock_reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("airlock_requests.id"), index=True)
    round: Mapped[int] = mapped_column(Integer)
    officer: Mapped[str] = mapped_column(String(255))
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("request_id", "round", "officer", name="uq_airlock_reviews"),
    )


class OpenRow(Base):
    """An officer opened a round for review (the first one moves the state)."""

    __tablename__ = "airlock_opens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("airlock_requests.id"), index=True)
    round: Mapped[int] = mapped_column(Integer)
    officer: Mapped[str] = mapped_column(String(255))

    __table_args__ = (UniqueConstraint("request_id", "round", "officer", name="uq_airlock_opens"),)


class CoReviewerRow(Base):
    """A data provider asked about a request (``notify`` or ``required``), and why."""

    __tablename__ = "airlock_co_reviewers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("airlock_requests.id"), index=True)
    provider: Mapped[str] = mapped_column(String(100), index=True)
    level: Mapped[str] = mapped_column(String(16))
    # JSON list of the "dataset@version" of this provider's that the project uses.
    datasets: Mapped[str] = mapped_column(Text)

    __table_args__ = (UniqueConstraint("request_id", "provider", name="uq_airlock_co_reviewers"),)


class ProviderVoteRow(Base):
    """A provider's decision on one round of a request (one per provider and round)."""

    __tablename__ = "airlock_provider_votes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("airlock_requests.id"), index=True)
    round: Mapped[int] = mapped_column(Integer)
    provider: Mapped[str] = mapped_column(String(100))
    voter: Mapped[str] = mapped_column(String(255))
    decision: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("request_id", "round", "provider", name="uq_airlock_provider_votes"),
    )


class CommentRow(Base):
    """A comment on a request or on one of its files."""

    __tablename__ = "airlock_comments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("airlock_requests.id"), index=True)
    round: Mapped[int] = mapped_column(Integer)
    author: Mapped[str] = mapped_column(String(255))
    file: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    text: Mapped[str] = mapped_column(Text)
    review: Mapped[bool] = mapped_column(Boolean, default=False)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AuditRow(Base):
    """One entry of the append-only, hash-chained audit log."""

    __tablename__ = "airlock_audit"

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    # Stored as text (ISO 8601, UTC, microseconds) because it is hashed: the exact
    # characters must survive every database's round trip.
    time: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(32), index=True)
    request_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    file_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHeadRow(Base):
    """The single row naming the chain's last entry; locking it serialises appends."""

    __tablename__ = "airlock_audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
