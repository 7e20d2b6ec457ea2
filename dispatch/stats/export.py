"""`GET /api/stats/export.csv`: one row per request of the period, for the bureau's own tools.
No names, phone numbers or addresses: the elder appears by id only (PIPL's minimum scope)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import select

from dispatch.core.clock import local
from dispatch.core.db import session_scope
from dispatch.stats import facts
from dispatch.stats.period import Period
from dispatch.stats.sql import F, O, P, R, V, W

COLUMNS = [
    "request_id", "created_at", "kind", "priority", "channel", "status", "township", "elder_id",
    "provider_id", "provider_kind", "window_start", "window_end", "assigned_at", "seconds_to_assign",
    "check_in_at", "check_out_at", "seconds_to_arrival", "visit_outcome", "verified",
    "escalation_reason", "rating", "plan_id", "welfare_reason",
]  # fmt: skip
CHUNK_BYTES = 64 * 1024


def _when(value: datetime | None) -> str:
    return local(value).isoformat(timespec="seconds") if value else ""


def _secs(later: datetime | None, earlier: datetime | None) -> str:
    return f"{(later - earlier).total_seconds():.1f}" if later and earlier else ""


def _row(r: Any) -> list[Any]:
    due = max(r.created_at, r.window_start)
    return [
        r.id, _when(r.created_at), r.kind, r.priority, r.channel, r.status, r.township, r.elder_id,
        r.provider_id or "", r.provider_kind or "", _when(r.window_start), _when(r.window_end),
        _when(r.assigned_at), _secs(r.assigned_at, r.created_at), _when(r.check_in_at),
        _when(r.check_out_at), _secs(r.check_in_at, due), r.outcome or "",
        "" if r.verified is None else int(r.verified), r.escalation_reason or "",
        r.rating or "", r.plan_id or "", r.welfare_reason or "",
    ]  # fmt: skip


def request_rows(period: Period) -> Iterator[str]:
    """CSV text in chunks, read with a session of its own (the response outlives the request's)."""
    stmt = (
        select(
            R.c.id, R.c.created_at, R.c.kind, R.c.priority, R.c.channel, R.c.status, R.c.township,
            R.c.elder_id, R.c.provider_id, P.c.kind.label("provider_kind"), R.c.window_start,
            R.c.window_end, R.c.assigned_at, V.c.check_in_at, V.c.check_out_at, V.c.outcome, V.c.verified,
            R.c.escalation_reason, F.c.rating, O.c.plan_id, W.c.reason.label("welfare_reason"),
        )
        .select_from(
            R.outerjoin(P, P.c.id == R.c.provider_id)
            .outerjoin(V, V.c.request_id == R.c.id)
            .outerjoin(F, F.c.request_id == R.c.id)
            .outerjoin(O, O.c.request_id == R.c.id)
            .outerjoin(W, W.c.request_id == R.c.id)
        )
        .where(*facts.in_period(period))
        .order_by(R.c.id)
    )  # fmt: skip
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")  # Excel reads UTF-8 (the townships' names) only with a byte-order mark
    writer.writerow(COLUMNS)
    with session_scope(write=False) as session:
        for row in session.execute(stmt.execution_options(yield_per=2000)):
            writer.writerow(_row(row))
            if buffer.tell() > CHUNK_BYTES:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()
