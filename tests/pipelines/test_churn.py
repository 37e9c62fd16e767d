"""The churn pipeline: SQL (shim, DuckDB) and PySpark give the same features; incremental refresh
equals a full recompute over cycles of late and out-of-order events; labels and a point-in-time
training set; the refresh as a job task acting as its service principal."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from catalog.client import Cairn, Metastore
from pipelines.churn import data
from pipelines.churn import features as F
from pipelines.churn.incremental import refresh
from pipelines.churn.labels import backfill, labels, training_set

EV, FT = "main.churn.events", "main.churn.user_features"


def _ts(t: object) -> pa.Scalar:
    return pa.scalar(t, pa.timestamp("us", tz="UTC"))


@pytest.fixture
def ms(tmp_path: Path) -> Iterator[Metastore]:
    m = Metastore.open(home=tmp_path / "home")
    m.initialize("admin")
    m.as_principal("admin").sql("CREATE CATALOG main; CREATE SCHEMA main.churn")
    yield m
    m.close()


def _table(c: Cairn, name: str) -> pa.Table:
    return c.data.read(name).sort_by([("user_id", "ascending"), ("ts", "ascending")])


@pytest.mark.slow
def test_sql_on_the_shim_and_pyspark_give_the_same_table(ms: Metastore, spark: object) -> None:
    admin = ms.as_principal("admin")
    data.create_raw_table(admin, EV, data.generate(300, 12_000, days=100, seed=5))
    F.create_feature_table(admin, "main.churn.by_sql")
    F.create_feature_table(admin, "main.churn.by_spark")
    as_of = data.end_of(95)
    v1 = F.full_sql(admin, EV, "main.churn.by_sql", as_of)
    v2 = F.full_spark(spark, EV, "main.churn.by_spark", as_of, {"principal": "admin", "home": str(ms.settings.home)})
    by_sql, by_spark = _table(admin, "main.churn.by_sql"), _table(admin, "main.churn.by_spark")
    assert v1 == v2 and by_sql.num_rows > 250
    assert by_sql.equals(by_spark)
    row = by_sql.filter(pc.equal(by_sql["freq_30d"], 0)).slice(0, 1).to_pylist()
    assert not row or row[0]["activity_trend"] is None
    # the Spark job's read and write went through the catalog: audited, from Spark
    spark_rows = {(e.action, e.securable_name) for e in admin.audit.list_events(principal="admin") if e.source == "spark"}
    assert ("read_table", EV) in spark_rows and any(name == "main.churn.by_spark" for _, name in spark_rows)


@pytest.mark.parametrize("compact_after", [32, 2])
def test_incremental_refresh_equals_a_full_recompute_over_cycles(ms: Metastore, compact_after: int) -> None:
    admin = ms.as_principal("admin")
    history = data.generate(400, 16_000, days=120, seed=11)
    start = data.end_of(70) - timedelta(minutes=20)  # the 15-minute refreshes cross midnight (the `tod` range wraps)
    data.create_raw_table(admin, EV, history.filter(pc.less_equal(history["ts"], _ts(start))))
    F.create_feature_table(admin, FT)
    F.create_feature_table(admin, "main.churn.full")
    first = refresh(admin, EV, FT, start)
    assert first.mode == "FULL"
    rest = history.filter(pc.greater(history["ts"], _ts(start)))
    rng, t = random.Random(3), start
    for cycles, step in enumerate([15, 15, 15, 60, 24 * 60, 15, 8 * 24 * 60, 15, 40 * 24 * 60, 15]):
        nxt = t + timedelta(minutes=step)
        # on-time events up to a little past the refresh time (some arrive "from the future"), plus late
        # ones for old and new users, far out of order
        arriving = rest.filter(pc.and_(pc.greater(rest["ts"], _ts(t)), pc.less_equal(rest["ts"], _ts(nxt + timedelta(hours=1)))))
        late = data.generate(30, rng.randint(0, 200), days=110, seed=rng.randint(0, 10**6), first_user=rng.choice([0, 380, 1000]))
        admin.data.write(EV, pa.concat_tables([late, arriving]))
        if step == 15 and cycles % 3 == 1:
            admin.data.write(EV, late.slice(0, 0))  # an empty commit: a version with nothing in it
        t = nxt
        r = refresh(admin, EV, FT, t, compact_after=compact_after)
        F.full_sql(admin, EV, "main.churn.full", t)
        assert r.mode == "INCREMENTAL"
        got, want = F.latest_rows(admin.data.read(FT)), F.latest_rows(admin.data.read("main.churn.full"))
        assert got.num_rows == want.num_rows and got.equals(want), f"cycle {cycles} ({step} min)"
        # the refresh state holds the same latest values per user (and is compacted every few refreshes)
        state = _latest_state(admin)
        assert state.column("user_id").equals(got.column("user_id")) and state.column("freq_90d").equals(got.column("freq_90d"))
        assert state.column("last_event_ts").to_pylist() == [int(v.timestamp()) for v in got.column("last_event_ts").to_pylist()]
        assert len(admin.data.plan_scan(FT + "_state").files) <= compact_after + 1
        if cycles == 5:
            # another writer rewrites the feature table (a full recompute at the same time): the state no
            # longer matches the table's version, and the next refresh rebuilds it from the table first
            F.full_sql(admin, EV, FT, t)
    # an incremental refresh writes only the users that changed
    assert 0 < r.users_written < got.num_rows
    # again at the same time and version: nothing to do; at the same time with new (late) events: updated in place
    assert refresh(admin, EV, FT, t).mode == "NOOP"
    admin.data.write(EV, data.generate(20, 150, days=100, seed=77, first_user=5))
    assert refresh(admin, EV, FT, t).mode == "INCREMENTAL"
    F.full_sql(admin, EV, "main.churn.full", t)
    assert F.latest_rows(admin.data.read(FT)).equals(F.latest_rows(admin.data.read("main.churn.full")))
    table = admin.data.read(FT)
    assert table.group_by(["user_id", "ts"]).aggregate([]).num_rows == table.num_rows  # keys stay unique
    # backwards: refused
    from catalog.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match="goes forward"):
        refresh(admin, EV, FT, t - timedelta(minutes=15))
    # raw events deleted: the change feed has deletes, the refresh falls back to a full recompute
    admin.data.delete(EV, "user_id = 3")
    r = refresh(admin, EV, FT, t + timedelta(minutes=15))
    assert r.mode == "FULL" and "delete" in r.reason
    F.full_sql(admin, EV, "main.churn.full", t + timedelta(minutes=15))
    assert F.latest_rows(admin.data.read(FT)).equals(F.latest_rows(admin.data.read("main.churn.full")))


def test_the_tod_ranges_find_exactly_the_users_whose_recency_ticks_over() -> None:
    import duckdb

    from pipelines.churn.refresh_state import DAY, ticking

    rng = random.Random(5)
    con = duckdb.connect()
    for _ in range(300):
        t1 = 1_777_000_000 + rng.randint(0, 3 * DAY)
        t2 = t1 + rng.choice([0, 1, 60, 900, rng.randint(1, DAY - 1), DAY - 1, DAY, 3 * DAY])
        lasts = [t1 - rng.randint(0, 100 * DAY) for _ in range(40)]
        lasts += [t1 - k * DAY - d for k in (0, 1, 5) for d in (0, 1, t2 - t1, t2 - t1 - 1, t2 - t1 + 1)]  # the range edges
        lasts = [v for v in lasts if v <= t1]
        want = {v for v in lasts if (t2 - v) // DAY != (t1 - v) // DAY}
        ranges = ticking(t1, t2)
        got = set() if not ranges else {r[0] for r in con.execute(
            "SELECT l FROM (SELECT l, l % 86400 AS tod FROM (SELECT unnest($1::BIGINT[]) AS l)) WHERE " + " OR ".join(f"({p})" for p in ranges), [lasts]).fetchall()}
        assert got == want, (t1, t2)


@pytest.mark.slow
def test_the_refresh_computed_on_spark_equals_a_full_recompute(ms: Metastore, spark: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines.churn import incremental
    from pipelines.churn.incremental import refresh_spark

    admin = ms.as_principal("admin")
    history = data.generate(300, 12_000, days=100, seed=8)
    t = data.end_of(90) - timedelta(minutes=5)
    data.create_raw_table(admin, EV, history.filter(pc.less_equal(history["ts"], _ts(t))))
    F.create_feature_table(admin, FT)
    F.create_feature_table(admin, "main.churn.full")
    assert refresh(admin, EV, FT, t).mode == "FULL"
    for step in (15, 15, 24 * 60):  # across midnight, then a whole day
        if step == 24 * 60:  # a delta too large for one partition: split by user (one shuffle), the same result
            monkeypatch.setattr(incremental, "SPARK_PARTITION_ROWS", 50)
        nxt = t + timedelta(minutes=step)
        admin.data.write(EV, pa.concat_tables([
            history.filter(pc.and_(pc.greater(history["ts"], _ts(t)), pc.less_equal(history["ts"], _ts(nxt + timedelta(hours=1))))),
            data.generate(20, 100, days=85, seed=step, first_user=290)]))  # late ones, some for new users
        t = nxt
        r = refresh_spark(spark, admin, EV, FT, t)
        F.full_sql(admin, EV, "main.churn.full", t)
        assert r.mode == "INCREMENTAL" and r.users_written > 0
        assert F.latest_rows(admin.data.read(FT)).equals(F.latest_rows(admin.data.read("main.churn.full")))
    # a new (empty) commit at the same time: nothing touched, an empty input, nothing written
    admin.data.write(EV, history.slice(0, 0))
    r = refresh_spark(spark, admin, EV, FT, t)
    assert (r.mode, r.users_written) == ("INCREMENTAL", 0)
    assert F.latest_rows(admin.data.read(FT)).equals(F.latest_rows(admin.data.read("main.churn.full")))
    assert spark.conf.get("spark.sql.adaptive.enabled") == "true"  # type: ignore[attr-defined]  # the session's settings restored


def _latest_state(c: Cairn) -> pa.Table:
    import duckdb

    con = duckdb.connect()
    con.register("s", c.data.read(FT + "_state"))
    return con.execute("SELECT * FROM s QUALIFY row_number() OVER (PARTITION BY user_id ORDER BY features_version DESC) = 1 "
                       "ORDER BY user_id").to_arrow_table()


def test_labels_and_a_point_in_time_training_set(ms: Metastore) -> None:
    admin = ms.as_principal("admin")
    data.create_raw_table(admin, EV, data.generate(300, 15_000, days=120, seed=2))
    F.create_feature_table(admin, FT)
    backfill(admin, EV, FT, data.end_of(60), data.end_of(90), timedelta(days=1))
    l1, l2 = data.end_of(75), data.end_of(85) + timedelta(hours=7)  # the second falls between two refreshes
    rows = labels(admin, EV, [l1, l2])
    assert set(rows.column("label_ts").to_pylist()) == {l1, l2}
    churn_rate = pc.mean(rows["churned"]).as_py()
    assert 0.05 < churn_rate < 0.6
    df = training_set(admin, FT, rows).load_df()
    assert len(df) == rows.num_rows and "recency_days" in df.columns and "churned" in df.columns
    # point in time: at l1 (a refresh time) the features are the full recompute as of l1; at l2 those of
    # the refresh before it (day 85), never anything later
    F.create_feature_table(admin, "main.churn.at")
    for label_time, feature_time in ((l1, l1), (l2, data.end_of(85))):
        F.full_sql(admin, EV, "main.churn.at", feature_time)
        want = {r["user_id"]: r for r in admin.data.read("main.churn.at").to_pylist()}
        got = df[df["label_ts"] == label_time]
        for r in got.head(50).to_dict("records"):
            w = want[r["user_id"]]
            assert (r["freq_7d"], r["freq_30d"], r["recency_days"]) == (w["freq_7d"], w["freq_30d"], w["recency_days"])
    # churners fade out: their 7-day activity is lower on average
    assert df[df["churned"] == 1]["freq_7d"].mean() < df[df["churned"] == 0]["freq_7d"].mean()


@pytest.mark.slow
def test_the_churn_job_refreshes_as_its_service_principal(ms: Metastore) -> None:
    from pipelines.jobs.loader import load
    from pipelines.jobs.runner import run_job

    admin = ms.as_principal("admin")
    data.create_raw_table(admin, EV, data.generate(200, 5_000, days=100, seed=4))
    admin.principals.create_service_principal("churn-pipeline")
    admin.sql("GRANT USE CATALOG ON CATALOG main TO `churn-pipeline`; GRANT USE SCHEMA, CREATE TABLE ON SCHEMA main.churn TO `churn-pipeline`;"
              "GRANT SELECT ON TABLE main.churn.events TO `churn-pipeline`")
    F.create_feature_table(ms.as_principal("churn-pipeline"), FT)
    admin.jobs.create_job(load(Path("pipelines/churn/job.yml")))
    first = run_job(ms, "admin", "churn-features")
    assert first.result_state == "SUCCESS", first.tasks[0].state_message
    second = run_job(ms, "admin", "churn-features")
    assert second.result_state == "SUCCESS"
    lineage = admin.lineage.get_run(second.tasks[0].lineage_run_id)
    assert lineage["principal"] == "churn-pipeline" and lineage["parameters"]["job_run_id"] == second.run_id
    assert [n for n, _ in lineage["inputs"]][:1] == [FT] or EV in [n for n, _ in lineage["inputs"]]
    # the service principal may not write the raw table: a task that tried would fail (governed)
    from catalog.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        ms.as_principal("churn-pipeline").data.write(EV, data.generate(1, 3, seed=1))
