"""Promotion gates of registered models, and promotions that must pass them.

A gate is a mapping with a `kind`:
- `metric`: the version's run metric compared with a threshold (`{"kind": "metric", "metric": "auc", "op": ">=", "threshold": 0.8}`);
- `beats_current`: better than the version holding the alias, on a metric, by a margin (`op` ">" when higher
  is better, "<" when lower is; no holder passes);
- `signature`: the version carries an MLflow signature;
- `provenance`: the version has a run and a feature spec built with point-in-time lookups, and its recorded
  lineage reaches every table of that spec and, beyond them, raw tables;
- `tags`: the version carries a tag (`"tag": "validated"` or `"tag": "validated=true"`);
- `approval`: the version carries the tag, last set by a member of `group` (`set_model_version_tag`, the
  tag service and SQL's `ALTER MODEL m VERSION n SET TAGS` all record who set it, as `cairn.setter.<key>`).
Gates are set by the model's owner or MANAGE. `promote` evaluates them all: every failure is named,
nothing moves, and the audit row (DENIED, FAILED_PRECONDITION) holds every result; a pass moves the
alias and records each result as a version tag `cairn.gate.<alias>.<n>`.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from catalog.errors import FailedPrecondition, InvalidArgument, NotFound, PromotionRefused
from catalog.privileges import Kind
from catalog.service.common import Service, display, fetch, parse_for, resolve, webhook_audience
from catalog.store.registry import RegistryStore

KINDS = ("metric", "beats_current", "signature", "provenance", "tags", "approval")
OPS = (">=", ">", "<=", "<", "==")
FIELDS = ("kind", "metric", "op", "threshold", "margin", "tag", "group", "description")
MAX_GATES = 50
TAG_PREFIX = "cairn.gate."
_COMPARE = {">=": lambda a, b: a >= b, ">": lambda a, b: a > b, "<=": lambda a, b: a <= b, "<": lambda a, b: a < b, "==": lambda a, b: a == b}


def validate_gates(gates: Any) -> list[dict[str, Any]]:
    """Gates as stored (every field present, None when unused). Raises InvalidArgument naming the
    gate (by position) and what is wrong with it.

    >>> validate_gates([{"kind": "metric", "metric": "auc", "op": ">=", "threshold": 0.8}])[0]["threshold"]
    0.8
    """
    if not isinstance(gates, list) or len(gates) > MAX_GATES:
        raise InvalidArgument(f"gates must be a list of at most {MAX_GATES} mappings")
    out = []
    for i, g in enumerate(gates, 1):
        if not isinstance(g, dict):
            raise InvalidArgument(f"gate {i} must be a mapping")
        unknown = set(g) - set(FIELDS)
        if unknown:
            raise InvalidArgument(f"gate {i} has unknown field(s) {sorted(unknown)}; fields are {', '.join(FIELDS)}")
        gate = {f: g.get(f) for f in FIELDS}
        kind = gate["kind"]
        if kind not in KINDS:
            raise InvalidArgument(f"gate {i}: kind {kind!r} is not one of {', '.join(KINDS)}")
        if kind in ("metric", "beats_current"):
            if not isinstance(gate["metric"], str) or not re.fullmatch(r"[\w./ -]{1,250}", gate["metric"]):
                raise InvalidArgument(f"gate {i} ({kind}) needs a metric name")
            gate["op"] = gate["op"] or (">=" if kind == "metric" else ">")
            if gate["op"] not in (OPS if kind == "metric" else (">", "<")):
                raise InvalidArgument(f"gate {i}: op {gate['op']!r} must be one of {', '.join(OPS if kind == 'metric' else ('>', '<'))}")
        if kind == "metric":
            gate["threshold"] = _number(gate["threshold"], f"gate {i} (metric) needs a numeric threshold")
        if kind == "beats_current":
            margin = _number(gate["margin"] if gate["margin"] is not None else 0.0, f"gate {i}: margin must be a number")
            gate["margin"] = margin
            if margin < 0:
                raise InvalidArgument(f"gate {i}: margin must not be negative")
        if kind in ("tags", "approval") and (not isinstance(gate["tag"], str) or not gate["tag"].strip() or len(gate["tag"]) > 255):
                raise InvalidArgument(f"gate {i} ({kind}) needs a tag")
        if kind == "approval" and (not isinstance(gate["group"], str) or not gate["group"].strip()):
            raise InvalidArgument(f"gate {i} (approval) needs the group whose members approve")
        if gate["description"] is not None and (not isinstance(gate["description"], str) or len(gate["description"]) > 1000):
            raise InvalidArgument(f"gate {i}: description must be text of at most 1000 characters")
        out.append(gate)
    return out


def _number(value: Any, message: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidArgument(message)
    return float(value)


def describe(gate: dict[str, Any]) -> str:
    """A gate in words, as it names itself in results and refusals.

    >>> describe({"kind": "beats_current", "metric": "auc", "op": ">", "margin": 0.01})
    'auc beats the current holder by 0.01'
    """
    k = gate["kind"]
    if k == "metric":
        return f"{gate['metric']} {gate['op']} {gate['threshold']:g}"
    if k == "beats_current":
        return f"{gate['metric']} {'beats' if gate['op'] == '>' else 'undercuts'} the current holder by {gate['margin']:g}"
    if k == "tags":
        return f"tag {gate['tag']}"
    if k == "approval":
        return f"approval tag {gate['tag']} set by a member of {gate['group']}"
    return {"signature": "signature present", "provenance": "provenance complete"}[k]


def check_tag(tags: dict[str, str], spec: str) -> tuple[bool, str]:
    key, sep, value = spec.partition("=")
    have = tags.get(key.strip())
    if have is None:
        return False, f"the version has no tag '{key.strip()}'"
    if sep and have != value:
        return False, f"tag '{key.strip()}' is '{have}', not '{value}'"
    return True, f"tag '{key.strip()}' = '{have}'"


class ModelGates(Service):
    """Gates and promotions; mixed into the model service (catalog.services) as `cairn.models`."""

    def set_gates(self, model: str, gates: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Replace the model's gates. Needs ownership or MANAGE on the registered model."""
        with self._uow("set_model_gates", Kind.MODEL, display(model), gates=gates) as uow:
            fn = parse_for(Kind.MODEL, model)
            mid = resolve(uow, Kind.MODEL, fn.key)
            uow.require_manage(mid, Kind.MODEL, fn.key, "set the gates of")
            clean = validate_gates(gates)
            RegistryStore(uow.conn).set_gates(mid, clean, uow.principal)
            return clean

    def get_gates(self, model: str) -> list[dict[str, Any]]:
        """The model's gates (visible to whoever sees the model)."""
        with self._uow("get_model_gates", Kind.MODEL, display(model), write=False) as uow:
            fn = parse_for(Kind.MODEL, model)
            mid = resolve(uow, Kind.MODEL, fn.key)
            uow.require_visible(mid, Kind.MODEL, fn.key)
            return RegistryStore(uow.conn).get_gates(mid)

    def get_gate_results(self, model: str, version: int) -> list[dict[str, Any]]:
        """Results of the gates a version passed in its promotions (from its `cairn.gate.` tags)."""
        with self._uow("get_model_gate_results", Kind.MODEL_VERSION, f"{display(model)}/{version}", write=False) as uow:
            sid, key = self._gate_version(uow, model, version)
            uow.require_visible(sid, Kind.MODEL_VERSION, key)
            tags = uow.store.tags_for([fetch(uow, sid)])[sid]
            out = []
            for t in sorted(tags, key=lambda t: t.key):
                if t.key.startswith(TAG_PREFIX) and not t.column:
                    try:
                        out.append(json.loads(t.value))
                    except ValueError:
                        continue
            return out

    def evaluate_gates(self, model: str, alias: str, version: int) -> list[dict[str, Any]]:
        """Every gate's result for moving `alias` to `version`, moving nothing (a dry run). Needs
        ownership or MANAGE on the model, like a promotion."""
        with self._uow("evaluate_model_gates", Kind.MODEL_VERSION, f"{display(model)}/{version}", write=False, alias=alias) as uow:
            *_, results = self._evaluate(uow, model, alias, version)
            uow.params["results"] = results
            return results

    def promote(self, model: str, alias: str, version: int) -> list[dict[str, Any]]:
        """Move `alias` to `version` if every gate passes. Returns the gate results (also kept as the
        version's `cairn.gate.<alias>.<n>` tags). Raises PromotionRefused naming every failed gate;
        then nothing moves, the audit row (DENIED) holds every result, and a `promotion.refused`
        event is queued. Needs ownership or MANAGE on the model; the version must be READY."""
        with self._uow("promote_model_version", Kind.MODEL_VERSION, f"{display(model)}/{version}", alias=alias) as uow:
            mid, name, vid, key, results = self._evaluate(uow, model, alias, version)
            uow.params["results"] = results
            failed = [r for r in results if not r["passed"]]
            if failed:
                data = {"name": key.rsplit("/", 1)[0], "version": str(version), "alias": name, "results": results}
                uow.with_audit(lambda store: RegistryStore(store.conn).enqueue(mid, "promotion.refused", data, keep=webhook_audience(uow)))
                listed = "; ".join(f"{r['gate']} ({r['detail']})" for r in failed)
                raise uow.refuse(PromotionRefused(f"promotion of '{key}' to '{name}' refused: {len(failed)} gate(s) failed: {listed}", results))
            aliases = dict(fetch(uow, mid).aliases)
            aliases[name] = int(version)
            uow.store.update_securable(mid, uow.principal, aliases=aliases)
            registry = RegistryStore(uow.conn)
            tags = {f"{TAG_PREFIX}{name}.{i}": json.dumps(r, sort_keys=True)[:1000] for i, r in enumerate(results, 1)}
            registry.put_tags(vid, tags, f"{TAG_PREFIX}{name}.")
            hears = webhook_audience(uow)
            for tag, value in tags.items():
                registry.enqueue(mid, "model_version_tag.set", {"name": key.rsplit("/", 1)[0], "version": str(version), "key": tag, "value": value},
                                 keep=hears)
            registry.enqueue(mid, "model_version_alias.created", {"name": key.rsplit("/", 1)[0], "alias": name, "version": str(version)}, keep=hears)
            return results

    # evaluation ----------------------------------------------------------------------------
    def _gate_version(self, uow: Any, model: str, version: int) -> tuple[int, str]:
        fn = parse_for(Kind.MODEL, model)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise InvalidArgument(f"a model version is a positive integer, not {version!r}")
        key = f"{fn.key}/{version}"
        sid = uow.authz.resolve(Kind.MODEL_VERSION, key)
        if sid is None:
            raise NotFound(f"model version '{key}' does not exist")
        return sid, key

    def _evaluate(self, uow: Any, model: str, alias: str, version: int) -> tuple[int, str, int, str, list[dict[str, Any]]]:
        fn = parse_for(Kind.MODEL, model)
        mid = resolve(uow, Kind.MODEL, fn.key)
        uow.require_manage(mid, Kind.MODEL, fn.key, "promote versions of")
        if not isinstance(alias, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]{0,254}", alias) or alias.isdigit():
            raise InvalidArgument(f"alias {alias!r} must start with a letter or underscore and hold letters, digits, '_' or '-'")
        name = alias.lower()
        vid, key = self._gate_version(uow, model, version)
        candidate = fetch(uow, vid)
        if candidate.status != "READY":
            raise FailedPrecondition(f"model version '{key}' is {candidate.status}; only a READY version is promoted")
        gates = RegistryStore(uow.conn).get_gates(mid)
        holder_no = fetch(uow, mid).aliases.get(name)
        holder = None
        if holder_no is not None and holder_no != version:
            hid = uow.authz.resolve(Kind.MODEL_VERSION, f"{fn.key}/{holder_no}")
            holder = fetch(uow, hid) if hid is not None else None
        facts = _Facts(self, uow, candidate, holder, gates)
        return mid, name, vid, key, [facts.result(g) for g in gates]


