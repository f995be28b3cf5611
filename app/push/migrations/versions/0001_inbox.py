"""The camera inbox as the service created it before migrations existed.

A database made by that version (tables, no ``alembic_version``) is stamped at this revision
by ``app.push.schema.upgrade`` and then upgraded like any other.

Revision ID: 0001
Revises: none
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "push_events",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(32), nullable=False, unique=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("device_id", sa.String(255)),
        sa.Column("event_time", sa.String(40)),
        sa.Column("dedupe_key", sa.String(255)),
        sa.Column("payload_hash", sa.String(64), nullable=False),
        sa.Column("metadata_json", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("available_at", sa.Float, nullable=False),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_expires", sa.Float),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float),
        sa.Column("image_count", sa.Integer, nullable=False),
        sa.Column("faces_accepted", sa.Integer),
        sa.Column("faces_rejected", sa.Integer),
        sa.Column("error", sa.Text),
        sa.UniqueConstraint("source", "dedupe_key", name="uq_push_events_source_key"),
    )
    op.create_index("ix_push_events_payload_hash", "push_events", ["payload_hash"], unique=True)
    op.create_index("ix_push_events_status_seq", "push_events", ["status", "seq"])
    op.create_index("ix_push_events_received_at", "push_events", ["received_at"])
    op.create_table(
        "push_images",
        sa.Column("event_id", sa.String(32), primary_key=True),
        sa.Column("idx", sa.Integer, primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("path", sa.String(255), nullable=False),
    )
    op.create_table(
        "push_reports",
        sa.Column("event_id", sa.String(32), primary_key=True),
        sa.Column("idx", sa.Integer, primary_key=True),
        sa.Column("report_json", sa.Text, nullable=False),
    )
    op.create_table(
        "push_crops",
        sa.Column("event_id", sa.String(32), primary_key=True),
        sa.Column("face_id", sa.String(64), primary_key=True),
        sa.Column("path", sa.String(255), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
    )
    op.create_table(
        "push_counters",
        sa.Column("source", sa.String(16), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("last_at", sa.Float, nullable=False),
    )
    op.create_table(
        "push_forwards",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(32), nullable=False),
        sa.Column("payload_json", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.Float, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("sent_at", sa.Float),
        sa.Column("last_error", sa.Text),
    )
    op.create_index("ix_push_forwards_event_id", "push_forwards", ["event_id"])
    op.create_index("ix_push_forwards_status_next", "push_forwards", ["status", "next_attempt_at"])


def downgrade() -> None:
    for table in (
        "push_forwards",
        "push_counters",
        "push_crops",
        "push_reports",
        "push_images",
        "push_events",
    ):
        op.drop_table(table)
