"""What a training set asks for: feature lookups, on-demand feature functions, and their checks.

Pure: no catalog access. The client resolves each lookup against its feature table (keys, columns,
types) with `resolve_lookup` and checks the whole set with `check_outputs`.

>>> FeatureLookup("main.f.users", "user_id", feature_names=["age"]).output_name("age")
'age'
>>> FeatureLookup("main.f.users", "user_id", rename_outputs={"age": "user_age"}).output_name("age")
'user_age'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from catalog import delta
from catalog.errors import InvalidArgument

# Table properties the feature store keeps its own facts in.
UNIQUE_VERSION = "cairn.feature_table.unique_version"
PARTITION_COLUMNS = "cairn.feature_table.partition_columns"
SPEC = "cairn.training_set.spec"

_INTEGERS = {"tinyint", "smallint", "int", "bigint"}
_FLOATS = {"float", "double"}
_TIMES = {"timestamp", "timestamp_ntz", "date"}


@dataclass(frozen=True)
class FeatureTable:
    """A feature table as the catalog knows it, with its freshness (the time of its last commit)."""

    name: str
    primary_keys: tuple[str, ...]
    timestamp_keys: tuple[str, ...]
    features: tuple[str, ...]
    description: str | None
    version: int
    last_commit: datetime | None
    partition_columns: tuple[str, ...] = ()


@dataclass
class FeatureLookup:
    """Features of one feature table, joined to the training rows by key (and point in time).

    `lookup_key` names the training-set columns matched, in order, to the table's primary keys
    other than its timestamp key. With `timestamp_lookup_key`, a feature row matches when its
    timestamp is at or before the training row's (`feature_ts <= lookup_ts`) and, with
    `lookback_window`, no older than that window (inclusive; `timedelta(0)` means the exact time);
    the latest such row wins. Without it, the latest row per key is used.
    """

    table_name: str
    lookup_key: str | list[str]
    timestamp_lookup_key: str | None = None
    lookback_window: timedelta | None = None
    feature_names: str | list[str] | None = None
    rename_outputs: dict[str, str] | None = None
    default_values: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.lookup_key, str):
            self.lookup_key = [self.lookup_key]
        if isinstance(self.feature_names, str):
            self.feature_names = [self.feature_names]
        if not self.lookup_key:
            raise InvalidArgument(f"the lookup of '{self.table_name}' needs a lookup_key")
        if self.lookback_window is not None:
            if not isinstance(self.lookback_window, timedelta):
                raise InvalidArgument(f"lookback_window of '{self.table_name}' must be a datetime.timedelta")
            if self.lookback_window < timedelta(0):
                raise InvalidArgument(f"lookback_window of '{self.table_name}' must not be negative")
            if self.timestamp_lookup_key is None:
                raise InvalidArgument(f"lookback_window of '{self.table_name}' needs a timestamp_lookup_key")

    def output_name(self, feature: str) -> str:
        return (self.rename_outputs or {}).get(feature, feature)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureLookup:
        """The lookup `to_dict` describes (as a server receives it). InvalidArgument on a bad field."""
        if not isinstance(d, dict) or not isinstance(d.get("table_name"), str):
            raise InvalidArgument("a feature lookup needs a table_name")
        us = d.get("lookback_window_us")
        if us is not None and (not isinstance(us, int) or isinstance(us, bool)):
            raise InvalidArgument("lookback_window_us must be an integer number of microseconds")
        return cls(d["table_name"], d.get("lookup_key") or [], d.get("timestamp_lookup_key"),
                   None if us is None else timedelta(microseconds=us), d.get("feature_names"), d.get("rename_outputs") or None,
                   d.get("default_values") or None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "table_name": self.table_name, "lookup_key": list(self.lookup_key), "timestamp_lookup_key": self.timestamp_lookup_key,
            "lookback_window_us": None if self.lookback_window is None else _micros(self.lookback_window),
            "feature_names": None if self.feature_names is None else list(self.feature_names),
            "rename_outputs": dict(self.rename_outputs or {}), "default_values": {k: _jsonable(v) for k, v in (self.default_values or {}).items()},
        }


@dataclass
class FeatureFunction:
    """An on-demand feature: a catalog function (SQL or Python) computed per training row, its
    parameters bound to columns of the training set (`input_bindings`: parameter -> column)."""

    udf_name: str
    input_bindings: dict[str, str] = field(default_factory=dict)
    output_name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"udf_name": self.udf_name, "input_bindings": dict(self.input_bindings), "output_name": self.output_name}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureFunction:
        if not isinstance(d, dict) or not isinstance(d.get("udf_name"), str):
            raise InvalidArgument("a feature function needs a udf_name")
        bindings = d.get("input_bindings") or {}
        if not isinstance(bindings, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in bindings.items()):
            raise InvalidArgument("input_bindings must map parameter names to column names")
        return cls(d["udf_name"], dict(bindings), d.get("output_name"))


@dataclass(frozen=True)
class ResolvedLookup:
    """A lookup checked against its table: which columns join, which come out under which name."""

    lookup: FeatureLookup
    table: str
    primary_keys: tuple[str, ...]  # the table's keys matched by lookup_key, in order
    timestamp_key: str | None  # the table's timestamp key, if it has one
    features: tuple[tuple[str, str], ...]  # (table column, output name), skipping those df overrides
    types: dict[str, str]  # table column -> type text

    @property
    def point_in_time(self) -> bool:
        return self.lookup.timestamp_lookup_key is not None


def _micros(td: timedelta) -> int:
    return (td.days * 86_400 + td.seconds) * 1_000_000 + td.microseconds


def _jsonable(v: Any) -> Any:
    return v if v is None or isinstance(v, (bool, int, float, str)) else str(v)


def compatible(key_type: str, column_type: str) -> bool:
    """Whether a training-set column of `key_type` may be matched to a table column of `column_type`.

    >>> compatible("int", "bigint"), compatible("string", "bigint"), compatible("timestamp_ntz", "timestamp")
    (True, False, True)
    """
    if key_type == column_type:
        return True
    return any(key_type in family and column_type in family for family in (_INTEGERS, _FLOATS, _TIMES))


def resolve_lookup(lookup: FeatureLookup, table: Any, df_types: dict[str, str]) -> ResolvedLookup:
    """Check a lookup against its table (a catalog Securable) and the training set's column types.

    Raises InvalidArgument naming the missing column, the mismatched type, or the missing timestamp key.
    """
    name = table.full_name
    types = {c.name: c.type_text for c in table.columns}
    if not table.primary_keys:
        raise InvalidArgument(f"'{name}' is not a feature table: it has no primary key")
    ts_key = table.timestamp_keys[0] if table.timestamp_keys else None
    pks = tuple(k for k in table.primary_keys if k != ts_key)
    keys = [k.lower() for k in lookup.lookup_key]  # type: ignore[union-attr]
    if len(keys) != len(pks):
        raise InvalidArgument(f"the lookup of '{name}' gives {len(keys)} lookup key(s) {keys} for its {len(pks)} primary key(s) {list(pks)}")
    for key, pk in zip(keys, pks):
        if key not in df_types:
            raise InvalidArgument(f"lookup key '{key}' of '{name}' is not a column of the training set")
        if not compatible(df_types[key], types[pk]):
            raise InvalidArgument(f"lookup key '{key}' is {df_types[key]} but primary key '{pk}' of '{name}' is {types[pk]}")
    tlk = lookup.timestamp_lookup_key.lower() if lookup.timestamp_lookup_key else None
    if tlk is not None:
        if ts_key is None:
            raise InvalidArgument(f"timestamp_lookup_key '{tlk}' given, but '{name}' has no timestamp key")
        if tlk not in df_types:
            raise InvalidArgument(f"timestamp lookup key '{tlk}' of '{name}' is not a column of the training set")
        if df_types[tlk] not in _TIMES:
            raise InvalidArgument(f"timestamp lookup key '{tlk}' is {df_types[tlk]}, not a timestamp or date")
    keyset = set(table.primary_keys)
    wanted = [f.lower() for f in lookup.feature_names] if lookup.feature_names is not None else [c.name for c in table.columns if c.name not in keyset]  # type: ignore[union-attr]
    for f in wanted:
        if f not in types:
            raise InvalidArgument(f"feature '{f}' is not a column of '{name}'")
    for f in (lookup.rename_outputs or {}):
        if f.lower() not in wanted:
            raise InvalidArgument(f"rename_outputs names '{f}', which the lookup of '{name}' does not read")
    for f in (lookup.default_values or {}):
        if f.lower() not in wanted:
            raise InvalidArgument(f"default_values names '{f}', which the lookup of '{name}' does not read")
    features = tuple((f, lookup.output_name(f).lower()) for f in wanted)
    return ResolvedLookup(lookup, name, pks, ts_key, features, types)


def check_outputs(df_columns: list[str], resolved: list[ResolvedLookup], functions: list[FeatureFunction]) -> list[ResolvedLookup]:
    """Drop features the training set already has (its column overrides the lookup) and refuse two
    lookups or functions producing the same output name."""
    present = set(df_columns)
    seen: dict[str, str] = {}
    out = []
    for r in resolved:
        kept = []
        for col, output in r.features:
            if output in seen:
                raise InvalidArgument(f"two lookups produce the output '{output}': {seen[output]} and {r.table}; rename one with rename_outputs")
            seen[output] = r.table
            if output not in present:
                kept.append((col, output))
        out.append(ResolvedLookup(r.lookup, r.table, r.primary_keys, r.timestamp_key, tuple(kept), r.types))
    for f in functions:
        output = (f.output_name or f.udf_name.rsplit(".", 1)[-1]).lower()
        if output in seen:
            raise InvalidArgument(f"feature function {f.udf_name} produces '{output}', which {seen[output]} also produces")
        seen[output] = f.udf_name
    return out


def to_arrow(df: Any) -> Any:
    """pandas, Arrow, a list of dicts, or a Spark DataFrame (collected through Arrow) as an Arrow
    table with lower-case column names."""
    import pyarrow as pa

    if type(df).__module__.startswith("pyspark"):
        df = df.toArrow()
    table = delta.to_arrow(df)
    names = [n.lower() for n in table.column_names]
    if len(set(names)) != len(names):
        raise InvalidArgument("column names repeat (case-insensitively)")
    table = table.rename_columns(names)
    # Delta and the engines keep microseconds; a nanosecond timestamp is truncated (floored for
    # times after 1970), which keeps `feature_ts <= lookup_ts` exact for every stored value.
    fields = [pa.field(f.name, pa.timestamp("us", f.type.tz) if pa.types.is_timestamp(f.type) else f.type) for f in table.schema]
    return table.cast(pa.schema(fields), safe=False) if fields != list(table.schema) else table
