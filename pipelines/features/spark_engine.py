"""Point-in-time joins on Spark (scale-out), with the embedded engine's semantics exactly.

Feature tables are read through the governed data source (`format("cairn_features")`, the
`format("cairn")` source at the versions the training set pinned: SELECT checked and audited by the
planning worker, row filters and masks applied on the executors). A snapshot that may hold ties is
read with two more columns: the Delta version that added each row's file and the row's place in
it, so the later commit (then the later row) wins as on DuckDB.

The ASOF join is a sort, not a range join: training rows and feature rows of one key are unioned,
ordered by time (feature rows first at equal times, since `feature_ts <= lookup_ts` is inclusive),
and each training row takes the last feature row before it (`last(..., ignorenulls)` over the
window; a feature row whose values are null still counts, so a null never falls back to an older
row). Times are compared as microseconds since the epoch; run the session in UTC
(`pipelines.spark.local_session` does) so that times without a zone read as UTC, as on DuckDB.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pipelines.features.spec import _micros
from pipelines.spark import CairnDataSource, CairnReader

TIES_FORMAT = "cairn_features"
ROW = "__cairn_row"


class CairnFeatureSource(CairnDataSource):
    """`format("cairn_features")`: `format("cairn")` (same governed planning, same policy on the
    executors) with every column nullable (files from different writers disagree on NOT NULL flags)
    and, with option `ties=true`, `__cairn_commit` and `__cairn_file_row`."""

    @classmethod
    def name(cls) -> str:
        return TIES_FORMAT

    def schema(self) -> str:
        # Every column nullable: files written by different writers disagree on NOT NULL flags.
        cols = ", ".join(f"`{c.name}` {c.type_text}" for c in self._scan().columns)
        return cols + (", `__cairn_commit` bigint, `__cairn_file_row` bigint" if self.options.get("ties") == "true" else "")

    def reader(self, schema: Any) -> Any:
        from pipelines.features.engine import commit_versions, local
        from pipelines.spark import _client, _table_name

        plan = self._scan()
        if self.options.get("ties") != "true":
            return TieReader(plan, schema, None)
        # The location comes from the catalog, never from an option a caller could point elsewhere.
        location = _client(self.options).tables.get_table(_table_name(self.options)).storage_location or ""
        root = local(location).rstrip("/") + "/"
        versions = commit_versions(location, plan.version)
        return TieReader(plan, schema, {local(f): versions.get(local(f)[len(root):], -1) for f in plan.files})


class TieReader(CairnReader):
    def __init__(self, plan: Any, schema: Any, commits: dict[str, int] | None) -> None:
        super().__init__(plan, schema)
        self.commits = commits

    def read(self, partition: Any) -> Iterator[Any]:
        import pyarrow as pa

        path = partition.path
        if path.startswith("file://"):
            path = path[len("file://"):]
        table = self.load(partition)
        if self.commits is not None:
            # Numbered before the row filter runs: the place in the file, not among visible rows.
            table = table.append_column("__cairn_file_row", pa.array(range(table.num_rows), pa.int64()))
            table = table.append_column("__cairn_commit", pa.array([self.commits.get(path, -1)] * table.num_rows, pa.int64()))
        present = [c for c in self.columns if c in table.column_names]
        if not self.policy.empty:
            from catalog.scan import apply_policy

            table = apply_policy(table, self.policy, present, None)
        from catalog.delta import arrow_type

        # In the declared types exactly: writers differ on NOT NULL flags and zone names (UTC, Etc/UTC).
        target = pa.schema([pa.field(c, arrow_type(self.types[c]) if c in self.types else pa.int64(), True) for c in present])
        yield from table.select(present).cast(target).to_batches()


def _micros_of(F: Any, column: Any, type_text: str) -> Any:
    return F.unix_micros(column.cast("timestamp")) if type_text != "timestamp" else F.unix_micros(column)


def build(ts: Any) -> Any:
    """The training set `ts` (created from a Spark DataFrame) as a Spark DataFrame, in the rows' order."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from catalog.errors import InvalidArgument

    df = ts.spark_df
    spark = df.sparkSession
    spark.dataSource.register(CairnDataSource)
    spark.dataSource.register(CairnFeatureSource)
    cairn = ts.client.cairn
    settings = cairn.metastore.settings
    options = {"home": str(settings.home), "url": settings.metastore_url, "principal": cairn.principal}
    labels = df.toDF(*[c.lower() for c in df.columns]).withColumn(ROW, F.monotonically_increasing_id())
    labels = labels.localCheckpoint()  # row ids fixed once: the labels are read by every lookup
    out = labels
    outputs: list[str] = []
    for i, r in enumerate(ts.lookups):
        if not r.features:
            continue
        read = ts.reads[r.table]
        source = spark.read.format(TIES_FORMAT).options(**options).option("versionAsOf", str(read.plan.version)) \
            .option("ties", "false" if read.unique else "true")
        feats = source.load(r.table)
        keys = list(zip([k.lower() for k in r.lookup.lookup_key], r.primary_keys))
        cols = [pk for _, pk in keys] + ([r.timestamp_key] if r.timestamp_key else []) + [c for c, _ in r.features]
        extra = [] if read.unique else ["__cairn_commit", "__cairn_file_row"]
        feats = feats.select(*[F.col(c) for c in dict.fromkeys(cols + extra)])
        tie = [F.col("__cairn_commit").desc(), F.col("__cairn_file_row").desc()] if extra else []
        part = [pk for _, pk in keys]
        if r.point_in_time:
            tk = r.timestamp_key
            if extra:  # one row per (keys, time): the later commit, then the later row
                w = Window.partitionBy(*part, tk).orderBy(*tie)
                feats = feats.withColumn("__rn", F.row_number().over(w)).where("__rn = 1").drop("__rn")
            tlk = r.lookup.timestamp_lookup_key.lower()
            t_micros = _micros_of(F, F.col(tk), r.types[tk])
            fx = feats.select(
                *[F.col(pk).cast(labels.schema[lk].dataType).alias(lk) for lk, pk in keys], t_micros.alias("__t"),
                F.lit(None).cast("bigint").alias(ROW), F.lit(0).alias("__is_label"),
                F.struct(*[F.col(c).alias(c) for c, _ in r.features], t_micros.alias("__t")).alias("__f"))
            lx = labels.select(*[F.col(lk) for lk, _ in keys], _micros_of(F, F.col(tlk), ts.df_types[tlk]).alias("__t"), F.col(ROW),
                               F.lit(1).alias("__is_label"), F.lit(None).cast(fx.schema["__f"].dataType).alias("__f"))
            lx = lx.where(F.col("__t").isNotNull())  # a null time matches nothing
            w = Window.partitionBy(*[lk for lk, _ in keys]).orderBy(F.col("__t").asc(), F.col("__is_label").asc()) \
                .rowsBetween(Window.unboundedPreceding, Window.currentRow)
            m = f"__m{i}"
            got = lx.unionByName(fx).withColumn(m, F.last("__f", ignorenulls=True).over(w)) \
                .where("__is_label = 1").select(F.col(ROW), F.col("__t").alias(f"__lt{i}"), F.col(m))
            hit = F.col(m).isNotNull()
            if r.lookup.lookback_window is not None:
                hit = hit & (F.col(f"{m}.__t") >= F.col(f"__lt{i}") - F.lit(_micros(r.lookup.lookback_window)))
            value = {c: F.col(f"{m}.{c}") for c, _ in r.features}
            temps = [m, f"__lt{i}"]
        else:
            if r.timestamp_key or extra:
                order = ([F.col(r.timestamp_key).desc()] if r.timestamp_key else []) + tie
                w = Window.partitionBy(*part).orderBy(*order)
                feats = feats.withColumn("__rn", F.row_number().over(w)).where("__rn = 1").drop("__rn")
            right = feats.select(*[F.col(pk).cast(labels.schema[lk].dataType).alias(f"__k{j}") for j, (lk, pk) in enumerate(keys)],
                                 F.lit(True).alias(f"__hit{i}"), *[F.col(c).alias(f"__v{i}_{c}") for c, _ in r.features])
            cond = None
            left = labels.select(F.col(ROW), *[F.col(lk) for lk, _ in keys])
            for j, (lk, _) in enumerate(keys):
                c = left[lk] == right[f"__k{j}"]
                cond = c if cond is None else cond & c
            got = left.join(right, cond, "left").select(F.col(ROW), F.col(f"__hit{i}"), *[F.col(f"__v{i}_{c}") for c, _ in r.features])
            hit = F.col(f"__hit{i}").isNotNull()
            value = {c: F.col(f"__v{i}_{c}") for c, _ in r.features}
            temps = [f"__hit{i}", *[f"__v{i}_{c}" for c, _ in r.features]]
        defaults = {k.lower(): v for k, v in (r.lookup.default_values or {}).items()}
        spark_types = {c: r.types[c] for c, _ in r.features}
        # Joined back first: a training row the lookup never saw (a null time) still gets the default.
        out = out.join(got, on=ROW, how="left")
        for c, o in r.features:
            fallback = F.lit(defaults[c]).cast(spark_types[c]) if c in defaults else F.lit(None).cast(spark_types[c])
            out = out.withColumn(o, F.when(hit, value[c]).otherwise(fallback))
            outputs.append(o)
        out = out.drop(*temps)
    for f in ts.functions:
        fn = ts.function_defs[f.udf_name]
        params = [c.name for c in fn.columns]
        args = [f.input_bindings.get(p, p).lower() for p in params]
        name = (f.output_name or f.udf_name.rsplit(".", 1)[-1]).lower()
        if (fn.data_source_format or "SQL") == "SQL":
            import sqlglot

            from catalog.policies import render_function

            sql = render_function(fn.routine_definition or "NULL", params, ["`" + a + "`" for a in args], cairn.principal, ts._groups())
            out = out.withColumn(name, F.expr(sqlglot.transpile(sql, read="duckdb", write="spark")[0]).cast(fn.source or "string"))
        else:
            raise InvalidArgument(f"{fn.full_name} is a Python function; Python feature functions run on the embedded engine")
    keep = [c for c in [*ts.df_columns, *outputs, *[(f.output_name or f.udf_name.rsplit('.', 1)[-1]).lower() for f in ts.functions]]
            if c not in ts.exclude_columns]
    return out.orderBy(ROW).select(*keep)
