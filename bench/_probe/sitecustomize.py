"""The soak's memory probe, loaded by every process the benchmark starts (bench/_platform.py puts
this folder on PYTHONPATH when ELDERCARE_BENCH_PROBE_DIR is set; Python imports `sitecustomize`
at start-up): a daemon thread appends, every PROBE_EVERY seconds, a JSON line to
`$ELDERCARE_BENCH_PROBE_DIR/<pid>.jsonl` with what only the process itself can read:

- SQLite's memory (`sqlite3_status64`): all it holds (`sqlite_mb`: page caches, prepared
  statements, schemas) and its page caches alone (`sqlite_pagecache_mb`; with no page-cache
  buffer configured every page is allocated through malloc, counted as "overflow");
- malloc's bytes in use and free in its heap (glibc's `mallinfo2`).

Read from the system's libsqlite3, the one Python's sqlite3 module is linked to (counters are
per library, not per connection). Never loaded by the product; only for bench/load.py.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import threading
import time
from collections.abc import Callable

PROBE_EVERY = 30.0
SQLITE_STATUS_MEMORY_USED = 0
SQLITE_STATUS_PAGECACHE_OVERFLOW = 2


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _reader() -> Callable[[], dict[str, float]] | None:
    sqlite_name = ctypes.util.find_library("sqlite3")
    if sqlite_name is None:
        return None
    sqlite = ctypes.CDLL(sqlite_name)
    libc = ctypes.CDLL(None)
    mallinfo2 = getattr(libc, "mallinfo2", None)
    if mallinfo2 is not None:
        mallinfo2.restype = _MallInfo2

    def status(op: int) -> float:
        current, highwater = ctypes.c_int64(), ctypes.c_int64()
        sqlite.sqlite3_status64(op, ctypes.byref(current), ctypes.byref(highwater), 0)
        return current.value / 2**20

    def read() -> dict[str, float]:
        out = {
            "t": time.monotonic(),
            "sqlite_mb": status(SQLITE_STATUS_MEMORY_USED),
            "sqlite_pagecache_mb": status(SQLITE_STATUS_PAGECACHE_OVERFLOW),
        }
        if mallinfo2 is not None:
            info = mallinfo2()
            out["malloc_in_use_mb"] = (info.uordblks + info.hblkhd) / 2**20
            out["malloc_free_mb"] = info.fordblks / 2**20
        return out

    return read


def _run(folder: str) -> None:
    read = _reader()
    if read is None:
        return
    path = os.path.join(folder, f"{os.getpid()}.jsonl")
    while True:
        with open(path, "a") as out:
            out.write(json.dumps({k: round(v, 3) for k, v in read().items()}) + "\n")
        time.sleep(PROBE_EVERY)


_FOLDER = os.environ.get("ELDERCARE_BENCH_PROBE_DIR")
if _FOLDER:
    threading.Thread(target=_run, args=(_FOLDER,), name="bench-memory-probe", daemon=True).start()
