"""OpenLineage (spec 2-0-x) events: validation, and what an event means for the lineage graph.

Pure functions over the event's JSON; the governed ingest is `LineageService.ingest_openlineage`.

>>> e = parse({"eventTime": "2026-01-01T00:00:00Z", "producer": "https://x", "schemaURL": SCHEMA_URL,
...            "eventType": "COMPLETE", "run": {"runId": "3f1c0a56-0b5e-4c1b-9a7e-1d2c3b4a5f60"},
...            "job": {"namespace": "spark", "name": "etl"}, "inputs": [{"namespace": "cairn", "name": "main.raw.ev"}],
...            "outputs": [{"namespace": "s3://lake", "name": "gold/ev"}]})
>>> e.kind, e.run_id, [d.name for d in e.inputs], [d.namespace for d in e.outputs]
('RunEvent', '3f1c0a56-0b5e-4c1b-9a7e-1d2c3b4a5f60', ['main.raw.ev'], ['s3://lake'])
"""

from __future__ import annotations

import posixpath
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from catalog.errors import InvalidArgument

SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
EVENT_TYPES = ("START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER")
CAIRN_NAMESPACE = "cairn"


@dataclass(frozen=True)
class FieldLineage:
    output_field: str
    input_namespace: str
    input_name: str
    input_field: str
    type: str  # DIRECT | INDIRECT
    subtype: str


@dataclass(frozen=True)
class Dataset:
    namespace: str
    name: str
    symlinks: tuple[tuple[str, str], ...] = ()
    fields: tuple[str, ...] = ()
    column_lineage: tuple[FieldLineage, ...] = ()


@dataclass(frozen=True)
class Event:
    kind: str  # RunEvent | DatasetEvent | JobEvent
    event_time: datetime
    producer: str
    event_type: str | None = None
    run_id: str | None = None
    job_namespace: str | None = None
    job_name: str | None = None
    inputs: tuple[Dataset, ...] = ()
    outputs: tuple[Dataset, ...] = ()
    datasets: tuple[Dataset, ...] = ()
    run_facets: dict[str, Any] = field(default_factory=dict)


# Bounds on one event: every dataset name costs lookups and every edge a row, so an event is
# refused (400, naming the limit) before any of that work when it would pass them.
MAX_DATASETS = 1_000  # inputs + outputs
MAX_SYMLINKS = 16  # identifiers per dataset
MAX_EDGES = 10_000  # inputs x outputs + column edges


def _need(obj: Any, key: str, where: str, kind: type = str) -> Any:
    if not isinstance(obj, dict) or key not in obj or obj[key] in (None, ""):
        raise InvalidArgument(f"{where}.{key} is required")
    value = obj[key]
    if not isinstance(value, kind):
        raise InvalidArgument(f"{where}.{key} must be a {kind.__name__}")
    return value


def _obj(value: Any, where: str) -> dict[str, Any]:
    """An optional JSON object: {} when absent."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"{where} must be an object")
    return value


def _list(value: Any, where: str) -> list[Any]:
    """An optional JSON array: [] when absent."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidArgument(f"{where} must be an array")
    return value


def _str(value: Any, where: str, default: str) -> str:
    if value is None:
        return default
    if not isinstance(value, str):
        raise InvalidArgument(f"{where} must be a string")
    return value


