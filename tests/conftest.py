"""Shared fixtures: the shared test-data folder and real images."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def shared_data_dir() -> Path:
    """Return the shared test-data folder (``FACEQ_TEST_DATA``, default ``../shared/data``)."""
    return Path(os.environ.get("FACEQ_TEST_DATA", ROOT.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared data folder; tests that need it skip with a clear reason where it is absent."""
    path = shared_data_dir()
    if not (path / "MANIFEST.csv").is_file():
        pytest.skip(f"shared test data not found at {path} (set FACEQ_TEST_DATA)")
    return path


@pytest.fixture(scope="session")
def astronaut_jpeg() -> bytes:
    """The scikit-image astronaut (512x512, one face) as JPEG bytes."""
    import cv2
    from skimage import data as skdata

    rgb = skdata.astronaut()
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95]
    )
    assert ok
    return buf.tobytes()


@pytest.fixture(scope="session")
def pipeline():
    """The real pipeline (MTCNN + WHENet) built from the default settings, loaded once."""
    from app.models_state import build_pipeline
    from app.runtime import configure_threads
    from app.settings import Settings

    configure_threads(0)
    return build_pipeline(Settings())


@pytest.fixture(scope="session")
def policy():
    from app.models_state import default_policy
    from app.settings import Settings

    return default_policy(Settings())


@pytest.fixture(scope="session")
def pg_server():
    """A throwaway PostgreSQL server for the session (``tests/pg.py``); skips without binaries."""
    from tests import pg

    bin_dir, reason = pg.find_bin_dir()
    if bin_dir is None:
        pytest.skip(reason)
    with pg.temporary_server(bin_dir) as server:
        yield server


@pytest.fixture
def pg_url(pg_server) -> Iterator[str]:
    """The URL of a fresh, empty database on the session's server, dropped afterwards."""
    url = pg_server.create_database()
    yield url
    pg_server.drop_database(url)
