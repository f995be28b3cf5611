"""``python -m app db upgrade|check``: bring the store's schema to this version, or check it.

Reads the same settings as ``serve`` (``FACEQ_DATABASE_URL``, else SQLite under
``FACEQ_DATA_DIR``). Kubernetes runs ``upgrade`` in an init container before a replica starts;
concurrent runs wait for each other (``app.push.schema``). One line of output; exit status 0
when the schema is current afterwards, 1 when not (or the database cannot be reached), 2 for
bad usage or settings.
"""

from __future__ import annotations

import sys
from pathlib import Path

import sqlalchemy as sa

from app.push import schema, store
from app.runtime import configure_logging
from app.settings import SettingsError, load_settings, redact_url

USAGE = """usage: python -m app db upgrade | check

  upgrade   apply the pending migrations (the same revisions on SQLite and PostgreSQL)
  check     exit 0 when the schema is what this version needs, 1 when it is behind
"""


def main(args: list[str]) -> int:
    if len(args) != 1 or args[0] not in ("upgrade", "check"):
        print(USAGE, file=sys.stderr)
        return 2
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"faceq: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    url = settings.database_url
    data_dir = Path(settings.data_dir)
    if url is None:
        store.make_dir(data_dir)
    engine = store.create_engine(data_dir, url, pool_size=1)
    where = redact_url(url) or str(data_dir / store.DB_FILENAME)
    try:
        if args[0] == "upgrade":
            before, after = schema.upgrade(engine)
            change = f"upgraded from {before or 'nothing'} to" if before != after else "already at"
            print(f"faceq: database schema {change} revision {after} ({where})")
        else:
            revision = schema.check(engine)
            print(f"faceq: database schema at revision {revision}, as needed ({where})")
        return 0
    except schema.SchemaBehind as exc:
        print(f"faceq: {exc}", file=sys.stderr)
        return 1
    except sa.exc.DBAPIError as exc:
        print(f"faceq: database unavailable: {store.describe_error(exc, url)}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
