"""Fixtures shared by the read-path tests."""

from __future__ import annotations

from typing import Any

import pytest

from evoarena.feeds.store import StoreIngest


@pytest.fixture
def bulk_rows(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """``[n]``: how many rows the store's bulk apply took, counted as a replay runs."""
    taken = [0]
    original = StoreIngest._apply

    def counting(self: StoreIngest, cur: Any, b: Any, a: int, z: int) -> None:
        taken[0] += z - a
        original(self, cur, b, a, z)

    monkeypatch.setattr(StoreIngest, "_apply", counting)
    return taken
