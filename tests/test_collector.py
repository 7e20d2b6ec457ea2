"""The long-running processes settle Python's garbage collector once their startup is done
(dispatch/core/collector.py): what is alive frozen, the collector still on; the API's youngest
generation's threshold raised to GC_THRESHOLD, the workers' left at Python's.

Each case runs in a fresh interpreter (the test process itself may have settled already),
on the test's own database and Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

STATE = "json.dumps({'frozen': gc.get_freeze_count(), 'threshold': gc.get_threshold(), 'enabled': gc.isenabled()})"

API = f"""
import gc, json, sys
sys.path.insert(0, {str(ROOT)!r})
from fastapi.testclient import TestClient
from dispatch.app import create_app
before = {STATE}
with TestClient(create_app()) as client:
    assert client.get("/healthz").status_code == 200
    after = {STATE}
    # Cyclic garbage made after startup is still collected.
    class Node: pass
    a, b = Node(), Node()
    a.other, b.other = b, a
    del a, b
    collected = gc.collect()
print(json.dumps({{"before": json.loads(before), "after": json.loads(after), "collected": collected}}))
"""

WORKER = f"""
import gc, json, sys
sys.path.insert(0, {str(ROOT)!r})
from workers.runner import run_worker
before = {STATE}
run_worker("eldercare-maintenance", burst=True)
print(json.dumps({{"before": json.loads(before), "after": json.loads({STATE})}}))
"""


def _run(code: str, env: dict[str, str] | None = None) -> dict[str, dict[str, object]]:
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result: dict[str, dict[str, object]] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_the_api_settles_the_collector_once_started() -> None:
    state = _run(API)
    assert state["before"]["frozen"] == 0
    assert state["before"]["threshold"][0] == 700  # type: ignore[index]  # Python's own
    assert state["after"]["frozen"] > 50_000  # type: ignore[operator]  # modules, tables, schemas
    assert state["after"]["threshold"][0] == 10_000  # type: ignore[index]
    assert state["after"]["enabled"] is True
    assert state["collected"] >= 2  # type: ignore[operator]


def test_a_worker_freezes_before_it_works_and_keeps_pythons_threshold() -> None:
    state = _run(WORKER, {"GC_THRESHOLD": "2500"})
    assert state["before"]["frozen"] == 0
    assert state["after"]["frozen"] > 50_000  # type: ignore[operator]
    assert state["after"]["threshold"][0] == 700  # type: ignore[index]
    assert state["after"]["enabled"] is True


def test_gc_threshold_is_a_setting_of_the_api() -> None:
    assert _run(API, {"GC_THRESHOLD": "2500"})["after"]["threshold"][0] == 2500  # type: ignore[index]
    kept = _run(API, {"GC_THRESHOLD": "0"})["after"]
    assert kept["threshold"][0] == 700 and kept["frozen"] > 50_000  # type: ignore[index,operator]
