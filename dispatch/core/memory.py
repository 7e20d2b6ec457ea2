"""The long-running processes' C heap: one malloc arena, shared by all their threads.

glibc gives every new thread that allocates an arena of its own (a 64 MiB-aligned heap), up to
eight per core. The API's threads come and go — anyio's worker threads (the accepts' reads, the
hub's reads), the helper that waits for SQLite's write lock — and SQLite, uvicorn and pydantic
allocate on them; what is freed goes back to the arena it came from, and each arena keeps its
own pages resident. In a 10-minute soak (`bench/load.py --soak 600`, the API's
`/proc/PID/smaps` sampled every 30 s) the API's thread arenas grew 18.6 -> 22.4 MB while its
main heap and Python's object arenas stayed flat. With one arena every thread allocates from
the main heap, which reuses what any thread freed: in the next soaks the API had no thread
arenas, and stayed within 0.6 MB on a fast hour (README, Performance, stop 16). Its CPU was 350
and 367 s against 352 before: these runs do not resolve a difference of a few per cent.

An operator's own `MALLOC_ARENA_MAX` (read by glibc when the process starts) is left as set.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # glibc's <malloc.h>
THREAD_HEAP_ALIGN = 64 << 20  # glibc's HEAP_MAX_SIZE on 64-bit: where each thread arena's heap starts


def use_one_malloc_arena() -> bool:
    """Cap this process's malloc arenas at one (glibc only), and set `MALLOC_ARENA_MAX` for the
    processes it starts (uvicorn's workers, the supervisor's children). True if the cap was set."""
    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return False
    os.environ["MALLOC_ARENA_MAX"] = "1"
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the process already runs on
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    if mallopt(M_ARENA_MAX, 1) != 1:  # musl and others: no such option, nothing changed
        log.debug("mallopt(M_ARENA_MAX) is not supported here")
        return False
    return True


def resident_by_kind(pid: int) -> dict[str, float]:
    """A process's resident MB by kind of mapping (/proc/PID/smaps): `heap` (malloc's main
    arena), `thread_arenas` (glibc's per-thread arenas), `anonymous` (Python's object arenas,
    large allocations), `files` (code and libraries), `stacks`. Where growth lives, when it
    does (bench/load.py's soak); {} if the process is gone or unreadable."""
    kinds: dict[str, float] = {}
    kind = "anonymous"
    try:
        with open(f"/proc/{pid}/smaps") as smaps:
            for line in smaps:
                if line.startswith("Rss:"):
                    kinds[kind] = kinds.get(kind, 0.0) + int(line.split()[1]) / 1024
                # A mapping's first line: "start-end perms offset dev inode [path]".
                elif not line[0].isupper():
                    fields = line.split()
                    path = fields[5] if len(fields) > 5 else ""
                    start = int(fields[0].split("-")[0], 16)
                    if path == "[heap]":
                        kind = "heap"
                    elif path.startswith("[stack"):
                        kind = "stacks"
                    elif path:
                        kind = "files"
                    else:
                        kind = "thread_arenas" if start % THREAD_HEAP_ALIGN == 0 else "anonymous"
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return {}
    return {k: round(v, 1) for k, v in sorted(kinds.items())}
