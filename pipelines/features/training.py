"""Training sets: the rows to train on with their features joined point in time, built through the
governed read path and saved as catalog tables that carry their spec and lineage."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pipelines.features.engine as engine
import pipelines.features.pyfunc as pyfunc
from catalog import delta
from catalog.errors import InvalidArgument
from catalog.scan import ScanPlan, policy_sql
from pipelines.features.spec import (
    SPEC,
    UNIQUE_VERSION,
    FeatureFunction,
    FeatureLookup,
    ResolvedLookup,
    check_outputs,
    resolve_lookup,
    to_arrow,
)

_TZ = {"timestamp": "TIMESTAMPTZ", "timestamp_ntz": "TIMESTAMP", "date": "DATE"}


def _cast_time(expr: str, have: str, want: str) -> str:
    """`expr` (of Databricks type `have`) as the type of a timestamp key (`want`); a time without a
    zone is read as UTC, whatever DuckDB's session time zone."""
    if have == want:
        return expr
    if want == "timestamp":
        return f"timezone('UTC', CAST({expr} AS TIMESTAMP))"
    if want == "timestamp_ntz":
        return f"timezone('UTC', {expr})" if have == "timestamp" else f"CAST({expr} AS TIMESTAMP)"
    return f"CAST(timezone('UTC', {expr}) AS DATE)" if have == "timestamp" else f"CAST({expr} AS DATE)"


