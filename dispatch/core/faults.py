"""Fault injection for the reliability tests, so a crash can be placed exactly where it hurts.

ELDERCARE_CRASH_AT="point:probability,..." makes this process die at a point (os._exit, as a
power cut would: no cleanup, no rollback handlers) with the given probability.
ELDERCARE_SLOW_AT="point:seconds,..." makes a point take that long, and
ELDERCARE_HOLD_AT="point:/path" holds it until that file exists (a test decides when).
All are unset in production; then each call costs two dictionary lookups.
"""

from __future__ import annotations

import os
import random
import sys
import time

CRASH_EXIT_CODE = 137


def _parse(variable: str) -> dict[str, float]:
    spec: dict[str, float] = {}
    for item in filter(None, os.environ.get(variable, "").split(",")):
        name, _, value = item.partition(":")
        spec[name.strip()] = float(value or "1")
    return spec


_CRASH = _parse("ELDERCARE_CRASH_AT")
_SLOW = _parse("ELDERCARE_SLOW_AT")
_HOLD = dict(
    item.split(":", 1)
    for item in filter(None, os.environ.get("ELDERCARE_HOLD_AT", "").split(","))
    if ":" in item
)
HOLD_LIMIT_SECONDS = 300


def point(name: str) -> None:
    """Mark a point where a crash or a delay may be injected."""
    if name in _SLOW:
        time.sleep(_SLOW[name])
    if name in _HOLD:
        with open(_HOLD[name] + ".waiting", "w"):  # tells the test this point is reached
            pass
        deadline = time.monotonic() + HOLD_LIMIT_SECONDS
        while not os.path.exists(_HOLD[name]) and time.monotonic() < deadline:
            time.sleep(0.05)
    if name in _CRASH and random.random() < _CRASH[name]:
        sys.stderr.write(f"fault injection: crashing at {name}\n")
        sys.stderr.flush()
        os._exit(CRASH_EXIT_CODE)
