"""Alembic environment: migrations run on the connection ``app.push.schema`` hands over.

Nothing here reads a config file or the environment; ``app.push.schema`` opens the connection
(from the service's settings), takes the migration lock and calls Alembic's commands.
"""

from __future__ import annotations

from alembic import context

from app.push.store import metadata

connection = context.config.attributes["connection"]
# Batch mode: SQLite alters a table by copying it, which plain ALTER cannot do there.
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
