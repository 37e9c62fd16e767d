"""Authorization benchmark: privilege checks and visible listings over a large metastore.

Builds 100 catalogs x 10 schemas x 100 tables, 10,000 users in 1,000 groups nested up to 5 deep and
about 1,000,000 grants (bulk-loaded through the store: generating data is not what is measured),
then measures `can(principal, SELECT, table)` warm and cold, the same check done naively with one
SQL query per check walking the hierarchy, a whole governed read call (`tables.get_table`: unit of
work, change-log sync, check, audit row), visible-table listings through the service, and that a
grant or revoke is seen by the very next check. Prints one JSON object, with the targets:

    governed_read_p50_ms <= 0.5        a governed read, its principal's checks warm in the cache
    visible_tables_listing_ms <= 20    the tables a principal sees across a catalog of 1,000

    python benchmarks/authz.py [--quick] [--url URL]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, text

from catalog.authz import AuthzCache
from catalog.client import Metastore
from catalog.errors import NotFound
from catalog.privileges import Kind, Privilege
from catalog.store import tables as t
from catalog.store.metastore import MetastoreStore, now

NAIVE = text(
    """
    WITH RECURSIVE g(name) AS (
        SELECT CAST(:p AS VARCHAR(255)) UNION SELECT gm.group_name FROM group_members gm JOIN g ON gm.member_name = g.name
    ), chain(id, parent_id) AS (
        SELECT id, parent_id FROM securables WHERE kind = 'TABLE' AND full_name = :n
        UNION ALL SELECT s.id, s.parent_id FROM securables s JOIN chain c ON s.id = c.parent_id
    )
    SELECT EXISTS (
        SELECT 1 FROM grants gr JOIN chain c ON gr.securable_id = c.id JOIN g ON gr.principal = g.name
        WHERE gr.privilege IN ('SELECT', 'ALL PRIVILEGES')
    ) OR EXISTS (SELECT 1 FROM securables s JOIN g ON s.owner = g.name WHERE s.id = (SELECT id FROM chain LIMIT 1))
    """
)


TARGETS = {"governed_read_p50_ms": 0.5, "visible_tables_listing_ms": 20.0}


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def build(ms: Metastore, catalogs: int, schemas: int, tables: int, users: int, groups: int, grants_per_table: int, rng: random.Random) -> dict:
    ts = now()
    started = time.perf_counter()
    with ms.engine.begin() as conn:
        store = MetastoreStore(conn)
        root = store.metastore_id()
        conn.execute(insert(t.principals), [dict(name=f"g{i}", kind="GROUP", is_admin=False, created_at=ts, created_by="bench") for i in range(groups)])
        conn.execute(insert(t.principals), [dict(name=f"u{i}", kind="USER", is_admin=False, created_at=ts, created_by="bench") for i in range(users)])
        # Groups nest in chains of five: g1 in g0, g2 in g1, ... g5 starts a new chain.
        conn.execute(insert(t.group_members), [dict(group_name=f"g{i - 1}", member_name=f"g{i}") for i in range(groups) if i % 5])
        members = []
        for u in range(users):
            for g in rng.sample(range(groups), 2):
                members.append(dict(group_name=f"g{g}", member_name=f"u{u}"))
        conn.execute(insert(t.group_members), members)

        def rows(kind: str, parent: int | None, name: str, full: str) -> dict:
            return dict(kind=kind, parent_id=parent, name=name, full_name=full, owner="admin", comment=None, properties={}, spec={},
                        created_at=ts, created_by="admin", updated_at=ts, updated_by="admin")

        conn.execute(insert(t.securables), [rows("CATALOG", root, f"c{c}", f"c{c}") for c in range(catalogs)])
        ids = {r.full_name: r.id for r in conn.execute(text("SELECT id, full_name FROM securables WHERE kind = 'CATALOG'"))}
        conn.execute(insert(t.securables), [rows("SCHEMA", ids[f"c{c}"], f"s{s}", f"c{c}.s{s}") for c in range(catalogs) for s in range(schemas)])
        ids.update({r.full_name: r.id for r in conn.execute(text("SELECT id, full_name FROM securables WHERE kind = 'SCHEMA'"))})
        batch = []
        for c in range(catalogs):
            for s in range(schemas):
                pid = ids[f"c{c}.s{s}"]
                batch.extend(rows("TABLE", pid, f"t{i}", f"c{c}.s{s}.t{i}") for i in range(tables))
            conn.execute(insert(t.securables), batch)
            batch = []
        table_ids = [r[0] for r in conn.execute(text("SELECT id FROM securables WHERE kind = 'TABLE' ORDER BY id"))]
        grant_rows = []
        # Usage: every group may use a few catalogs and schemas.
        for c in range(catalogs):
            for g in rng.sample(range(groups), min(groups, 50)):
                grant_rows.append(dict(securable_id=ids[f"c{c}"], principal=f"g{g}", privilege="USE CATALOG", granted_by="admin", granted_at=ts))
            for s in range(schemas):
                for g in rng.sample(range(groups), min(groups, 20)):
                    grant_rows.append(dict(securable_id=ids[f"c{c}.s{s}"], principal=f"g{g}", privilege="USE SCHEMA", granted_by="admin", granted_at=ts))
        conn.execute(insert(t.grants), grant_rows)
        privileges = ["SELECT", "SELECT", "SELECT", "MODIFY", "ALL PRIVILEGES"]
        total = len(grant_rows)
        for start in range(0, len(table_ids), 5000):
            chunk = []
            for sid in table_ids[start : start + 5000]:
                seen = set()
                for _ in range(grants_per_table):
                    who = f"g{rng.randrange(groups)}" if rng.random() < 0.7 else f"u{rng.randrange(users)}"
                    priv = rng.choice(privileges)
                    if (who, priv) in seen:
                        continue
                    seen.add((who, priv))
                    chunk.append(dict(securable_id=sid, principal=who, privilege=priv, granted_by="admin", granted_at=ts))
            conn.execute(insert(t.grants), chunk)
            total += len(chunk)
    if ms.engine.dialect.name == "postgresql":
        with ms.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    return {"tables": len(table_ids), "grants": total, "build_s": round(time.perf_counter() - started, 1)}


def fresh_database(url: str, name: str) -> str:
    """A new, empty database next to the one `url` names (PostgreSQL), so every run starts clean."""
    from catalog.store import db

    admin = db.make_engine(url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.rsplit("/", 1)[0] + "/" + name


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="a small metastore, under 30 s")
    ap.add_argument("--url", help="metastore URL (default: a fresh SQLite file)")
    args = ap.parse_args()
    rng = random.Random(7)
    if args.quick:
        shape = dict(catalogs=2, schemas=5, tables=100, users=500, groups=50, grants_per_table=10)
        samples = 2000
    else:
        shape = dict(catalogs=100, schemas=10, tables=100, users=10_000, groups=1_000, grants_per_table=10)
        samples = 20_000
    home = tempfile.mkdtemp(prefix="cairn-authz-")
    if args.url:
        args.url = fresh_database(args.url, "cairn_bench_authz")
    ms = Metastore.open(home=home, url=args.url)
    ms.initialize("admin")
    built = build(ms, rng=rng, **shape)

    pairs = [
        (f"u{rng.randrange(shape['users'])}", f"c{rng.randrange(shape['catalogs'])}.s{rng.randrange(shape['schemas'])}.t{rng.randrange(shape['tables'])}")
        for _ in range(samples)
    ]

    def can(view, principal: str, name: str) -> bool:  # type: ignore[no-untyped-def]
        sid = view.resolve(Kind.TABLE, name)
        return sid is not None and view.has_usage(principal, view.chain(sid)[1].id) and view.has(principal, Privilege.SELECT, sid)

    # Cold: a fresh cache per check (a new process, or right after the entries were evicted).
    cold = []
    with ms.engine.connect() as conn:
        store = MetastoreStore(conn)
        for p, n in pairs[:300]:
            start = time.perf_counter_ns()
            view = AuthzCache().view(store)
            can(view, p, n)
            cold.append((time.perf_counter_ns() - start) / 1000)

    # Warm: one shared cache, every pair seen once before measuring.
    cache = AuthzCache()
    warm = []
    allowed = 0
    first_allowed = None
    with ms.engine.connect() as conn:
        view = cache.view(MetastoreStore(conn))
        for p, n in pairs:
            can(view, p, n)
        for p, n in pairs:
            start = time.perf_counter_ns()
            ok = can(view, p, n)
            warm.append((time.perf_counter_ns() - start) / 1000)
            allowed += ok
            if ok and first_allowed is None:
                first_allowed = p
        # The same check with one SQL query per check, walking groups and ancestors.
        naive = []
        for p, n in pairs[:1000]:
            start = time.perf_counter_ns()
            conn.execute(NAIVE, {"p": p, "n": n}).scalar()
            naive.append((time.perf_counter_ns() - start) / 1000)
        # Per unit of work, the engine first reads the change log past its high-water mark.
        sync = []
        for _ in range(500):
            start = time.perf_counter_ns()
            cache.view(MetastoreStore(conn))
            sync.append((time.perf_counter_ns() - start) / 1000)

    # Through the service: a full governed call (unit of work, check, audit row).
    client = ms.as_principal(first_allowed)
    service = []
    for _p, n in pairs[:300]:
        start = time.perf_counter_ns()
        try:
            client.grants.check("table", n, "SELECT")
        except Exception:
            pass
        service.append((time.perf_counter_ns() - start) / 1000)

    # Visible listings for a user who may use catalog c0 and schema c0.s0.
    admin = ms.as_principal("admin")
    admin.grants.grant("catalog", "c0", "u0", "USE CATALOG")
    admin.grants.grant("catalog", "c0", "u0", "USE SCHEMA")
    u0 = ms.as_principal("u0")
    u0.tables.list_tables("c0", "s0", max_results=1000)
    t0 = time.perf_counter()
    reps = 20
    for _ in range(reps):
        visible_schema = len(u0.tables.list_tables("c0", "s0", max_results=1000))
    list_schema_ms = (time.perf_counter() - t0) * 1000 / reps
    u0.tables.list_tables("c0", max_results=1000)
    t0 = time.perf_counter()
    for _ in range(5):
        visible_catalog = len(u0.tables.list_tables("c0", max_results=1000))
    list_catalog_ms = (time.perf_counter() - t0) * 1000 / 5

    # A whole governed read call (unit of work, change-log sync, check, audit row) by a user who may
    # read every table of catalog c1: first touch of each table (its chain and grants load), then warm.
    admin.grants.grant("catalog", "c1", "u1", "USE CATALOG")
    admin.grants.grant("catalog", "c1", "u1", "USE SCHEMA")
    admin.grants.grant("catalog", "c1", "u1", "SELECT")
    u1 = ms.as_principal("u1")
    reads = [f"c1.s{rng.randrange(shape['schemas'])}.t{rng.randrange(shape['tables'])}" for _ in range(min(samples, 3000))]
    read_cold, read_warm = [], []
    for n in reads:
        start = time.perf_counter_ns()
        u1.tables.get_table(n)
        read_cold.append((time.perf_counter_ns() - start) / 1e6)
    for n in reads:
        start = time.perf_counter_ns()
        u1.tables.get_table(n)
        read_warm.append((time.perf_counter_ns() - start) / 1e6)
    read_cold = read_cold[:300]  # the first touches (later ones repeat tables already seen)

    # A grant or revoke is visible to the very next check, in this process and in another one.
    other = Metastore.open(home=home, url=args.url)
    probe = "c0.s0.t0"
    u0_other = other.as_principal("u0")

    def can_read(client) -> bool:  # type: ignore[no-untyped-def]
        try:
            return client.grants.check("table", probe, "SELECT")
        except NotFound:
            return False

    for g in admin.grants.list_grants("table", probe):  # start from no grants on the probe table
        admin.grants.revoke("table", probe, g.principal, g.privilege)
    before = can_read(u0_other)
    admin.grants.grant("table", probe, "u0", "SELECT")
    after_grant_other, after_grant_here = can_read(u0_other), can_read(u0)
    admin.grants.revoke("table", probe, "u0", "SELECT")
    after_revoke = can_read(u0_other)

    warm_p50 = statistics.median(warm)
    naive_p50 = statistics.median(naive)
    measured = {
        "governed_read_p50_ms": round(statistics.median(read_warm), 3),
        "visible_tables_listing_ms": round(list_catalog_ms, 2),
    }
    print(json.dumps({
        "benchmark": "authz",
        "quick": args.quick,
        "backend": ms.engine.dialect.name,
        **built,
        "users": shape["users"],
        "groups": shape["groups"],
        "checks_sampled": len(warm),
        "allowed_fraction": round(allowed / len(warm), 3),
        "warm_check_p50_us": round(warm_p50, 2),
        "warm_check_p99_us": round(pct(warm, 0.99), 2),
        "warm_checks_per_s": round(1e6 / statistics.mean(warm)),
        "cold_check_p50_us": round(statistics.median(cold), 1),
        "cold_check_p99_us": round(pct(cold, 0.99), 1),
        "naive_check_p50_us": round(naive_p50, 1),
        "naive_check_p99_us": round(pct(naive, 0.99), 1),
        "warm_vs_naive_speedup": round(naive_p50 / warm_p50, 1),
        "change_log_sync_p50_us": round(statistics.median(sync), 1),
        "service_check_p50_us": round(statistics.median(service), 1),
        "list_visible_schema_ms": round(list_schema_ms, 2),
        "visible_in_schema": visible_schema,
        "list_visible_catalog_ms": round(list_catalog_ms, 2),
        "visible_in_catalog": visible_catalog,
        "grant_visible_to_next_check": bool(after_grant_other and after_grant_here and not before),
        "revoke_visible_to_next_check": not after_revoke,
        **measured,
        "governed_read_p99_ms": round(pct(read_warm, 0.99), 3),
        "governed_read_first_touch_p50_ms": round(statistics.median(read_cold), 3),
        "targets": TARGETS,
        "meets_targets": all(measured[k] <= v for k, v in TARGETS.items()),
    }))


if __name__ == "__main__":
    main()
