"""provider co-review: the providers asked about each request and their votes

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "airlock_co_reviewers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("request_id", sa.String(length=32), nullable=False),
        sa.Column("provider", sa.String(length=100), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("datasets", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["request_id"], ["airlock_requests.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id", "provider", name="uq_airlock_co_reviewers"),
    )
    op.create_index(
        op.f("ix_airlock_co_reviewers_request_id"),
        "airlock_co_reviewers",
        ["request_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_airlock_co_reviewers_provider"), "airlock_co_reviewers", ["provider"], unique=False
    )
    op.create_table(
        "airlock_provider_votes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("request_id", sa.String(length=32), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=100), nullable=False),
        sa.Column("voter", sa.String(length=255), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["request_id"], ["airlock_requests.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id", "round", "provider", name="uq_airlock_provider_votes"),
    )
    op.create_index(
        op.f("ix_airlock_provider_votes_request_id"),
        "airlock_provider_votes",
        ["request_id"],
        unique=False,
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index(op.f("ix_airlock_provider_votes_request_id"), table_name="airlock_provider_votes")
    op.drop_table("airlock_provider_votes")
    op.drop_index(op.f("ix_airlock_co_reviewers_provider"), table_name="airlock_co_reviewers")
    op.drop_index(op.f("ix_airlock_co_reviewers_request_id"), table_name="airlock_co_reviewers")
    op.drop_table("airlock_co_reviewers")
