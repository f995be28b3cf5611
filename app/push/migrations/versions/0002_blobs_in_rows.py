"""Images and aligned crops may live in the row (``data``) instead of a file (``path``).

With PostgreSQL every replica reads what any replica stored, so the bytes go into the database
(``bytea``); SQLite keeps writing files under the data folder and leaves ``data`` empty.
On PostgreSQL the column is stored out of line without compression: JPEG and PNG do not
shrink, and trying costs CPU on every insert.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("push_images", "push_crops"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("data", sa.LargeBinary))
            batch.alter_column("path", existing_type=sa.String(255), nullable=True)
        if op.get_bind().dialect.name == "postgresql":
            op.execute(f"ALTER TABLE {table} ALTER COLUMN data SET STORAGE EXTERNAL")


def downgrade() -> None:
    for table in ("push_images", "push_crops"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("data")
            batch.alter_column("path", existing_type=sa.String(255), nullable=False)
