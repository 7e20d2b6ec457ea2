"""The long-running processes allocate from one malloc arena (dispatch/core/memory.py).

Each case runs in a fresh interpreter: the cap must be set before the process's first thread,
as `eldercare` does first thing, and glibc reads `MALLOC_ARENA_MAX` only when a process starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Six threads alive at once, each holding allocations too big for Python's own allocator (so
# they come from malloc); then the resident MB of glibc's heaps for arenas other than the main
# one (memory.resident_by_kind, as the soak reads them).
CHILD = """
import json, os, sys, threading
sys.path.insert(0, {root!r})
capped = None
if {cap!r}:
    from dispatch.core.memory import use_one_malloc_arena
    capped = use_one_malloc_arena()
barrier, held = threading.Barrier(6), []
def work():
    barrier.wait()
    held.append([bytes(4000) for _ in range(200)])
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(6)]
for t in threads: t.start()
for t in threads: t.join()
from dispatch.core.memory import resident_by_kind
heaps = resident_by_kind(os.getpid()).get("thread_arenas", 0.0)
print(json.dumps({{"capped": capped, "heaps": heaps, "env": os.environ.get("MALLOC_ARENA_MAX")}}))
"""


def _run(cap: bool, env: dict[str, str] | None = None) -> dict[str, object]:
    child_env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    child_env.update(env or {})
    out = subprocess.run(
        [sys.executable, "-c", CHILD.format(root=str(ROOT), cap=cap)],
        env=child_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_threads_get_arenas_of_their_own_without_the_cap() -> None:
    """What the cap is for, and proof that the count below sees thread arenas at all."""
    assert _run(cap=False)["heaps"] > 0  # type: ignore[operator]


def test_with_the_cap_every_thread_allocates_from_the_main_heap() -> None:
    result = _run(cap=True)
    assert result["capped"] is True
    assert result["heaps"] == 0
    assert result["env"] == "1"  # the processes it starts (uvicorn's workers, supervised children)


def test_an_operators_malloc_arena_max_is_left_alone() -> None:
    result = _run(cap=True, env={"MALLOC_ARENA_MAX": "4"})
    assert result["capped"] is False
    assert result["env"] == "4"
    assert result["heaps"] > 0  # type: ignore[operator]  # glibc honoured the operator's 4
