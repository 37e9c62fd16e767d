"""Writing lineage facts into the lineage store: node references, edges, the tables a run reads
and writes. Not governed here: the governed services (lineage and data) call these after their own
checks, inside their own transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from catalog import names
from catalog.errors import InvalidArgument, NotFound
from lineage.store import LineageStore

CAIRN = "cairn"
_PREFIXES = {"model": "MODEL", "function": "FUNCTION", "endpoint": "ENDPOINT", "table": "TABLE"}


def parse_ref(ref: str) -> tuple[str, str]:
    """A lineage node reference: `cat.sch.table`, `model:cat.sch.m`, `model:cat.sch.m/3` (a
    version), `function:cat.sch.f` or `endpoint:name`. Returns (node kind, canonical name).

    A bare `cat.sch.m/3` is a model version too (no table name holds an unquoted '/').

    >>> parse_ref("model:Main.ML.Churn/3"), parse_ref("main.raw.events"), parse_ref("main.ml.churn/3")
    (('MODEL_VERSION', 'main.ml.churn/3'), ('TABLE', 'main.raw.events'), ('MODEL_VERSION', 'main.ml.churn/3'))
    """
    prefix, sep, rest = ref.partition(":")
    if not sep or "." in prefix:
        model, slash, version = ref.rpartition("/")
        if slash and version.strip().isdigit() and "`" not in version:
            return "MODEL_VERSION", f"{names.parse(model, 3).key}/{int(version)}"
        return "TABLE", names.parse(ref, 3).key
    kind = _PREFIXES.get(prefix.lower())
    if kind is None:
        raise InvalidArgument(f"unknown lineage reference {ref!r}; use table:, model:, function: or endpoint:")
    if kind == "ENDPOINT":
        if not rest.strip():
            raise InvalidArgument("an endpoint reference needs a name")
        return kind, rest.strip().lower()
    if kind == "MODEL" and "/" in rest:
        model, _, version = rest.rpartition("/")
        if not version.isdigit():
            raise InvalidArgument(f"model version in {ref!r} must be a number")
        return "MODEL_VERSION", f"{names.parse(model, 3).key}/{int(version)}"
    return kind, names.parse(rest, 3).key


def split_column(ref: str) -> tuple[str, str]:
    table, _, column = ref.rpartition(".")
    if not table or not column:
        raise InvalidArgument(f"a column is named 'catalog.schema.table.column', not {ref!r}")
    return names.parse(table, 3).key, column.strip("`").lower()


def record_edges(
    store: LineageStore,
    run_id: str | None,
    inputs: Sequence[tuple[str, int | None]],
    outputs: Sequence[tuple[str, int | None]],
    column_edges: Sequence[Any] = (),
) -> int:
    """Append table edges from every input to every output, and the column edges. Not governed:
    callers (governed services) have already authorized the write they describe."""
    rows = []
    out_ids = [(store.node_id(*_node_key(o)), v) for o, v in outputs]
    for i, iv in inputs:
        src = store.node_id(*_node_key(i))
        if run_id:
            store.add_run_input(run_id, src, iv)
        for dst, ov in out_ids:
            if src != dst:
                rows.append(dict(source_id=src, target_id=dst, kind="DATASET", run_id=run_id, source_version=iv, target_version=ov))
    for e in column_edges:
        st, sc = split_column(e.source)
        tt, tc = split_column(e.target)
        s_table, t_table = store.node_id("TABLE", CAIRN, st), store.node_id("TABLE", CAIRN, tt)
        rows.append(dict(
            source_id=store.node_id("COLUMN", CAIRN, f"{st}.{sc}", s_table), target_id=store.node_id("COLUMN", CAIRN, f"{tt}.{tc}", t_table),
            kind="COLUMN", run_id=run_id, transformation_type=e.transformation_type, transformation_subtype=e.transformation_subtype,
        ))
    store.add_edges(rows)
    return len(rows)


def _node_key(ref: str) -> tuple[str, str, str]:
    kind, name = parse_ref(ref)
    return kind, CAIRN, name


def record_run_io(store: LineageStore, run_id: str, principal: str, table: str, version: int | None, is_output: bool) -> None:
    """Note a read (an input) or a write (an output, with edges from every input read so far) of a
    catalog table by a run. Called by governed services after their own checks."""
    run = store.get_run(run_id)
    if run is None:
        raise NotFound(f"run '{run_id}' does not exist; start one with lineage.start_run")
    if run.principal != principal:
        raise InvalidArgument(f"run '{run_id}' belongs to another principal")
    node = store.node_id("TABLE", CAIRN, table)
    if not is_output:
        store.add_run_input(run_id, node, version)
        return
    store.add_edges([
        dict(source_id=src, target_id=node, kind="DATASET", run_id=run_id, source_version=sv, target_version=version)
        for src, sv in store.run_inputs_of(run_id) if src != node
    ])
