"""A governed PySpark data source on Spark 4's Python Data Source API.

    from pipelines.spark import register
    register(spark)                                   # once per session
    df = spark.read.format("cairn").option("versionAsOf", 3).load("main.raw.events")
    df.write.format("cairn").mode("append").save("main.features.user_activity")

With `.option("run", run_id)` on reads and writes (a run from `cairn.lineage.start_run`), the
lineage graph records that this Spark application read these versions and wrote that one.

Planning runs in Spark's Python worker on the driver host and goes through the governed services
as the acting principal (option `principal`, or `CAIRN_PRINCIPAL`): it checks SELECT or MODIFY,
writes the audit rows and fixes the snapshot version. Executors then read the snapshot's Parquet
files (one partition per file) or write new Parquet files into the table's location; the driver
commits those files to the Delta log in one transaction, or deletes them on abort. Executors never
touch the metastore, so this runs unchanged on a cluster whose nodes share the table storage.

Filters Spark pushes down (`pushFilters`: =, <, <=, >, >=, IN, IS [NOT] NULL, <>, NOT IN) skip whole
files before any task starts: by a partition column's value in the Delta log, and by another column's
min and max in the log (`ScanPlan.skip`), never by a masked column's. Spark still applies every filter
to the rows read. Only where Spark keeps the read planned by a pushdown to that scan, though: Spark
4.3 keeps it on the loaded relation, shared by every scan of the DataFrame, so after
`df.where("id = 1").count()` a plain `df.count()` (or the other side of `df.where(a).union(df.where(b))`)
would read only the files kept for `id = 1`. There files are skipped only with `.option("skipFiles",
"true")`, for a DataFrame scanned once (one filter set per load).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pyspark.sql.datasource import (
    DataSource,
    DataSourceArrowWriter,
    DataSourceReader,
    Filter,
    InputPartition,
    WriterCommitMessage,
)
from pyspark.sql.types import StructType

FORMAT = "cairn"


def _client(options: Mapping[str, str]) -> Any:
    from catalog.client import Metastore
    from catalog.entities import Source

    metastore = Metastore.open(options.get("home") or None, options.get("url") or None)
    return metastore.as_principal(options.get("principal") or None, Source.SPARK)


def _ddl(columns: Any) -> str:
    return ", ".join(f"`{c.name}` {c.type_text}" + ("" if c.nullable else " NOT NULL") for c in columns)


def _table_name(options: Mapping[str, str]) -> str:
    name = options.get("path") or options.get("table")
    if not name:
        from catalog.errors import InvalidArgument

        raise InvalidArgument("name the table: .load('catalog.schema.table') or .save('catalog.schema.table')")
    return name


class CairnDataSource(DataSource):
    """`format("cairn")`: governed reads and writes of catalog tables."""

    @classmethod
    def name(cls) -> str:
        return FORMAT

    def schema(self) -> str:
        return _ddl(self._scan().columns)

    def _skip_files(self) -> bool:
        text = (self.options.get("skipFiles") or ("true" if SCAN_SCOPED_PUSHDOWN else "false")).lower()
        if text not in ("true", "false"):
            from catalog.errors import InvalidArgument

            raise InvalidArgument(f"option skipFiles is true or false, not {text!r}")
        return text == "true"

    def _scan(self) -> Any:
        if not hasattr(self, "_plan"):
            version = self.options.get("versionAsOf")
            # With the log's per-file min and max (none under a row filter or of a masked column), for `pushFilters`.
            self._plan = _client(self.options).data.plan_scan(
                _table_name(self.options), int(version) if version is not None else None, self.options.get("timestampAsOf"),
                run_id=self.options.get("run") or None, stats=self._skip_files(),
            )
        return self._plan

    def reader(self, schema: StructType) -> DataSourceReader:
        return CairnReader(self._scan(), schema, self._skip_files())

    def writer(self, schema: StructType, overwrite: bool) -> CairnWriter:
        mode = "overwrite" if overwrite else "append"
        plan = _client(self.options).data.prepare_write(_table_name(self.options), mode)
        return CairnWriter(dict(self.options), plan.table, plan.files[0], mode, plan.partition_columns)


@dataclass
class FilePartition(InputPartition):
    path: str
    values: tuple[Any, ...] = ()  # its partition values, from the Delta log (not in the file)


def _filter_tuple(f: Filter) -> tuple[str, str, Any] | None:
    """A pushed Spark filter as `ScanPlan.skip` takes it, or None for one it does not judge."""
    from pyspark.sql import datasource as ds

    negated = isinstance(f, ds.Not)
    inner = f.child if isinstance(f, ds.Not) else f
    attribute: tuple[str, ...] = getattr(inner, "attribute", ())
    if len(attribute) != 1:  # a struct's field: not judged
        return None
    column = attribute[0]
    if negated:
        op = {ds.EqualTo: "!=", ds.In: "not in"}.get(type(inner))
        return (column, op, inner.value) if op else None  # type: ignore[attr-defined]
    if isinstance(f, ds.IsNull | ds.IsNotNull):
        return column, "is null" if isinstance(f, ds.IsNull) else "is not null", None
    if isinstance(f, ds.EqualNullSafe):
        return (column, "is null", None) if f.value is None else (column, "=", f.value)
    op = {ds.EqualTo: "=", ds.GreaterThan: ">", ds.GreaterThanOrEqual: ">=", ds.LessThan: "<", ds.LessThanOrEqual: "<=",
          ds.In: "in"}.get(type(f))
    return (column, op, f.value) if op else None  # type: ignore[attr-defined]


# Whether Spark plans the read of a pushdown for that scan alone. Spark 4.3's PythonScanBuilder hands
# it to the relation's provider instead (PythonDataSourceV2.setReadInfo), which every later scan of
# the same DataFrame reuses; the release that keeps it per scan is the one with limit pushdown.
SCAN_SCOPED_PUSHDOWN = hasattr(DataSourceReader, "pushLimit")


class CairnReader(DataSourceReader):
    def __init__(self, plan: Any, schema: StructType, skip_files: bool = True) -> None:
        self._plan = plan if skip_files else None  # kept for `pushFilters`, on the driver only (see __getstate__)
        self.files = list(plan.files)
        self.partition_values = list(plan.partitions) or [()] * len(self.files)
        self.partition_columns = tuple(plan.partition_columns)
        self.types = {c.name: c.type_text for c in plan.columns}
        self.partition_types = {c: self.types[c] for c in self.partition_columns}
        self.columns = [f.name for f in schema.fields]
        self.nullable = {f.name: f.nullable for f in schema.fields}
        # The reader's row filter and masks travel with the plan and run on the executors.
        self.policy = plan.policy

    def pushFilters(self, filters: list[Filter]) -> Iterable[Filter]:
        """Skip the files no row of which can meet all of `filters` (`ScanPlan.skip`; not unless
        skipping files is on, see the module's docstring). File skipping alone decides nothing about
        a row, so every filter is handed back: Spark applies each one to the rows read, after the
        reader's row filter and masks."""
        pushed = [t for t in map(_filter_tuple, filters) if t is not None]
        if pushed and self._plan is not None:
            plan = self._plan.skip(pushed)
            self.files = list(plan.files)
            self.partition_values = list(plan.partitions) or [()] * len(self.files)
        return filters

    def __getstate__(self) -> dict[str, Any]:
        # Executors need the files and the policy, not the plan's per-file statistics.
        return {k: v for k, v in self.__dict__.items() if k != "_plan"} | {"_plan": None}

    def partitions(self) -> list[InputPartition]:
        """One partition per data file left after `pushFilters`."""
        return [FilePartition(p, v) for p, v in zip(self.files, self.partition_values)]

    def load(self, partition: Any) -> Any:
        """One data file as Arrow, its partition columns (from the log) added before any policy runs."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from catalog.delta import arrow_type

        path = partition.path
        if path.startswith("file://"):
            path = path[len("file://") :]
        table = pq.ParquetFile(path).read()  # the file alone: never columns guessed from `col=value/` in its path
        for col, value in zip(self.partition_columns, partition.values):
            if col not in table.column_names:
                table = table.append_column(col, pa.array([value] * table.num_rows, arrow_type(self.partition_types[col])))
        return table

    def read(self, partition: InputPartition) -> Iterator[Any]:
        if not isinstance(partition, FilePartition):  # Spark's one empty partition of a scan with no file left
            return
        table = self.load(partition)
        present = [c for c in self.columns if c in table.column_names]
        if not self.policy.empty:
            from catalog.scan import apply_policy

            table = apply_policy(table, self.policy, present, None)
        table = table.select(present)
        # Spark wants each batch in the declared schema exactly: a NOT NULL key column may come back
        # from a file (a merge's, say) whose Parquet schema calls it nullable, and a time through
        # the policy's DuckDB in zone Etc/UTC rather than UTC.
        import pyarrow as pa

        from catalog.delta import arrow_type

        fields = [pa.field(f.name, arrow_type(self.types[f.name]) if f.name in self.types else f.type, self.nullable.get(f.name, True))
                  for f in table.schema]
        if fields != list(table.schema):
            table = pa.Table.from_arrays([c.cast(f.type) for c, f in zip(table.columns, fields)], schema=pa.schema(fields))
        yield from table.to_batches()


@dataclass
class FilesWritten(WriterCommitMessage):
    files: list[tuple[str, int, int, int, dict[str, str | None] | None]]  # (path, size, rows, mtime in ms, partition values)


class CairnWriter(DataSourceArrowWriter):
    def __init__(self, options: dict[str, str], table: str, location: str, mode: str, partition_columns: tuple[str, ...] = ()) -> None:
        self.options, self.table, self.location, self.mode = options, table, location, mode
        self.partition_columns = tuple(partition_columns)

    def write(self, iterator: Iterator[Any]) -> FilesWritten:
        """One Parquet file per partition this task's rows fall in (one in all for an unpartitioned
        table), under `col=value/`, without the partition columns: their values go to the log."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from catalog.delta import local_path, partition_dir, partition_text

        location = local_path(self.location)
        writers: dict[tuple[str | None, ...], tuple[Any, str, list[int]]] = {}
        try:
            for batch in iterator:
                table = pa.Table.from_batches([batch])
                groups: dict[tuple[str | None, ...], list[int]] = {}
                if self.partition_columns:
                    names = {n.lower(): n for n in table.column_names}
                    missing = [p for p in self.partition_columns if p not in names]
                    if missing:
                        from catalog.errors import InvalidArgument

                        raise InvalidArgument(f"the rows written to '{self.table}' lack its partition column(s) {', '.join(missing)}")
                    keys = zip(*(table.column(names[p]).to_pylist() for p in self.partition_columns))
                    for i, values in enumerate(keys):
                        groups.setdefault(tuple(partition_text(v) for v in values), []).append(i)
                    data = table.drop_columns([names[p] for p in self.partition_columns])
                else:
                    groups[()] = []
                    data = table
                for texts, rows in groups.items():
                    part = data.take(rows) if self.partition_columns else data
                    if texts not in writers:
                        folder = os.path.join(location, partition_dir(self.partition_columns, texts)) if texts else location
                        os.makedirs(folder, exist_ok=True)
                        path = os.path.join(folder, f"part-{uuid.uuid4().hex}.snappy.parquet")
                        writers[texts] = (pq.ParquetWriter(path, part.schema, compression="snappy"), path, [0])
                    writer, _, count = writers[texts]
                    writer.write_table(part)
                    count[0] += part.num_rows
        finally:
            for writer, _, _ in writers.values():
                writer.close()
        out: list[tuple[str, int, int, int, dict[str, str | None] | None]] = []
        for texts, (_, path, count) in writers.items():
            st = os.stat(path)
            out.append((path, st.st_size, count[0], int(st.st_mtime * 1000), dict(zip(self.partition_columns, texts)) or None))
        return FilesWritten(out)

    def commit(self, messages: list[WriterCommitMessage | None]) -> None:
        from catalog.scan import DataFile

        files = [DataFile(p, size, n, mtime, values) for m in messages if m is not None
                 for p, size, n, mtime, values in m.files]  # type: ignore[attr-defined]
        _client(self.options).data.commit_files(self.table, files, self.mode, run_id=self.options.get("run") or None)

    def abort(self, messages: list[WriterCommitMessage | None]) -> None:
        for m in messages:
            for path, *_ in getattr(m, "files", []) if m is not None else []:
                try:
                    os.remove(path)
                except FileNotFoundError:
                    pass


