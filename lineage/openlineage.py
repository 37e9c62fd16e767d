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

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

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

    @property
    def catalog_name(self) -> str | None:
        """The catalog table this dataset is, by its own name or through a symlink."""
        if self.namespace == CAIRN_NAMESPACE:
            return self.name
        for ns, name in self.symlinks:
            if ns == CAIRN_NAMESPACE:
                return name
        return None


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


def _need(obj: Any, key: str, where: str, kind: type = str) -> Any:
    if not isinstance(obj, dict) or key not in obj or obj[key] in (None, ""):
        raise InvalidArgument(f"{where}.{key} is required")
    value = obj[key]
    if not isinstance(value, kind):
        raise InvalidArgument(f"{where}.{key} must be a {kind.__name__}")
    return value


def _time(text: str) -> datetime:
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgument(f"eventTime {text!r} is not an ISO-8601 date-time") from None
    return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)


def _dataset(obj: Any, where: str) -> Dataset:
    ns, name = _need(obj, "namespace", where), _need(obj, "name", where)
    facets = obj.get("facets") or {}
    if not isinstance(facets, dict):
        raise InvalidArgument(f"{where}.facets must be an object")
    links = tuple(
        (str(i.get("namespace")), str(i.get("name")))
        for i in (facets.get("symlinks") or {}).get("identifiers", []) if isinstance(i, dict) and i.get("namespace") and i.get("name")
    )
    fields = tuple(str(f.get("name")) for f in (facets.get("schema") or {}).get("fields", []) if isinstance(f, dict) and f.get("name"))
    lineage = []
    for out_field, spec in ((facets.get("columnLineage") or {}).get("fields") or {}).items():
        for inp in (spec or {}).get("inputFields", []):
            if not isinstance(inp, dict):
                raise InvalidArgument(f"{where}.facets.columnLineage.fields.{out_field}.inputFields must hold objects")
            transformations = inp.get("transformations") or [{"type": "DIRECT", "subtype": "TRANSFORMATION"}]
            for t in transformations:
                kind = str(t.get("type", "DIRECT")).upper()
                if kind not in ("DIRECT", "INDIRECT"):
                    raise InvalidArgument(f"{where}: transformation type {kind!r} is not DIRECT or INDIRECT")
                lineage.append(FieldLineage(out_field, _need(inp, "namespace", f"{where}.inputField"), _need(inp, "name", f"{where}.inputField"),
                                            _need(inp, "field", f"{where}.inputField"), kind, str(t.get("subtype", "TRANSFORMATION")).upper()))
    return Dataset(ns, name, links, fields, tuple(lineage))


def parse(body: Any) -> Event:
    """Validate a RunEvent, DatasetEvent or JobEvent; InvalidArgument names the first bad field."""
    if not isinstance(body, dict):
        raise InvalidArgument("an OpenLineage event is a JSON object")
    when = _time(_need(body, "eventTime", "event"))
    producer = _need(body, "producer", "event")
    _need(body, "schemaURL", "event")
    if "dataset" in body and "run" not in body and "job" not in body:
        return Event("DatasetEvent", when, producer, datasets=(_dataset(body["dataset"], "dataset"),))
    job = _need(body, "job", "event", dict)
    job_ns, job_name = _need(job, "namespace", "job"), _need(job, "name", "job")
    inputs = tuple(_dataset(d, f"inputs[{i}]") for i, d in enumerate(body.get("inputs") or []))
    outputs = tuple(_dataset(d, f"outputs[{i}]") for i, d in enumerate(body.get("outputs") or []))
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
                 run_facets=dict(run.get("facets") or {}))


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
        "eventTime": datetime.now(timezone.utc).isoformat(),
        "producer": producer,
        "schemaURL": SCHEMA_URL,
        "eventType": event_type,
        "run": {"runId": str(uuid.UUID(run_id))},
        "job": {"namespace": job_namespace, "name": job_name},
        "inputs": [ds(n, v) for n, v in inputs],
        "outputs": [ds(n, v) for n, v in outputs],
    }
