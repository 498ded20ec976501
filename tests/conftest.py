"""Shared fixtures: the anyio backend, and an environment with no evoarena/Kalshi variables."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import structlog

from evoarena.raypool import local_only

# Tests use loopback only: a local Ray instance (test_islands.py) must bind to 127.0.0.1, which Ray
# decides when first imported, so this runs before any test module imports it.
local_only()


@pytest.fixture
def anyio_backend() -> str:
    """Every async test runs on asyncio (the backend the service uses)."""
    return "asyncio"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's EVOARENA_* and KALSHI_* variables out of every test."""
    for key in list(os.environ):
        if key.startswith(("EVOARENA_", "KALSHI_")):
            monkeypatch.delenv(key)


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """A test that runs the CLI configures structlog; the next test starts from the defaults."""
    yield
    structlog.reset_defaults()