class GovernedSpark:
    """`governed(spark).sql(...)`: governance statements go to the catalog's SQL shim; queries run
    on Spark, each catalog table read through the governed data source (checks, row filters,
    masks, audit rows), and writes (INSERT INTO / OVERWRITE) go back through it too."""

    def __init__(self, spark: Any, options: dict[str, str]) -> None:
        self.spark = spark
        self.options = options
        self._session = None

    @property
    def session(self) -> Any:
        if self._session is None:
            self._session = _client(self.options).sql_session
        return self._session

    def sql(self, statement: str) -> Any:
        """Run one statement; a query returns a Spark DataFrame, anything else the shim's result."""
        from sqlglot import exp

        from catalog.relations import as_of, catalog_relations
        from catalog.sql.engine import table_key
        from catalog.sql.parsing import parse

        first = statement.strip().split(None, 1)[0].upper() if statement.strip() else ""
        if first not in ("SELECT", "WITH", "INSERT"):
            return self.session.execute(statement)[-1]
        tree = parse(statement)
        target = None
        if isinstance(tree, exp.Insert):
            target = table_key(self.session, tree.this.this if isinstance(tree.this, exp.Schema) else tree.this)
            mode = "overwrite" if tree.args.get("overwrite") else "append"
            tree = tree.expression
        # The same resolution as the shim's: catalog tables (read through the governed source), CTEs
        # in scope and allowed table functions; file paths and file-reading functions are refused.
        for i, t in enumerate(catalog_relations(tree)):
            key = table_key(self.session, t)
            reader = self.spark.read.format(FORMAT).options(**self.options)
            version, timestamp = as_of(t)
            if version is not None:
                reader = reader.option("versionAsOf", str(version))
            elif timestamp is not None:
                reader = reader.option("timestampAsOf", timestamp)
            view = f"cairn_{uuid.uuid4().hex[:12]}_{i}"
            reader.load(key).createOrReplaceTempView(view)
            t.replace(exp.Table(this=exp.to_identifier(view), alias=exp.TableAlias(this=exp.to_identifier(t.alias or t.name))))
        df = self.spark.sql(tree.sql("spark"))
        if target is None:
            return df
        df.write.format(FORMAT).options(**self.options).mode(mode).save(target)
        return None