def _time(text: str) -> datetime:
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgument(f"eventTime {text!r} is not an ISO-8601 date-time") from None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _dataset(obj: Any, where: str) -> Dataset:
    ns, name = _need(obj, "namespace", where), _need(obj, "name", where)
    facets = _obj(obj.get("facets"), f"{where}.facets")
    ids = _list(_obj(facets.get("symlinks"), f"{where}.facets.symlinks").get("identifiers"), f"{where}.facets.symlinks.identifiers")
    if len(ids) > MAX_SYMLINKS:
        raise InvalidArgument(f"{where} has {len(ids)} symlinks; the limit is {MAX_SYMLINKS}")
    links = tuple((_need(i, "namespace", f"{where}.facets.symlinks.identifiers[{n}]"), _need(i, "name", f"{where}.facets.symlinks.identifiers[{n}]"))
                  for n, i in enumerate(ids))
    schema_fields = _list(_obj(facets.get("schema"), f"{where}.facets.schema").get("fields"), f"{where}.facets.schema.fields")
    fields = tuple(_need(f, "name", f"{where}.facets.schema.fields[{n}]") for n, f in enumerate(schema_fields))
    lineage = []
    column_facet = _obj(_obj(facets.get("columnLineage"), f"{where}.facets.columnLineage").get("fields"), f"{where}.facets.columnLineage.fields")
    for out_field, spec in column_facet.items():
        at = f"{where}.facets.columnLineage.fields.{out_field}"
        for n, inp in enumerate(_list(_obj(spec, at).get("inputFields"), f"{at}.inputFields")):
            here = f"{at}.inputFields[{n}]"
            if not isinstance(inp, dict):
                raise InvalidArgument(f"{at}.inputFields must hold objects")
            transformations = _list(inp.get("transformations"), f"{here}.transformations") or [{}]
            for k, t in enumerate(transformations):
                t = _obj(t, f"{here}.transformations[{k}]")
                kind = _str(t.get("type"), f"{here}.transformations[{k}].type", "DIRECT").upper()
                if kind not in ("DIRECT", "INDIRECT"):
                    raise InvalidArgument(f"{where}: transformation type {kind!r} is not DIRECT or INDIRECT")
                subtype = _str(t.get("subtype"), f"{here}.transformations[{k}].subtype", "TRANSFORMATION").upper()
                lineage.append(FieldLineage(out_field, _need(inp, "namespace", here), _need(inp, "name", here), _need(inp, "field", here), kind, subtype))
    return Dataset(ns, name, links, fields, tuple(lineage))


def parse(body: Any) -> Event:
    """Validate a RunEvent, DatasetEvent or JobEvent; InvalidArgument names the first bad field,
    or the limit (MAX_DATASETS, MAX_SYMLINKS, MAX_EDGES) the event passes."""
    if not isinstance(body, dict):
        raise InvalidArgument("an OpenLineage event is a JSON object")
    when = _time(_need(body, "eventTime", "event"))
    producer = _need(body, "producer", "event")
    _need(body, "schemaURL", "event")
    if "dataset" in body and "run" not in body and "job" not in body:
        return Event("DatasetEvent", when, producer, datasets=(_dataset(body["dataset"], "dataset"),))
    job = _need(body, "job", "event", dict)
    job_ns, job_name = _need(job, "namespace", "job"), _need(job, "name", "job")
    raw_inputs, raw_outputs = _list(body.get("inputs"), "event.inputs"), _list(body.get("outputs"), "event.outputs")
    if len(raw_inputs) + len(raw_outputs) > MAX_DATASETS:
        raise InvalidArgument(f"the event names {len(raw_inputs) + len(raw_outputs):,} datasets; the limit is {MAX_DATASETS:,} per event")
    if len(raw_inputs) * len(raw_outputs) > MAX_EDGES:
        raise InvalidArgument(f"the event would add {len(raw_inputs) * len(raw_outputs):,} edges; the limit is {MAX_EDGES:,} per event")
    inputs = tuple(_dataset(d, f"inputs[{i}]") for i, d in enumerate(raw_inputs))
    outputs = tuple(_dataset(d, f"outputs[{i}]") for i, d in enumerate(raw_outputs))
    edges = len(inputs) * len(outputs) + sum(len(o.column_lineage) for o in outputs)
    if edges > MAX_EDGES:
        raise InvalidArgument(f"the event would add {edges:,} edges (with its column lineage); the limit is {MAX_EDGES:,} per event")
    if "run" not in body:
        return Event("JobEvent", when, producer, job_namespace=job_ns, job_name=job_name, inputs=inputs, outputs=outputs)
    run = _need(body, "run", "event", dict)
    run_id = _need(run, "runId", "run")
    try:
        uuid.UUID(run_id)
    except ValueError:
        raise InvalidArgument(f"run.runId {run_id!r} is not a UUID") from None
    event_type = body.get("eventType")
    if event_type is not None and event_type not in EVENT_TYPES:
        raise InvalidArgument(f"eventType {event_type!r} is not one of {', '.join(EVENT_TYPES)}")
    return Event("RunEvent", when, producer, event_type or "OTHER", run_id, job_ns, job_name, inputs, outputs,
                 run_facets=dict(_obj(run.get("facets"), "run.facets")))


