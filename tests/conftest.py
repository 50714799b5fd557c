"""Shared by every test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mlc.backends.c.tiers import wait_for_optimised_builds


@pytest.fixture(autouse=True)
def _optimised_builds_end_with_their_test(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A tiered program's optimised build (`mlc.backends.c.tiers`) ends before the test's
    monkeypatches are undone (its cache directory among them) and before the next test runs
    (which may count compiler processes)."""
    yield
    wait_for_optimised_builds()
