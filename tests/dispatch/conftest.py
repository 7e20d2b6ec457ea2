"""Fixtures of the dispatch core's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlmodel import Session

from dispatch.core.db import new_session


@pytest.fixture
def session() -> Iterator[Session]:
    """A write session of the test's own (the test commits it), closed afterwards."""
    session = new_session(write=True)
    try:
        yield session
    finally:
        session.close()
