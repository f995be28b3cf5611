"""Where the bytes of pushed images and aligned crops live: files, or the database row.

``FileBlobs`` (the embedded SQLite store): each event's images in ``<data_dir>/images/<id>/``,
written and fsynced before the row naming them commits; the row holds the relative ``path``.

``RowBlobs`` (a shared PostgreSQL): the bytes go into the row's ``data`` column (``bytea``), in
the same transaction as the event, so a replica keeps nothing on its own disk and a push is
either wholly stored or not at all. ``bytea`` rather than large objects: the pictures are small
(camera JPEGs of tens to hundreds of kB, crops of a few kB), they are read and written whole,
and a ``bytea`` value is deleted, backed up (``pg_dump``) and replicated with its row, where a
large object is a separate thing to unlink (or leak) and to dump.

Both produce the row values the inbox inserts, and read the bytes back from a selected row.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from app.push import store
from app.push.event import PushedImage, sha256_hex

log = logging.getLogger(__name__)

_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/webp": "webp"}
EVENT_DIR_RE = re.compile(r"^[0-9a-f]{32}$")


class Blobs(Protocol):
    """The storage of image bytes behind the inbox's rows."""

    in_rows: bool

    def image_rows(self, event_id: str, pushed: Sequence[PushedImage]) -> list[dict[str, Any]]:
        """Return the ``push_images`` rows of an event's images (writing files first, if any)."""
        ...

    def crop_rows(self, event_id: str, crops: Sequence[tuple[str, bytes]]) -> list[dict[str, Any]]:
        """Return the ``push_crops`` rows of ``(face_id, PNG)`` crops (files first, if any)."""
        ...

    def load(self, row: Any) -> bytes | None:
        """Return the bytes a selected image or crop row names; None when they are gone."""
        ...

    def discard_event(self, event_id: str) -> None:
        """Remove what ``image_rows``/``crop_rows`` wrote outside the database for an event."""
        ...

    def discard_crops(self, event_id: str, face_ids: Iterable[str]) -> None:
        """Remove crop files whose rows were never committed."""
        ...

    def orphan_candidates(self, older_than: float) -> list[str]:
        """Event ids with files outside the database last changed before ``older_than``."""
        ...


def _image_row(event_id: str, index: int, image: PushedImage) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "idx": index,
        "role": image.role[:16],
        "name": image.name[:255],
        "content_type": image.content_type[:64],
        "size": len(image.data),
        "sha256": sha256_hex(image.data),
        "path": None,
        "data": None,
    }


class RowBlobs:
    """Bytes in the rows (``bytea`` on PostgreSQL): nothing outside the database."""

    in_rows = True

    def image_rows(self, event_id: str, pushed: Sequence[PushedImage]) -> list[dict[str, Any]]:
        rows = []
        for index, image in enumerate(pushed):
            row = _image_row(event_id, index, image)
            row["data"] = image.data
            rows.append(row)
        return rows

    def crop_rows(self, event_id: str, crops: Sequence[tuple[str, bytes]]) -> list[dict[str, Any]]:
        return [
            {"event_id": event_id, "face_id": face_id, "path": None, "size": len(png), "data": png}
            for face_id, png in crops
        ]

    def load(self, row: Any) -> bytes | None:
        return bytes(row.data) if row.data is not None else None

    def discard_event(self, event_id: str) -> None:
        return None

    def discard_crops(self, event_id: str, face_ids: Iterable[str]) -> None:
        return None

    def orphan_candidates(self, older_than: float) -> list[str]:
        return []


class FileBlobs:
    """Bytes in fsynced files under ``<data_dir>/images``; rows hold relative paths."""

    in_rows = False

    def __init__(self, data_dir: Path) -> None:
        self._dir = data_dir
        self._images = data_dir / "images"
        store.make_dir(self._images)

    def image_rows(self, event_id: str, pushed: Sequence[PushedImage]) -> list[dict[str, Any]]:
        if not pushed:
            return []
        event_dir = self._images / event_id
        store.make_dir(event_dir)
        rows = []
        for index, image in enumerate(pushed):
            role = re.sub(r"[^a-z]", "", image.role.lower())[:16] or "image"
            extension = _EXTENSIONS.get(image.content_type, "bin")
            path = event_dir / f"{index:02d}-{role}.{extension}"
            store.write_durably(path, image.data)
            row = _image_row(event_id, index, image)
            row["path"] = path.relative_to(self._dir).as_posix()
            rows.append(row)
        return rows

    def crop_rows(self, event_id: str, crops: Sequence[tuple[str, bytes]]) -> list[dict[str, Any]]:
        if not crops:
            return []
        crop_dir = self._images / event_id / "crops"
        store.make_dir(crop_dir)
        rows = []
        for face_id, png in crops:
            path = crop_dir / f"{face_id}.png"
            store.write_durably(path, png)
            relative = path.relative_to(self._dir).as_posix()
            rows.append(
                {
                    "event_id": event_id,
                    "face_id": face_id,
                    "path": relative,
                    "size": len(png),
                    "data": None,
                }
            )
        return rows

    def load(self, row: Any) -> bytes | None:
        if row.data is not None:  # a row written by the other storage: still readable
            return bytes(row.data)
        if row.path is None:
            return None
        try:
            return (self._dir / row.path).read_bytes()
        except OSError:
            return None

    def discard_event(self, event_id: str) -> None:
        store.remove_tree(self._images / event_id)

    def discard_crops(self, event_id: str, face_ids: Iterable[str]) -> None:
        for face_id in face_ids:
            (self._images / event_id / "crops" / f"{face_id}.png").unlink(missing_ok=True)

    def orphan_candidates(self, older_than: float) -> list[str]:
        try:
            return [
                d.name
                for d in self._images.iterdir()
                if d.is_dir() and EVENT_DIR_RE.match(d.name) and d.stat().st_mtime < older_than
            ]
        except OSError:
            return []
