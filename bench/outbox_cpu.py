"""CPU of `outbox.add_job` inside a write transaction on SQLite, timed with `time.process_time()`
(robust to other load on a shared machine; SQLite runs in this process, so its work counts).

Every intake batch, accept batch and matcher batch owes one or two jobs while it holds the
district's one write lock, so this is time every other writer waits. Each transaction takes
the lock (BEGIN IMMEDIATE, not timed), owes its jobs (each call timed on its own), and is
rolled back (not timed): the table stays small and no Redis is needed.

    .venv/bin/python bench/outbox_cpu.py [--transactions 2000] [--rounds 5]

The first write of a transaction costs SQLite more than the next ones: "job" is that first one.

Per call, in microseconds (the median over rounds of each round's mean):
  job        a plain job (its own row, its own RQ job after the commit)
  coalesced  the first owing of a coalesced job in a transaction (writes its row)
  again      the same coalesced job owed again in that transaction (no new row)
  urgent     ... owed again, urgent this time (the pending row becomes urgent)
  run_at     a job to run later (the matcher's offer expiry)
  flush      then a flush, as the commit would do: what the calls left for it to write
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ENV = {
    "SECRET_KEY": "bench-secret-key-0123456789-0123456789-0123456789",
    "LOG_LEVEL": "WARNING",
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--transactions", type=int, default=2000, help="write transactions per round")
    parser.add_argument("--rounds", type=int, default=5)
    return parser.parse_args()


def _timed(call: Callable[..., Any], *args: Any, **kwargs: Any) -> float:
    started = time.process_time()
    call(*args, **kwargs)
    return time.process_time() - started


def one_round(transactions: int) -> dict[str, float]:
    from dispatch.core.clock import utcnow
    from dispatch.core.db import new_session
    from dispatch.core.jobs import COALESCE_MATCH, JobName, QueueName
    from dispatch.core.outbox import add_job

    match = {"queue": QueueName.MATCH, "coalesce": COALESCE_MATCH}
    spent = dict.fromkeys(("job", "coalesced", "again", "urgent", "run_at", "flush"), 0.0)
    for i in range(transactions):
        session = new_session(write=True)
        try:
            session.connection()  # BEGIN IMMEDIATE: the write lock is taken, not timed
            spent["job"] += _timed(add_job, session, JobName.SEND_SMS, queue=QueueName.NOTIFY, message_id=i)
            spent["coalesced"] += _timed(add_job, session, JobName.MATCH_PENDING, **match)
            spent["again"] += _timed(add_job, session, JobName.MATCH_PENDING, **match)
            spent["urgent"] += _timed(add_job, session, JobName.MATCH_PENDING, **match, urgent=True)
            run_at = utcnow() + timedelta(seconds=60)
            spent["run_at"] += _timed(
                add_job, session, JobName.EXPIRE_OFFERS, queue=QueueName.MATCH, run_at=run_at, offer_ids=[i]
            )
            spent["flush"] += _timed(session.flush)
            session.rollback()
        finally:
            session.close()
    return {name: total / transactions * 1e6 for name, total in spent.items()}


def main() -> None:
    args = parse_args()
    work = Path(tempfile.mkdtemp(prefix="eldercare-outbox-cpu-"))
    os.environ.update(ENV, VAR_DIR=str(work / "var"), DATABASE_URL=f"sqlite:///{work / 'bench.db'}")
    from dispatch.core import db as core_db

    core_db.migrate()
    one_round(min(200, args.transactions))  # warm up: imports, compiled statement caches
    rounds = [one_round(args.transactions) for _ in range(args.rounds)]
    print(f"add_job CPU per call, us (median of {args.rounds} rounds x {args.transactions} transactions)")
    for name in rounds[0]:
        values = [r[name] for r in rounds]
        each = ", ".join(f"{v:.1f}" for v in values)
        print(f"  {name:10s} {statistics.median(values):8.1f}   (rounds: {each})")


if __name__ == "__main__":
    main()
