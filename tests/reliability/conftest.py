"""Shared settings for the fault scenarios: short timers so that a scenario settles in a
minute or two, the same mechanisms as production."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

FAST_TIMERS = {
    "OFFER_TTL_SECONDS": "6",
    "ASSIGN_SLA_SECONDS": "60",
    "URGENT_SLA_SECONDS": "30",
    "BATCH_WINDOW_SECONDS": "0.2",
    "SWEEP_INTERVAL_SECONDS": "2",
    "STALE_AFTER_SECONDS": "3",
    "WORKER_MAINTENANCE_INTERVAL": "5",
    "LOG_LEVEL": "INFO",
}


@pytest.fixture
def fault_env(env: dict[str, str]) -> dict[str, str]:
    return {**env, **FAST_TIMERS}


@pytest.fixture
def logs(tmp_path: Path, artifacts: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """Process logs of the scenario, kept in tests/artifacts/<test>/ for the reader."""
    path = tmp_path / "logs"
    path.mkdir()
    yield path
    target = artifacts / request.node.name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(path, target)
