"""The match worker's CPU per batch, on the demo district in a SQLite file: the snapshot, the
decision, the reads for the apply and the guarded apply of `workers.matching.match_pending`,
timed apart with `time.process_time()` (robust to other load on a shared machine; SQLite runs
in this process, so its work is counted too; a PostgreSQL server's is not), and how long the
apply holds SQLite's write lock, which every intake and accept of the district waits for.

Seeds the demo district once into `--dir` (kept for later runs), lifts capacities as the load
benchmark does (bench/_workload.py prepare_district), optionally leaves `--open-jobs` requests
assigned (the load benchmark never finishes its jobs, so the capacity in use grows), then files
`--requests` queued requests through the service layer and matches them `--runs` times, each
run rolled back so that every run sees the same queue.

    .venv/bin/python bench/match_cpu.py [--requests 100] [--open-jobs 0] [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # CPU time is what is measured: no spinning BLAS threads
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

if TYPE_CHECKING:
    from dispatch.core.auth import Principal

ENV = {
    "SECRET_KEY": "bench-secret-key-0123456789-0123456789-0123456789",
    "LOG_LEVEL": "WARNING",
    "PASSWORD_HASH_TIME_COST": "1",
    "PASSWORD_HASH_MEMORY_KIB": "8192",
    "CAREGIVER_MAX_JOBS": "100000",  # as bench/load.py: jobs never finish here
    "ASSIGN_SLA_SECONDS": "3600",
    "URGENT_SLA_SECONDS": "3600",
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=100, help="queued requests per batch")
    parser.add_argument("--open-jobs", type=int, default=0, help="assigned jobs left open in the district")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "eldercare-match-cpu")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the timed runs here")
    return parser.parse_args()


def prepare(args: argparse.Namespace) -> Path:
    """A seeded district with `--open-jobs` jobs assigned, cached in `--dir` by that number."""
    args.dir.mkdir(parents=True, exist_ok=True)
    db = args.dir / f"district-{args.open_jobs}.db"
    os.environ.update(ENV, VAR_DIR=str(args.dir / "var"), DATABASE_URL=f"sqlite:///{db}")
    if db.exists():
        return db
    work = db.with_suffix(".tmp.db")
    work.unlink(missing_ok=True)
    os.environ["DATABASE_URL"] = f"sqlite:///{work}"
    subprocess.run([sys.executable, "-m", "dispatch.cli", "seed", "--demo"], check=True, env=dict(os.environ))
    from _workload import prepare_district

    prepare_district()
    if args.open_jobs:
        _leave_open_jobs(args.open_jobs)
    reset_engines()  # closes the connections: SQLite folds its write-ahead log into the file
    shutil.move(work, db)
    os.environ["DATABASE_URL"] = f"sqlite:///{db}"
    reset_engines()
    return db


def reset_engines() -> None:
    from dispatch.core import db as core_db
    from dispatch.core.config import get_settings

    get_settings.cache_clear()
    core_db.dispose_engines()


def bench_operator() -> Principal:
    from sqlmodel import select

    from dispatch.core.auth import Principal, Role, User
    from dispatch.core.db import session_scope

    with session_scope(write=False) as session:
        user = session.exec(select(User).where(User.username == "bench-operator")).one()
        assert user.id is not None
        return Principal(id=user.id, username=user.username, role=Role.OPERATOR)


def file_requests(n: int, seed: int) -> None:
    """n queued requests of the load benchmark's mix, through the intake service."""
    from _workload import Workload
    from sqlmodel import select

    from dispatch.core.db import session_scope
    from dispatch.elders.models import Elder
    from dispatch.orders import intake
    from dispatch.orders.schemas import RequestCreate

    principal = bench_operator()
    with session_scope() as session:
        elder_ids = [e for e in session.exec(select(Elder.id)) if e is not None]
    work = Workload(elder_ids=elder_ids, provider_users={})
    work.rng.seed(seed)
    for start in range(0, n, 500):
        items = [
            intake.IntakeItem(principal, RequestCreate.model_validate(work.body()))
            for _ in range(min(500, n - start))
        ]
        with session_scope() as session:
            outcomes = intake.take_requests(session, items)
            assert all(o.error is None for o in outcomes)


def match_all_queued() -> None:
    """Match (committed) until no queued request is left or a run offers nothing more."""
    from dispatch.core.db import session_scope
    from dispatch.matching import service

    while True:
        with session_scope(write=False) as session:
            snapshot = service.load_snapshot(session)
        if not snapshot.requests:
            break
        with session_scope() as session:
            applied = service.apply_decisions(session, snapshot, service.decide(snapshot))
        if not applied.offered:
            break


