"""Generated raw events for N users: realistic activity, churners fading out.

Each user signs up some day, has a base activity rate (log-normal: most users are light, a few are
heavy) and, for churners (about a third), a day from which their activity fades out exponentially
(a few more events in the following days, then none). Events carry whole-second timestamps.
Generated vectorized with numpy, sorted by time (so a Delta reader skips files by `ts` stats).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

EVENT_TYPES = ("page_view", "search", "add_to_cart", "purchase", "support_contact")
_EVENT_P = (0.62, 0.2, 0.1, 0.06, 0.02)
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)  # generated history starts here
RAW_COLUMNS = [
    {"name": "user_id", "type": "bigint", "nullable": False},
    {"name": "event_type", "type": "string", "nullable": False},
    {"name": "ts", "type": "timestamp", "nullable": False},
    {"name": "amount", "type": "double"},
]


def generate(users: int, events: int, days: int = 120, seed: int = 7, first_user: int = 0, start: datetime = EPOCH) -> Any:
    """About `events` events of `users` users over `days` days from `start`, as an Arrow table sorted by ts."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    span = days * 86400
    signup = rng.uniform(-0.5, 0.8, users).clip(0, None) * span  # half the users exist from the start
    churner = rng.random(users) < 0.33
    churn_at = np.where(churner, signup + rng.uniform(0.05, 1.0, users) * (span - signup), span)
    rate = rng.lognormal(0.0, 0.9, users)
    active = (churn_at - signup) / 86400 + np.where(churner, 5.0, 0.0)  # fading tail ~ 5 days of activity
    weight = rate * active
    counts = rng.poisson(weight / weight.sum() * events)
    uid = np.repeat(np.arange(users, dtype=np.int64), counts)
    n = int(counts.sum())
    u = rng.random(n)
    lo, hi = np.repeat(signup, counts), np.repeat(churn_at, counts)
    tail = np.repeat(churner, counts) & (rng.random(n) < 5.0 / np.repeat(active, counts).clip(5.0, None))
    ts = np.where(tail, hi + rng.exponential(2.5 * 86400, n), lo + u * (hi - lo))
    keep = ts < span
    uid, ts = uid[keep], np.floor(ts[keep]).astype(np.int64)
    order = np.argsort(ts, kind="stable")
    uid, ts = uid[order] + first_user, ts[order]
    kind = rng.choice(len(EVENT_TYPES), size=len(ts), p=_EVENT_P)
    amount = np.where(kind == 3, np.round(rng.lognormal(3.0, 0.8, len(ts)), 2), np.nan)
    base = int(start.timestamp()) * 1_000_000
    return pa.table({
        "user_id": pa.array(uid, pa.int64()),
        "event_type": pa.DictionaryArray.from_arrays(pa.array(kind.astype(np.int32)), pa.array(EVENT_TYPES)).cast(pa.string()),
        "ts": pa.array(base + ts * 1_000_000, pa.timestamp("us", tz="UTC")),
        "amount": pa.array(amount, pa.float64(), from_pandas=True),
    })


def end_of(days: int, start: datetime = EPOCH) -> datetime:
    return start + timedelta(days=days)


def create_raw_table(cairn: Any, name: str, data: Any = None, batch_days: int = 0) -> Any:
    """The governed raw events table (change data feed on), filled with `data` if given: in one
    commit, or as ingestion lands it, one commit (file) per `batch_days` days of events."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table = cairn.tables.create_table(name, RAW_COLUMNS, comment="raw user activity events", enable_change_data_feed=True)
    if data is None or not data.num_rows:
        return table
    if not batch_days:
        cairn.data.write(name, data)
        return table
    day = pc.divide(pc.cast(data.column("ts"), pa.int64()), 86_400_000_000 * batch_days).combine_chunks()  # data is sorted by ts
    bounds = pc.run_end_encode(day).run_ends.to_pylist()
    start = 0
    for end in bounds:
        cairn.data.write(name, data.slice(start, end - start))
        start = end
    return table
