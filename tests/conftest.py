"""Shared test fixtures: the optional ../shared data folder and a handler that captures the package's logs."""

import logging
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
FIXTURES = SHARED / "fixtures" / "upstream"


def require_shared(*parts):
    """Return a path inside ../shared, or skip the test when that folder (a dev/CI extra) is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not present (../shared is only beside a dev checkout)")
    return path


@pytest.fixture
def ulogs():
    """Collect messages logged to the 'ultralytics' logger (which does not propagate to the root logger)."""
    records = []

    class _Collect(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    handler = _Collect(level=logging.DEBUG)
    logger = logging.getLogger("ultralytics")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)