def governed(spark: Any, **options: str) -> GovernedSpark:
    """Governed SQL on a Spark session (options: principal, home, url, run)."""
    register(spark)
    return GovernedSpark(spark, options)


def register(spark: Any) -> None:
    """Make `format("cairn")` available in this Spark session, with filter pushdown on (Spark
    refuses to plan a Python source that takes filters while it is off)."""
    spark.conf.set("spark.sql.python.filterPushdown.enabled", "true")
    spark.dataSource.register(CairnDataSource)


def local_session(app_name: str = "cairn", cores: str = "*") -> Any:
    """A `local[*]` SparkSession whose Python workers use this interpreter, with `cairn` registered."""
    import sys

    from pyspark.sql import SparkSession
    from rich.console import Console

    # Spark's planning workers for Python data sources read the interpreter from the environment.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    # Starting the JVM takes seconds: say so on a terminal (stderr, so stdout stays the caller's).
    with Console(stderr=True).status(f"starting Spark (local[{cores}]) ...", spinner="dots"):
        spark = (
            SparkSession.builder.master(f"local[{cores}]")
            .appName(app_name)
            .config("spark.pyspark.python", sys.executable)
            .config("spark.pyspark.driver.python", sys.executable)
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.sql.session.timeZone", "UTC")
            .getOrCreate()
        )
        register(spark)
    return spark