class _Facts:
    """What the gates look at, read once per promotion."""

    def __init__(self, service: ModelGates, uow: Any, version: Any, holder: Any, gates: list[dict[str, Any]]) -> None:
        self.service, self.uow, self.version, self.holder, self.gates = service, uow, version, holder, gates
        self._metrics: dict[int, dict[str, float]] = {}
        self._tag_cache: dict[str, str] | None = None

    def result(self, gate: dict[str, Any]) -> dict[str, Any]:
        try:
            passed, detail = getattr(self, f"_{gate['kind']}")(gate)
        except FailedPrecondition as exc:
            passed, detail = False, str(exc)
        return {"gate": gate.get("description") or describe(gate), "kind": gate["kind"], "passed": passed, "detail": detail}

    def metrics(self, version: Any) -> dict[str, float]:
        if version.id not in self._metrics:
            raw = version.properties.get("cairn.run_metrics")
            if raw is not None:
                self._metrics[version.id] = {k: float(v) for k, v in json.loads(raw).items()}
            else:
                self._metrics[version.id] = _run_metrics(self.service.metastore.settings.home, version.run_id)
        return self._metrics[version.id]

    def tags(self) -> dict[str, str]:
        if self._tag_cache is None:
            keys = {g["tag"].partition("=")[0].strip() for g in self.gates if g["kind"] in ("tags", "approval")}
            self._tag_cache = RegistryStore(self.uow.conn).version_tags(self.version.id, [*keys, *(f"cairn.setter.{k}" for k in keys)])
        return self._tag_cache

    def _metric(self, g: dict[str, Any]) -> tuple[bool, str]:
        value = self.metrics(self.version).get(g["metric"])
        if value is None:
            return False, f"the version's run has no metric '{g['metric']}'"
        return _COMPARE[g["op"]](value, g["threshold"]), f"{g['metric']} = {value:.6g}"

    def _beats_current(self, g: dict[str, Any]) -> tuple[bool, str]:
        if self.holder is None:
            return True, "no other version holds the alias"
        mine, theirs = self.metrics(self.version).get(g["metric"]), self.metrics(self.holder).get(g["metric"])
        if mine is None:
            return False, f"the version's run has no metric '{g['metric']}'"
        if theirs is None:
            return True, f"version {self.holder.version} has no metric '{g['metric']}' to beat"
        ok = mine >= theirs + g["margin"] if g["op"] == ">" else mine <= theirs - g["margin"]
        ok = ok and mine != theirs
        return ok, f"{g['metric']} = {mine:.6g} vs {theirs:.6g} for version {self.holder.version} (margin {g['margin']:g})"

    def _signature(self, g: dict[str, Any]) -> tuple[bool, str]:
        has = "cairn.signature" in self.version.properties
        return has, "signature recorded" if has else "the version has no signature"

    def _provenance(self, g: dict[str, Any]) -> tuple[bool, str]:
        raw = self.version.properties.get("cairn.feature_spec")
        if not raw or not self.version.run_id:
            return False, "the version has no feature spec and run (log it with log_model(..., training_set=...))"
        spec = json.loads(raw)
        if not spec.get("point_in_time"):
            return False, "its training set was not built with point-in-time lookups"
        wanted = {f["table"] for f in spec.get("feature_tables", [])} | ({spec["label_source"]["table"]} if (spec.get("label_source") or {}).get("table") else set())
        if spec.get("training_set_table"):
            wanted.add(spec["training_set_table"])
        upstream = _upstream_tables(self.service.metastore.lineage_graph, self.uow.conn, self.version.full_name)
        missing = sorted(wanted - upstream)
        if missing:
            return False, f"lineage does not reach {', '.join(missing)}"
        raw_tables = sorted(upstream - wanted)
        if not raw_tables:
            return False, "lineage stops at the training tables: nothing traces them to raw tables"
        return True, f"traces to {len(raw_tables)} upstream table(s): {', '.join(raw_tables[:5])}"

    def _tags(self, g: dict[str, Any]) -> tuple[bool, str]:
        return check_tag(self.tags(), g["tag"])

    def _approval(self, g: dict[str, Any]) -> tuple[bool, str]:
        ok, detail = check_tag(self.tags(), g["tag"])
        if not ok:
            return ok, detail
        key = g["tag"].partition("=")[0].strip()
        setter = self.tags().get(f"cairn.setter.{key}")
        if setter is None:
            return False, f"no record of who set tag '{key}' (set it again)"
        if g["group"] not in self.uow.authz.principals(setter):
            return False, f"tag '{key}' was set by {setter}, who is not a member of {g['group']}"
        return True, f"approved by {setter} ({g['group']})"


def _run_metrics(home: Any, run_id: str | None) -> dict[str, float]:
    """The metrics of an MLflow run in the tracking store (MLFLOW_TRACKING_URI, else the embedded one)."""
    if not run_id:
        raise FailedPrecondition("the version has no run to read metrics from")
    import os

    from mlflow.tracking import MlflowClient

    uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{home}/mlflow.db"
    try:
        return dict(MlflowClient(tracking_uri=uri).get_run(run_id).data.metrics)
    except Exception as exc:  # the run is gone or the store unreachable: the gate fails, saying why
        raise FailedPrecondition(f"cannot read run {run_id}'s metrics: {type(exc).__name__}") from None


def _upstream_tables(graph: Any, conn: Any, version_key: str) -> set[str]:
    from lineage.recording import CAIRN
    from lineage.store import LineageStore

    store = LineageStore(conn)
    node = store.find_node("MODEL_VERSION", CAIRN, version_key)
    if node is None:
        return set()
    graph.sync(store)
    t = graph.traverse(node, False, "DATASET", 50)
    rows = store.nodes_by_id(list(t.depth))
    return {r.name for r in rows.values() if r.kind == "TABLE" and r.namespace == CAIRN}