@dataclass
class TrainingSet:
    """What `create_training_set` returns; `load_df()` builds it, `save(name)` stores it."""

    client: Any
    labels: Any  # Arrow table, or None when the rows come from a catalog table
    label_table: str | None
    label_plan: ScanPlan | None
    label: list[str]
    exclude_columns: list[str]
    lookups: list[ResolvedLookup]
    functions: list[FeatureFunction]
    reads: dict[str, engine.TableRead]
    df_columns: list[str]
    df_types: dict[str, str]
    spark_df: Any = None
    function_defs: dict[str, Any] = field(default_factory=dict)
    saved_as: str | None = None  # the catalog table `save` wrote it to (a model's lineage starts there)

    # construction ----------------------------------------------------------------------------
    @classmethod
    def create(cls, client: Any, df: Any, feature_lookups: list[Any], label: str | list[str] | None,
               exclude_columns: list[str] | None) -> TrainingSet:
        cairn = client.cairn
        lookups = [f for f in feature_lookups if isinstance(f, FeatureLookup)]
        functions = [f for f in feature_lookups if isinstance(f, FeatureFunction)]
        other = [f for f in feature_lookups if not isinstance(f, (FeatureLookup, FeatureFunction))]
        if other:
            raise InvalidArgument(f"feature_lookups holds a {type(other[0]).__name__}; give FeatureLookup or FeatureFunction objects")
        spark_df = df if type(df).__module__.startswith("pyspark") else None
        label_table = df if isinstance(df, str) else None
        tables = list(dict.fromkeys(cairn.tables.get_table(lk.table_name).full_name for lk in lookups))
        requests = ([(label_table, None, None)] if label_table else []) + [(t, None, None) for t in tables]
        # One governed call: every table is checked before any is read (one denial refuses the
        # set), each read is audited with its Delta version, filters and masks come rendered.
        plans = cairn.data.plan_scans(requests) if requests else []
        for p in plans:
            if not isinstance(p, ScanPlan):
                raise InvalidArgument(f"'{p.table}' is a view; feature lookups and training rows read tables")
        label_plan = plans.pop(0) if label_table else None
        if label_plan is not None:
            labels = None
            df_types = {c.name: c.type_text for c in label_plan.columns}
        elif spark_df is not None:
            labels = None
            df_types = {f.name.lower(): delta.type_text(f.type) for f in to_arrow(spark_df.limit(0)).schema}
        else:
            labels = to_arrow(df)
            df_types = {f.name: delta.type_text(f.type) for f in labels.schema}
        df_columns = list(df_types)
        reads = {}
        metas = {t: cairn.tables.get_table(t) for t in tables}
        for plan in plans:
            meta = metas[plan.table]
            reads[plan.table] = engine.TableRead(plan, meta.storage_location or "", meta.properties.get(UNIQUE_VERSION) == str(plan.version))
        resolved = [resolve_lookup(lk, metas[cairn.tables.get_table(lk.table_name).full_name], df_types) for lk in lookups]
        resolved = check_outputs(df_columns, resolved, functions)
        labels_ = [label] if isinstance(label, str) else list(label or [])
        for col in [c.lower() for c in labels_]:
            if col not in df_types:
                raise InvalidArgument(f"label column '{col}' is not a column of the training set")
        outputs = set(df_columns) | {o for r in resolved for _, o in r.features}
        defs: dict[str, Any] = {}
        for f in functions:
            fn = cairn.functions.authorize_execute(f.udf_name)  # EXECUTE, audited
            params = [c.name for c in fn.columns]
            for p in params:
                col = f.input_bindings.get(p, p).lower()
                if col not in outputs:
                    raise InvalidArgument(f"parameter '{p}' of {fn.full_name} is bound to '{col}', which the training set does not have")
            for p in f.input_bindings:
                if p.lower() not in params:
                    raise InvalidArgument(f"{fn.full_name} has no parameter '{p}'")
            if (fn.data_source_format or "SQL") == "PYTHON":  # refused now, before anything is read
                pyfunc.compile_body(fn.full_name, params, fn.routine_definition or "return None")
            defs[f.udf_name] = fn
        for col in exclude_columns or []:
            if col.lower() not in outputs:
                raise InvalidArgument(f"exclude_columns names '{col}', which the training set does not have")
        return cls(client, labels, label_plan.table if label_plan is not None else None, label_plan, [c.lower() for c in labels_],
                   [c.lower() for c in exclude_columns or []], resolved, functions, reads, df_columns, df_types, spark_df, defs)

    def at_versions(self, versions: dict[str, int], label_version: int | None = None) -> TrainingSet:
        """This training set reading the given Delta versions of its tables (those an earlier
        `create_training_set` pinned, as a server client sends them back): re-planned, checked and
        audited like the first plan. Tables not named keep the version planned now."""
        for t, v in versions.items():
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise InvalidArgument(f"the version of '{t}' must be a non-negative integer")
        cairn = self.client.cairn
        requests = ([(self.label_plan.table, label_version, None)] if self.label_plan else []) + \
            [(t, versions.get(t, r.plan.version), None) for t, r in self.reads.items()]
        plans = cairn.data.plan_scans(requests) if requests else []
        if self.label_plan is not None:
            self.label_plan = plans.pop(0)  # type: ignore[assignment]
        reads = {}
        for p in plans:
            assert isinstance(p, ScanPlan)
            meta = cairn.tables.get_table(p.table)
            reads[p.table] = engine.TableRead(p, meta.storage_location or "", meta.properties.get(UNIQUE_VERSION) == str(p.version))
        self.reads = reads
        return self

    # building --------------------------------------------------------------------------------
    def load_df(self, format: str | None = None) -> Any:
        """The training set: a pandas DataFrame (`format="arrow"` for Arrow), or a Spark DataFrame
        when it was created from one."""
        if self.spark_df is not None:
            from pipelines.features.spark_engine import build

            return build(self)
        out = self._build(self.reads, self.label_plan)
        return out if format == "arrow" else out.to_pandas()

    def _build(self, reads: dict[str, engine.TableRead], label_plan: ScanPlan | None) -> Any:
        files = [engine.local(f) for r in reads.values() for f in r.plan.files]
        if label_plan is not None:
            files += [engine.local(f) for f in label_plan.files]
        con = engine.duck.database(frozenset(files))
        registered: list[str] = []
        try:
            if label_plan is not None:
                raw = policy_sql(label_plan.policy, f"{label_plan.source()} AS src", [c.name for c in label_plan.columns])
                con.execute(f"CREATE TEMP VIEW labels_raw AS SELECT *, row_number() OVER () AS {engine.ROW} FROM ({raw}) AS s")
            else:
                import numpy as np

                # numpy's row numbers: a Python range of a million ints costs ~60 ms to convert.
                con.register("labels_in", self.labels.append_column(engine.ROW, [np.arange(self.labels.num_rows, dtype=np.int64)]))
                registered.append("labels_in")
                con.execute("CREATE TEMP VIEW labels_raw AS SELECT * FROM labels_in")
            ts_cols: dict[int, str] = {}
            extra = []
            for i, r in enumerate(self.lookups):
                if r.point_in_time and r.features:
                    tlk = r.lookup.timestamp_lookup_key.lower()  # type: ignore[union-attr]
                    want = r.types[r.timestamp_key]  # type: ignore[index]
                    name = f"__cairn_ts_{i}"
                    extra.append(f"{_cast_time(engine.q(tlk), self.df_types[tlk], want)} AS {engine.q(name)}")
                    ts_cols[i] = name
            # A table, not a view: DuckDB plans an ASOF join whose probe side it cannot size (an Arrow
            # scan) as a nested loop, thousands of times slower at a million rows.
            con.execute("CREATE TEMP TABLE labels AS SELECT *" + "".join(", " + e for e in extra) + " FROM labels_raw")
            label_cols = [*self.df_columns, engine.ROW, *ts_cols.values()]
            sql, _ = engine.build_query(label_cols, self.lookups, reads, con, registered, ts_cols)
            sql = engine.function_sql(sql, self._sql_functions(), self.client.cairn.principal, self._groups())
            hidden = [engine.ROW, *ts_cols.values()]
            drop = hidden + [c for c in self.exclude_columns]
            out = con.execute(f"SELECT * EXCLUDE ({', '.join(engine.q(c) for c in drop)}) FROM ({sql}) AS t "
                              f"ORDER BY t.{engine.q(engine.ROW)}").to_arrow_table()
            return self._python_functions(out)
        finally:
            con.close()

    def _groups(self) -> set[str]:
        cairn = self.client.cairn
        return set(cairn.principals.list_groups_of(cairn.principal)) | {cairn.principal}

    def _output(self, f: FeatureFunction) -> str:
        return (f.output_name or f.udf_name.rsplit(".", 1)[-1]).lower()

    def _sql_functions(self) -> list[tuple[str, list[str], list[str], str]]:
        out = []
        for f in self.functions:
            fn = self.function_defs[f.udf_name]
            if (fn.data_source_format or "SQL") == "SQL":
                params = [c.name for c in fn.columns]
                out.append((fn.routine_definition or "NULL", params, [f.input_bindings.get(p, p).lower() for p in params], self._output(f)))
        return out

    def _python_functions(self, table: Any) -> Any:
        """Python feature functions, row by row over their bound columns. The body is the function's
        body (`return a * 2`); it runs in this process, as the caller, in a restricted namespace
        (pipelines/features/pyfunc.py: no imports, no builtins reaching files or the network, no
        underscore names), which is not a process sandbox: grant EXECUTE on Python functions whose
        owners the callers trust."""
        import pyarrow as pa

        from catalog import delta as d

        for f in self.functions:
            fn = self.function_defs[f.udf_name]
            if (fn.data_source_format or "SQL") != "PYTHON":
                continue
            params = [c.name for c in fn.columns]
            call = pyfunc.compile_body(fn.full_name, params, fn.routine_definition or "return None")
            cols = [table.column(f.input_bindings.get(p, p).lower()).to_pylist() for p in params]
            try:
                values = [call(*args) for args in zip(*cols)] if cols else [call()] * table.num_rows
            except NameError as exc:
                raise InvalidArgument(f"{fn.full_name} failed: {exc} (feature functions run with a restricted set of builtins)") from None
            table = table.append_column(self._output(f), pa.array(values, d.arrow_type(fn.source or "string")))
        return table

    # saving ----------------------------------------------------------------------------------
    def spec(self, reads: dict[str, engine.TableRead] | None = None, label_plan: ScanPlan | None = None) -> dict[str, Any]:
        reads = reads or self.reads
        label_plan = label_plan or self.label_plan
        return {
            "label": self.label,
            "label_source": {"table": label_plan.table, "version": label_plan.version} if label_plan else {"table": None, "version": None},
            "feature_tables": [{"table": t, "version": r.plan.version} for t, r in reads.items()],
            "lookups": [r.lookup.to_dict() for r in self.lookups],
            "functions": [f.to_dict() for f in self.functions],
            "exclude_columns": self.exclude_columns,
            "point_in_time": any(r.point_in_time for r in self.lookups),
        }

    def save(self, name: str) -> Any:
        """Materialize the training set as a governed Delta table `name` (CREATE TABLE on its
        schema), with its spec in the table property `cairn.training_set.spec`, the tags
        `training_set` and `point_in_time`, and lineage: a run that read the label table and every
        feature table at their pinned versions and wrote this table, with column edges.
        Returns the catalog table."""
        if self.spark_df is not None:
            raise InvalidArgument("save a Spark training set by writing load_df() with format('cairn'); saving builds on DuckDB")
        cairn = self.client.cairn
        run = cairn.lineage.start_run("create_training_set", parameters={"training_set": name})
        try:
            requests = ([(self.label_plan.table, self.label_plan.version, None)] if self.label_plan else []) + \
                [(t, r.plan.version, None) for t, r in self.reads.items()]
            plans = cairn.data.plan_scans(requests, run_id=run) if requests else []
            label_plan = plans.pop(0) if self.label_plan else None
            reads = {p.table: engine.TableRead(p, self.reads[p.table].location, self.reads[p.table].unique) for p in plans}
            out = self._build(reads, label_plan)
            spec = self.spec(reads, label_plan)
            cairn.tables.create_table(name, [{"name": c.name, "type": c.type_text} for c in delta.columns_of(out.schema)],
                                      properties={SPEC: json.dumps(spec, sort_keys=True)})
            table = cairn.tables.get_table(name)
            cairn.data.write(table.full_name, out, run_id=run)
            edges = []
            for r in self.lookups:
                for col, output in r.features:
                    edges.append({"source": f"{r.table}.{col}", "target": f"{table.full_name}.{output}",
                                  "transformation_type": "DIRECT", "transformation_subtype": "IDENTITY"})
            if label_plan is not None:
                kept = {c.name for c in table.columns}
                for c in label_plan.columns:
                    if c.name in kept:
                        edges.append({"source": f"{label_plan.table}.{c.name}", "target": f"{table.full_name}.{c.name}",
                                      "transformation_type": "DIRECT", "transformation_subtype": "IDENTITY"})
            if edges:
                cairn.lineage.record([], [], edges, run_id=run)
            cairn.tags.set_tags("table", table.full_name, {"training_set": "true", "point_in_time": str(spec["point_in_time"]).lower()})
        except Exception:
            cairn.lineage.complete_run(run, "FAIL")
            raise
        cairn.lineage.complete_run(run)
        self.saved_as = table.full_name
        return cairn.tables.get_table(table.full_name)
