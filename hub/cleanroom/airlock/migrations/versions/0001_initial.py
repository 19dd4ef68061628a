"""initial airlock schema

Revision ID: 0001
Revises:
Create Date: 2026-11-21 19:49:32.041918
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "airlock_audit",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("time", sa.String(length=40), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("request_id", sa.String(length=32), nullable=True),
        sa.Column("file_sha256", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index(op.f("ix_airlock_audit_action"), "airlock_audit", ["action"], unique=False)
    op.create_index(
        op.f("ix_airlock_audit_request_id"), "airlock_audit", ["request_id"], unique=False
    )
    head = op.create_table(
        "airlock_audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    # The chain's head exists from the start so appends only ever lock and update it.
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": "0" * 64}])
    op.create_table(
        "airlock_requests",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("project", sa.String(length=255), nullable=False),
        sa.Column("author", sa.String(length=255), nullable=False),
        sa.Column("justification", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("author", "idempotency_key", name="uq_airlock_requests_idempotency"),
    )
    op.create_index(
        op.f("ix_airlock_requests_author"), "airlock_requests", ["author"], unique=False
    )
    op.create_index(
        "ix_airlock_requests_author_digest", "airlock_requests", ["author", "digest"], unique=False
    )
    op.create_index(
        op.f("ix_airlock_requests_project"), "airlock_requests", ["project"], unique=False
    )
    op.create_index(op.f("ix_airlock_requests_state"), "airlock_requests", ["state"], unique=False)
    op.create_table(
        "airlock_comments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("request_id", sa.String(length=32), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(length=255), nullable=False),
        sa.Column("file", sa.String(length=1024), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("review", sa.Boolean(), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["airlock_requests.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_airlock_comments_request_id"), "airlock_comments", ["request_id"], unique=False
    )
    op.create_table(
        "airlock_files",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("request_id", sa.String(length=32), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(length=128), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("checks", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["airlock_requests.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id", "round", "path", name="uq_airlock_files_path"),
    )
    op.create_index(
        op.f("ix_airlock_files_request_id"), "airlock_files", ["request_id"], unique=False
    )
    op.create_table(
        "airlock_opens",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("request_id", sa.String(length=32), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("officer", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["airlock_requests.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id", "round", "officer", name="uq_airlock_opens"),
    )
    op.create_index(
        op.f("ix_airlock_opens_request_id"), "airlock_opens", ["request_id"], unique=False
    )
    op.create_table(
        "airlock_reviews",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("request_id", sa.String(length=32), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("officer", sa.String(length=255), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["airlock_requests.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id", "round", "officer", name="uq_airlock_reviews"),
    )
    op.create_index(
        op.f("ix_airlock_reviews_request_id"), "airlock_reviews", ["request_id"], unique=False
    )
    op.create_table(
        "airlock_votes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("request_id", sa.String(length=32), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("officer", sa.String(length=255), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["airlock_requests.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id", "round", "officer", "path", name="uq_airlock_votes"),
    )
    op.create_index(
        op.f("ix_airlock_votes_request_id"), "airlock_votes", ["request_id"], unique=False
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index(op.f("ix_airlock_votes_request_id"), table_name="airlock_votes")
    op.drop_table("airlock_votes")
    op.drop_index(op.f("ix_airlock_reviews_request_id"), table_name="airlock_reviews")
    op.drop_table("airlock_reviews")
    op.drop_index(op.f("ix_airlock_opens_request_id"), table_name="airlock_opens")
    op.drop_table("airlock_opens")
    op.drop_index(op.f("ix_airlock_files_request_id"), table_name="airlock_files")
    op.drop_table("airlock_files")
    op.drop_index(op.f("ix_airlock_comments_request_id"), table_name="airlock_comments")
    op.drop_table("airlock_comments")
    op.drop_index(op.f("ix_airlock_requests_state"), table_name="airlock_requests")
    op.drop_index(op.f("ix_airlock_requests_project"), table_name="airlock_requests")
    op.drop_index("ix_airlock_requests_author_digest", table_name="airlock_requests")
    op.drop_index(op.f("ix_airlock_requests_author"), table_name="airlock_requests")
    op.drop_table("airlock_requests")
    op.drop_table("airlock_audit_head")
    op.drop_index(op.f("ix_airlock_audit_request_id"), table_name="airlock_audit")
    op.drop_index(op.f("ix_airlock_audit_action"), table_name="airlock_audit")
    op.drop_table("airlock_audit")
