"""Python's cyclic garbage collector in the long-running processes: what is alive after
startup frozen, and in the API the youngest generation collected less often.

Python collects its youngest generation every 700 net allocations of container objects, the
next every 10 of those, and the oldest — every object the process holds, its modules,
SQLAlchemy's tables and compiled statements, pydantic's schemas: ~200,000 in the API —
whenever a quarter as many objects again have been promoted into it. Under load the API
allocates and frees objects by the thousand per batch, nearly all of them freed at once by
reference counting; the collector still walked them, and four times in 9 s it walked all of
the oldest generation, holding the event loop (and every request in flight) for up to ~100 ms
each time. Measured with `gc.callbacks` in every process of `bench/drive.py 1000 8`: the API
spent ~565 ms of its ~7 s of CPU in the collector, 378-387 ms of it in four full collections
of 96-107 ms each; the match worker one full collection of 83-127 ms.

So each long-running process, once its startup is done, collects once and then freezes what is
alive (`gc.freeze()`): the modules, tables and schemas are never walked again, and a full
collection walks only what the process built since. The API also raises its youngest
generation's threshold (`GC_THRESHOLD`, 10,000), so garbage in reference cycles is collected
in passes 14 times rarer. The collector stays on everywhere. What was frozen and later becomes
garbage in a cycle is not collected: objects alive at the end of startup live as long as the
process.

Measured (`bench/drive.py 1000 8`, two runs each alternating with Python's defaults): frozen
and the threshold raised, the API's CPU per request 0.92 / 0.89 -> 0.80 / 0.80 ms, the match
worker's 0.58 / 0.58 -> 0.54 / 0.53; intake served 821 / 876 -> 948 / 958 of 1,000 requests/s;
p50 518 / 367 -> 108 / 104 ms; the collector ran once (3 ms) in the API during the 8-second
phase. Frozen alone: the API 0.84 ms, 915 requests/s, the match worker 0.56 / 0.57. Why the
workers keep Python's threshold: in 10-minute soaks (`bench/load.py --soak 600`) the notify
worker with 10,000 sat ~2 MB higher and crept +0.6 / +1.0 MB (its object arenas), against
+0.1 with 700, for no CPU it could show (75.0 / 75.3 s against 73.4).
"""

from __future__ import annotations

import gc
import logging

from dispatch.core.config import get_settings

log = logging.getLogger(__name__)

_settled = False


def settle_collector(threshold: int | None = None) -> bool:
    """Once per process, when its startup is done: collect, freeze what is alive, and set the
    youngest generation's threshold (default `GC_THRESHOLD`; 0 keeps Python's). True the first
    time."""
    global _settled
    if _settled:
        return False
    _settled = True
    threshold = get_settings().gc_threshold if threshold is None else threshold
    gc.collect()
    gc.freeze()
    if threshold > 0:
        _, middle, oldest = gc.get_threshold()
        gc.set_threshold(threshold, middle, oldest)
    log.debug(
        "garbage collector: %d objects frozen, thresholds %s", gc.get_freeze_count(), gc.get_threshold()
    )
    return True
