"""The API's write batches' CPU, on the demo district in a SQLite file: an intake batch and an
accept batch of `--batch` items, each step timed apart with `time.process_time()` as
bench/match_cpu.py does, each batch's transaction rolled back so that every run sees the same
district.

- intake: the batch as the API's intake batcher writes it on its loop (orders/batcher.py
  `_optimistic`: the elders read, the requests, first events, audit rows, idempotency records
  and the outbox row written), with an Idempotency-Key on every request as bench/load.py sends;
- accept: the reads before the write (orders/accepts.py `prepare`, on a thread in the API),
  the write (`write_prepared`: the compare-and-sets and inserts, under the write lock), and the
  answers built from them (`request_read`).

At a fast hour the API's batches are small (1-5 items at 500 requests/s), so the fixed cost of
a batch is most of it: run with `--batch 1`, `3` and `20` to see both.

    .venv/bin/python bench/api_cpu.py [--batch 3] [--runs 300] [--profile FILE]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import match_cpu  # the seeded district, cached in --dir, and its helpers


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=3, help="items per batch")
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "eldercare-match-cpu")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the timed runs here")
    return parser.parse_args()


def intake_batches(batch: int, runs: int) -> list[list[Any]]:
    from _workload import Workload
    from sqlmodel import select

    from dispatch.core.db import session_scope
    from dispatch.elders.models import Elder
    from dispatch.orders.intake import IntakeItem
    from dispatch.orders.schemas import RequestCreate

    principal = match_cpu.bench_operator()
    with session_scope(write=False) as session:
        elder_ids = [e for e in session.exec(select(Elder.id)) if e is not None]
    work = Workload(elder_ids=elder_ids, provider_users={})
    work.rng.seed(3)
    return [
        [
            IntakeItem(principal, RequestCreate.model_validate(work.body()), f"api-cpu-{run}-{i}")
            for i in range(batch)
        ]
        for run in range(runs)
    ]


def accept_batches(batch: int, runs: int) -> list[list[Any]]:
    """`runs` batches of accepts of distinct pending offers (one per request), each by its
    provider: the requests filed and matched (committed) beforehand."""
    from sqlmodel import col, select

    from dispatch.core.auth import Principal, Role
    from dispatch.core.db import session_scope
    from dispatch.orders.accepts import AcceptItem
    from dispatch.orders.models import Offer, OfferStatus

    match_cpu.file_requests(batch * runs * 21 // 20 + 10, seed=5)  # a few reach no provider
    match_cpu.match_all_queued()
    operator = match_cpu.bench_operator()
    with session_scope(write=False) as session:
        offers = session.exec(
            select(Offer).where(Offer.status == OfferStatus.PENDING).order_by(col(Offer.id))
        ).all()
    one_each: dict[int, Offer] = {}
    for offer in offers:
        one_each.setdefault(offer.request_id, offer)
    items = [
        AcceptItem(
            Principal(
                id=operator.id, username="bench-provider", role=Role.PROVIDER, provider_id=o.provider_id
            ),
            o.id or 0,
        )
        for o in one_each.values()
    ]
    if len(items) < batch * runs:
        raise SystemExit(f"only {len(items)} pending offers for {batch * runs} accepts")
    return [items[r * batch : (r + 1) * batch] for r in range(runs)]


def measure_intake(batches: list[list[Any]]) -> list[dict[str, float]]:
    from sqlmodel import Session

    from dispatch.core.db import get_engine
    from dispatch.orders import batcher

    engine, out = get_engine(write=True), []
    for items in batches:
        with engine.connect() as conn:
            transaction = conn.begin()
            with Session(bind=conn) as session:
                started = time.process_time()
                outcomes = batcher._optimistic(session, items)  # type: ignore[arg-type]
                session.flush()
                done = time.process_time()
            transaction.rollback()
        assert all(o.error is None for o in outcomes), [o.error for o in outcomes]
        out.append({"write_ms": (done - started) * 1000})
    return out


def measure_accepts(batches: list[list[Any]]) -> list[dict[str, float]]:
    from sqlmodel import Session

    from dispatch.core.db import get_engine, session_scope
    from dispatch.orders import accepts
    from dispatch.orders.models import ServiceRequest
    from dispatch.orders.service import request_read

    engine, out = get_engine(write=True), []
    for items in batches:
        started = time.process_time()
        with session_scope(write=False) as reading:
            prepared = accepts.prepare(reading, items, for_answers=True)  # type: ignore[arg-type]
        read = time.process_time()
        with engine.connect() as conn:
            transaction = conn.begin()
            with Session(bind=conn, expire_on_commit=False) as session:
                outcomes = accepts.write_prepared(session, prepared)
                session.flush()
            written = time.process_time()
            transaction.rollback()
        answers = [
            request_read(o, prepared.timelines[o.id or 0]) for o in outcomes if isinstance(o, ServiceRequest)
        ]
        done = time.process_time()
        assert len(answers) == len(items), outcomes
        out.append(
            {
                "prepare_ms": (read - started) * 1000,
                "write_ms": (written - read) * 1000,
                "answers_ms": (done - written) * 1000,
                "total_ms": (done - started) * 1000,
            }
        )
    return out


def report(name: str, runs: list[dict[str, float]], batch: int) -> None:
    skip = min(10, len(runs) // 5)  # the first runs warm caches up
    for part in runs[0]:
        ms = statistics.median(r[part] for r in runs[skip:])
        print(
            f"{name + ' ' + part.removesuffix('_ms'):<18} {ms:>8.3f} ms {ms * 1000 / batch:>9.0f} us per item"
        )


def main() -> None:
    args = parse_args()
    db = match_cpu.prepare(argparse.Namespace(dir=args.dir, open_jobs=0))
    work = args.dir / "api-cpu.db"
    for leftover in args.dir.glob("api-cpu.db*"):
        leftover.unlink()
    shutil.copyfile(db, work)
    os.environ["DATABASE_URL"] = f"sqlite:///{work}"
    match_cpu.reset_engines()
    intakes = intake_batches(args.batch, args.runs)
    accepts = accept_batches(args.batch, args.runs)
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    intake_runs = measure_intake(intakes)
    accept_runs = measure_accepts(accepts)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    print(f"batches of {args.batch}, median of {args.runs} runs, ms CPU")
    report("intake", intake_runs, args.batch)
    report("accept", accept_runs, args.batch)


if __name__ == "__main__":
    main()