_SCHEMES = {"s3a": "s3", "s3n": "s3"}  # Hadoop's names for the same S3 objects


def normalize_location(location: str) -> str:
    """A storage location in one spelling: `file:` URIs as paths, `.` and `..` resolved, no
    trailing or doubled slashes, the scheme and bucket lower-cased (s3a and s3n are s3).

    >>> normalize_location("file:///lake/a/../secret/"), normalize_location("/lake//secret/."), normalize_location("S3A://B/x/y/../z/")
    ('/lake/secret', '/lake/secret', 's3://b/x/z')
    """
    loc = location.strip()
    if loc[:5].lower() == "file:":
        rest = loc[5:]
        if rest.startswith("//"):  # file://host/path and file:///path: the host does not matter here
            rest = rest[2:]
            rest = rest[rest.find("/"):] if "/" in rest else "/"
        loc = unquote(rest)
    scheme, sep, rest = loc.partition("://")
    if sep and "/" not in scheme:
        host, _, path = rest.partition("/")
        scheme = _SCHEMES.get(scheme.lower(), scheme.lower())
        return f"{scheme}://{host.lower()}{posixpath.normpath('/' + path).rstrip('/')}"
    return posixpath.normpath("/" + loc.lstrip("/"))


def locations_of(namespace: str, name: str) -> set[str]:
    """The storage locations an OpenLineage dataset name can point at (namespace `file` and a path,
    `s3://bucket` and a key, or a name that is itself a path or URI), normalized.

    >>> sorted(locations_of("file", "/lake/x/")), sorted(locations_of("s3://b", "x/y")), locations_of("kafka://h", "topic")
    (['/lake/x'], ['s3://b/x/y'], {'kafka://h/topic'})
    """
    out = set()
    if namespace.strip().lower() == "file" or namespace.lower().startswith("file:"):
        out.add(normalize_location(name))
    elif "://" in namespace:
        out.add(normalize_location(namespace.rstrip("/") + "/" + name.lstrip("/")))
    if name.startswith("/") or "://" in name or name[:5].lower() == "file:":
        out.add(normalize_location(name))
    return out


def run_event(run_id: str, job_name: str, event_type: str, inputs: list[tuple[str, int | None]], outputs: list[tuple[str, int | None]],
              job_namespace: str = CAIRN_NAMESPACE, producer: str = "https://github.com/cairn/cairn") -> dict[str, Any]:
    """A RunEvent for a run Cairn performed, with catalog tables as datasets (version facets)."""
    def ds(name: str, version: int | None) -> dict[str, Any]:
        d: dict[str, Any] = {"namespace": CAIRN_NAMESPACE, "name": name, "facets": {}}
        if version is not None:
            d["facets"]["version"] = {"_producer": producer, "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/DatasetVersionDatasetFacet.json",
                                      "datasetVersion": str(version)}
        return d

    return {
        "eventTime": datetime.now(UTC).isoformat(),
        "producer": producer,
        "schemaURL": SCHEMA_URL,
        "eventType": event_type,
        "run": {"runId": str(uuid.UUID(run_id))},
        "job": {"namespace": job_namespace, "name": job_name},
        "inputs": [ds(n, v) for n, v in inputs],
        "outputs": [ds(n, v) for n, v in outputs],
    }