def _leave_open_jobs(n: int) -> None:
    """n jobs assigned, as the load benchmark leaves them: filed, matched, and every offer taken
    (the accept is written here in SQL: only the capacity in use matters to the matcher)."""
    from sqlalchemy import text

    from dispatch.core.db import session_scope

    reset_engines()
    file_requests(n, seed=7)
    match_all_queued()
    with session_scope() as session:
        session.execute(text("UPDATE offer SET status = 'accepted' WHERE status = 'pending'"))
        session.execute(
            text(
                "UPDATE service_request SET status = 'assigned', provider_id = o.provider_id,"
                " caregiver_id = o.caregiver_id FROM offer o"
                " WHERE o.request_id = service_request.id AND o.status = 'accepted'"
                " AND service_request.status = 'offered'"
            )
        )
        session.execute(text("UPDATE service_request SET status = 'cancelled' WHERE status != 'assigned'"))


def measure(runs: int) -> list[dict[str, float]]:
    """Snapshot, decide and apply `runs` times over the same queue (each apply rolled back).

    "prepare" is the reads before the write transaction (workers/matching.py: prepare), "apply"
    the write transaction as the match worker runs it (apply_batch). The time the write lock is
    held is timed apart: from the moment SQLite's write lock is taken (BEGIN IMMEDIATE, the
    transaction's first statement) to the end of the rollback that stands in for the worker's
    commit, in process time and in wall time. Every intake and accept of the district waits
    that long."""
    from sqlalchemy import event

    from dispatch.core.db import get_engine, new_session
    from dispatch.matching import service
    from workers import matching

    began: dict[str, float] = {}

    def _began(_conn: object) -> None:  # after the engine's own listener took the lock
        began.update(cpu=time.process_time(), wall=time.perf_counter())

    engine = get_engine()
    event.listen(engine, "begin", _began)
    out = []
    try:
        for _ in range(runs):
            started = time.process_time()
            read = new_session(write=False)
            snapshot = service.load_snapshot(read)
            read.close()
            snapshotted = time.process_time()
            decisions = service.decide(snapshot)
            decided = time.process_time()
            prepared = matching.prepare(snapshot, decisions)
            ready = time.process_time()
            write = new_session()
            applied = matching.apply_batch(write, prepared)
            write.rollback()
            write.close()
            done, done_wall = time.process_time(), time.perf_counter()
            out.append(
                {
                    "requests": len(snapshot.requests),
                    "offered": applied.offered,
                    "snapshot_ms": (snapshotted - started) * 1000,
                    "decide_ms": (decided - snapshotted) * 1000,
                    "prepare_ms": (ready - decided) * 1000,
                    "apply_ms": (done - ready) * 1000,
                    "total_ms": (done - started) * 1000,
                    "held_cpu_ms": (done - began["cpu"]) * 1000,
                    "held_wall_ms": (done_wall - began["wall"]) * 1000,
                }
            )
    finally:
        event.remove(engine, "begin", _began)
    return out


def main() -> None:
    args = parse_args()
    db = prepare(args)
    work = args.dir / "run.db"
    for leftover in args.dir.glob("run.db*"):
        leftover.unlink()
    shutil.copyfile(db, work)
    os.environ["DATABASE_URL"] = f"sqlite:///{work}"
    reset_engines()
    file_requests(args.requests, seed=11)
    first = measure(1)[0]  # cold: records and anything cached are read here
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    runs = measure(args.runs)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    print(f"{args.requests} queued, {args.open_jobs} open jobs; {first['offered']} offered per run")
    print(f"cold run: {first['total_ms']:.1f} ms CPU")
    print(f"{'median of ' + str(args.runs):<14} {'ms CPU':>8} {'per request':>12}")
    for part in ("snapshot_ms", "decide_ms", "prepare_ms", "apply_ms", "total_ms"):
        ms = statistics.median(r[part] for r in runs)
        print(f"{part.removesuffix('_ms'):<14} {ms:>8.2f} {ms * 1000 / max(first['requests'], 1):>9.0f} us")
    held = sorted(r["held_cpu_ms"] for r in runs)
    wall = sorted(r["held_wall_ms"] for r in runs)
    print(
        f"write lock held: {statistics.median(held):.2f} ms CPU median (max {held[-1]:.2f}),"
        f" {statistics.median(wall):.2f} ms wall median (max {wall[-1]:.2f})"
    )


if __name__ == "__main__":
    main()
