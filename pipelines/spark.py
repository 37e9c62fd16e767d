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
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pyspark.sql.datasource import (
    DataSource,
    DataSourceArrowWriter,
    DataSourceReader,
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

    def _scan(self) -> Any:
        if not hasattr(self, "_plan"):
            version = self.options.get("versionAsOf")
            self._plan = _client(self.options).data.plan_scan(
                _table_name(self.options), int(version) if version is not None else None, self.options.get("timestampAsOf"),
                run_id=self.options.get("run") or None,
            )
        return self._plan

    def reader(self, schema: StructType) -> DataSourceReader:
        return CairnReader(self._scan(), schema)

    def writer(self, schema: StructType, overwrite: bool) -> CairnWriter:
        mode = "overwrite" if overwrite else "append"
        plan = _client(self.options).data.prepare_write(_table_name(self.options), mode)
        return CairnWriter(dict(self.options), plan.table, plan.files[0], mode)


@dataclass
class FilePartition(InputPartition):
    path: str


class CairnReader(DataSourceReader):
    def __init__(self, plan: Any, schema: StructType) -> None:
        self.files = list(plan.files)
        self.columns = [f.name for f in schema.fields]
        self.nullable = {f.name: f.nullable for f in schema.fields}
        # The reader's row filter and masks travel with the plan and run on the executors.
        self.policy = plan.policy

    def partitions(self) -> list[InputPartition]:
        return [FilePartition(p) for p in self.files]

    def read(self, partition: InputPartition) -> Iterator[Any]:
        import pyarrow.parquet as pq

        path = partition.path  # type: ignore[attr-defined]
        if path.startswith("file://"):
            path = path[len("file://") :]
        table = pq.read_table(path)
        present = [c for c in self.columns if c in table.column_names]
        if not self.policy.empty:
            from catalog.scan import apply_policy

            table = apply_policy(table, self.policy, present, None)
        table = table.select(present)
        # Spark wants each batch's nullability to be the declared schema's: a NOT NULL key column
        # may come back from a file (a merge's, say) whose Parquet schema calls it nullable.
        import pyarrow as pa

        fields = [f.with_nullable(self.nullable.get(f.name, True)) for f in table.schema]
        if fields != list(table.schema):
            table = pa.Table.from_arrays(table.columns, schema=pa.schema(fields))
        yield from table.to_batches()


@dataclass
class FilesWritten(WriterCommitMessage):
    files: list[tuple[str, int, int, int]]  # (path, size, rows, mtime in ms)


class CairnWriter(DataSourceArrowWriter):
    def __init__(self, options: dict[str, str], table: str, location: str, mode: str) -> None:
        self.options, self.table, self.location, self.mode = options, table, location, mode

    def write(self, iterator: Iterator[Any]) -> FilesWritten:
        import pyarrow.parquet as pq

        path = os.path.join(self.location, f"part-{uuid.uuid4().hex}.snappy.parquet")
        writer = None
        rows = 0
        try:
            for batch in iterator:
                if writer is None:
                    writer = pq.ParquetWriter(path, batch.schema, compression="snappy")
                writer.write_batch(batch)
                rows += batch.num_rows
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            return FilesWritten([])
        st = os.stat(path)
        return FilesWritten([(path, st.st_size, rows, int(st.st_mtime * 1000))])

    def commit(self, messages: list[WriterCommitMessage | None]) -> None:
        from catalog.scan import DataFile

        files = [DataFile(p, size, n, mtime) for m in messages if m is not None for p, size, n, mtime in m.files]  # type: ignore[attr-defined]
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
    """Make `format("cairn")` available in this Spark session."""
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
