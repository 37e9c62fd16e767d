"""Lineage policies for CI (`cairn audit`): declarative rules checked against a catalog.

A policy file (YAML) holds rules; each has an id, a type, a severity (error | warning), a scope
(name globs, tags, kinds) and an allowlist whose entries need a reason and an expiry date. The
catalog is read once, through the governed services, into a `Snapshot`; each rule is then a pure
function of the snapshot that yields one finding per object it judged.

Conventions the rules rely on (what the pipelines record):
- a column is PII when it carries the tag `pii` (any value but "false");
- a training set is a table with the tag `training_set`; it was built with point-in-time lookups
  when it also carries `point_in_time=true`; raw tables carry the tag `raw` (or have no upstream).
  A training set saved by the feature store carries its spec (property `cairn.training_set.spec`),
  which the provenance rule trusts over tags, checking that the lineage records every feature
  table the spec names;
- a feature table is a table with timestamp keys or the tag `feature_table`;
- serving endpoints are lineage nodes `endpoint:<name>` fed by the model versions they serve.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from catalog.errors import InvalidArgument

RULE_TYPES = ("provenance", "pii", "ownership", "documentation", "freshness", "access", "deprecation")


class PolicyError(InvalidArgument):
    """The policy file is invalid (exit code 2)."""


@dataclass(frozen=True)
class AllowEntry:
    object: str
    reason: str
    expires: date

    def active(self, today: date) -> bool:
        return today <= self.expires


@dataclass(frozen=True)
class Rule:
    id: str
    type: str
    severity: str
    options: dict[str, Any]
    names: tuple[str, ...] = ("*",)
    tags: dict[str, str | None] = field(default_factory=dict)
    kinds: tuple[str, ...] = ()
    allow: tuple[AllowEntry, ...] = ()

    def in_scope(self, name: str, kind: str, tags: dict[str, str]) -> bool:
        if self.kinds and kind not in self.kinds:
            return False
        if not any(fnmatch.fnmatch(name, g) for g in self.names):
            return False
        return all(k in tags and (v is None or tags[k] == v) for k, v in self.tags.items())


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    object: str
    passed: bool
    message: str
    allowed_by: str | None = None  # the allowlist reason, when a violation is waived


def load(text: str, today: date | None = None) -> list[Rule]:
    """Parse and validate a policy; PolicyError names the first problem."""
    import yaml

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"the policy is not valid YAML: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list) or not doc["rules"]:
        raise PolicyError("the policy needs a non-empty 'rules' list")
    rules, ids = [], set()
    for i, raw in enumerate(doc["rules"]):
        where = f"rules[{i}]"
        if not isinstance(raw, dict):
            raise PolicyError(f"{where} must be a mapping")
        rid, rtype = raw.get("id"), raw.get("type")
        if not rid or not isinstance(rid, str):
            raise PolicyError(f"{where} needs an 'id'")
        if rid in ids:
            raise PolicyError(f"rule id '{rid}' repeats")
        ids.add(rid)
        if rtype not in RULE_TYPES:
            raise PolicyError(f"rule '{rid}': type must be one of {', '.join(RULE_TYPES)}, not {rtype!r}")
        severity = raw.get("severity", "error")
        if severity not in ("error", "warning"):
            raise PolicyError(f"rule '{rid}': severity must be error or warning")
        scope = raw.get("scope") or {}
        if not isinstance(scope, dict):
            raise PolicyError(f"rule '{rid}': scope must be a mapping")
        names = tuple(scope.get("names") or ["*"])
        tags = {str(k): (None if v is None else str(v)) for k, v in (scope.get("tags") or {}).items()}
        kinds = tuple(str(k).upper() for k in scope.get("kinds") or ())
        allow = []
        for j, entry in enumerate(raw.get("allow") or []):
            if not isinstance(entry, dict) or not entry.get("object"):
                raise PolicyError(f"rule '{rid}': allow[{j}] needs an 'object'")
            if not entry.get("reason"):
                raise PolicyError(f"rule '{rid}': allow[{j}] ({entry['object']}) needs a 'reason'")
            expires = entry.get("expires")
            if isinstance(expires, str):
                try:
                    expires = date.fromisoformat(expires)
                except ValueError:
                    expires = None
            if not isinstance(expires, date):
                raise PolicyError(f"rule '{rid}': allow[{j}] ({entry['object']}) needs 'expires' as a date (YYYY-MM-DD)")
            allow.append(AllowEntry(str(entry["object"]), str(entry["reason"]), expires))
        options = {k: v for k, v in raw.items() if k not in ("id", "type", "severity", "scope", "allow")}
        _check_options(rid, rtype, options)
        rules.append(Rule(rid, rtype, severity, options, names, tags, kinds, tuple(allow)))
    return rules


def _check_options(rid: str, rtype: str, options: dict[str, Any]) -> None:
    if rtype == "freshness" and not isinstance(options.get("max_age_hours"), (int, float)):
        raise PolicyError(f"rule '{rid}': freshness needs 'max_age_hours'")
    if rtype == "access" and not (options.get("principal") and options.get("endpoint")):
        raise PolicyError(f"rule '{rid}': access needs 'principal' and 'endpoint'")
    if rtype in ("ownership", "documentation") and not isinstance(options.get("required_tags", []), list):
        raise PolicyError(f"rule '{rid}': required_tags must be a list")


# the catalog as the rules see it ------------------------------------------------------------
@dataclass
class Snapshot:
    objects: dict[str, dict[str, Any]]  # full name -> {kind, owner, comment, tags, column_tags, timestamp_keys, last_write}
    principal_kinds: dict[str, str]
    table_edges: list[tuple[str, str]]  # (source, target) over TABLE / MODEL_VERSION / ENDPOINT nodes, names as in lineage
    column_edges: list[tuple[str, str]]
    aliased_versions: set[str]
    grants: dict[str, dict[str, set[str]]]  # principal -> object -> privileges it holds (effective)
    direct_grants: dict[str, dict[str, set[str]]]  # principal -> object -> privileges granted to it directly

    def downstream(self, start: str, edges: list[tuple[str, str]]) -> set[str]:
        out: dict[str, list[str]] = {}
        for s, t in edges:
            out.setdefault(s, []).append(t)
        seen, stack = set(), [start]
        while stack:
            for n in out.get(stack.pop(), ()):
                if n not in seen:
                    seen.add(n)
                    stack.append(n)
        return seen

    def upstream(self, start: str, edges: list[tuple[str, str]]) -> set[str]:
        return self.downstream(start, [(t, s) for s, t in edges])

    def tags(self, name: str) -> dict[str, str]:
        return self.objects.get(name, {}).get("tags", {})


def evaluate(rules: list[Rule], snap: Snapshot, today: date | None = None, fail_on_empty: bool = False) -> list[Finding]:
    """One finding per object each rule judged; then, per rule, the principals and objects it names
    that the catalog does not know (failures), and a warning (an error with `fail_on_empty`) when
    it judged nothing: a gate that checks nothing must not pass silently."""
    today = today or datetime.now(UTC).date()
    findings: list[Finding] = []
    for rule in rules:
        judged = 0
        for obj, ok, message in CHECKS[rule.type](rule, snap):
            judged += 1
            allowed = None
            if not ok:
                for entry in rule.allow:
                    if fnmatch.fnmatch(obj, entry.object):
                        if entry.active(today):
                            allowed = entry.reason
                        else:
                            message += f" (allowlist entry expired {entry.expires.isoformat()})"
            findings.append(Finding(rule.id, rule.severity, obj, ok, message, allowed))
        unknown = list(_unknown(rule, snap))
        findings += [Finding(rule.id, "warning" if stale else rule.severity, obj, False, message) for obj, message, stale in unknown]
        if not judged and not unknown:
            findings.append(Finding(rule.id, "error" if fail_on_empty else "warning", "(nothing)", False,
                                    "the rule checked nothing: no object in the catalog is in its scope"))
    return findings


def _unknown(rule: Rule, snap: Snapshot) -> Iterator[tuple[str, str, bool]]:
    """Principals, endpoints and exact object names a rule names that the catalog does not have
    (or that the acting principal may not see), each with whether it is only a stale allowlist
    entry (a warning) rather than something the rule was meant to check."""
    who = rule.options.get("principal")
    if who and who not in snap.principal_kinds:
        yield who, f"principal '{who}' does not exist", False
    endpoint = rule.options.get("endpoint")
    if endpoint and not any(t == f"endpoint:{endpoint}" or s == f"endpoint:{endpoint}" for s, t in snap.table_edges):
        yield f"endpoint:{endpoint}", f"endpoint '{endpoint}' is not in the lineage graph (nothing is served by it)", False
    exact = [n for n in (*rule.names, *rule.options.get("targets", [])) if not any(ch in n for ch in "*?[")]
    for name in exact:
        if name not in snap.objects:
            yield name, f"object '{name}' does not exist (or you may not see it)", False
    for entry in rule.allow:
        if not any(ch in entry.object for ch in "*?[") and entry.object not in snap.objects:
            yield entry.object, f"allowlist entry '{entry.object}' names an object that does not exist (or you may not see it)", True
    for glob in (*(n for n in rule.names if n != "*"), *rule.options.get("targets", [])):
        if any(ch in glob for ch in "*?[") and not any(fnmatch.fnmatch(n, glob) for n in snap.objects):
            yield glob, f"no object matches '{glob}'", False


def _tables(rule: Rule, snap: Snapshot, kinds: tuple[str, ...] = ("TABLE",)) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, o in sorted(snap.objects.items()):
        if o["kind"] in kinds and rule.in_scope(name, o["kind"], o.get("tags", {})):
            yield name, o


def check_ownership(rule: Rule, snap: Snapshot) -> Iterator[tuple[str, bool, str]]:
    kinds = tuple(rule.kinds) or ("CATALOG", "SCHEMA", "TABLE", "MODEL")
    for name, o in _tables(rule, snap, kinds):
        problems = []
        if rule.options.get("require_group_owner", rule.type == "ownership") and snap.principal_kinds.get(o["owner"]) != "GROUP":
            problems.append(f"owner '{o['owner']}' is not a group")
        if rule.options.get("require_comment", rule.type == "documentation") and not (o.get("comment") or "").strip():
            problems.append("no comment")
        missing = [t for t in rule.options.get("required_tags", []) if t not in o.get("tags", {})]
        if missing:
            problems.append(f"missing tags {', '.join(missing)}")
        yield name, not problems, "; ".join(problems) or "owned, documented and tagged"


def check_deprecation(rule: Rule, snap: Snapshot) -> Iterator[tuple[str, bool, str]]:
    tag = rule.options.get("tag", "deprecated")
    deprecated = {n for n, o in snap.objects.items() if tag in o.get("tags", {})}
    readers: dict[str, list[str]] = {}
    for s, t in snap.table_edges:
        if s in deprecated:
            readers.setdefault(t, []).append(s)
    for name, _ in _tables(rule, snap, ("TABLE", "MODEL_VERSION")):
        if name in deprecated:
            continue
        bad = sorted(readers.get(name, []))
        yield name, not bad, f"reads deprecated {', '.join(bad)}" if bad else "reads nothing deprecated"


def check_pii(rule: Rule, snap: Snapshot) -> Iterator[tuple[str, bool, str]]:
    tag = rule.options.get("tag", "pii")
    approval = rule.options.get("approval_tag", "pii_approved")
    catalogs = set(rule.options.get("catalogs", []))
    prediction_tag = rule.options.get("prediction_tag", "prediction")
    model_inputs = {s for s, t in snap.table_edges if snap.objects.get(t, {}).get("kind") == "MODEL_VERSION" or t.startswith("model:")}
    target_globs = list(rule.options.get("targets", []))
    guarded = {n for n, o in snap.objects.items() if o["kind"] == "TABLE" and (
        n.split(".")[0] in catalogs or prediction_tag in o.get("tags", {}) or n in model_inputs
        or any(fnmatch.fnmatch(n, g) for g in target_globs))}
    sources = sorted(f"{n}.{c}" for n, o in snap.objects.items() for c, tags in o.get("column_tags", {}).items()
                     if tag in tags and tags[tag].lower() != "false")
    reach: dict[str, set[str]] = {}
    for col in sources:
        for target in snap.downstream(col, snap.column_edges):
            reach.setdefault(target.rsplit(".", 1)[0], set()).add(col)
    for name, o in _tables(rule, snap):
        if name not in guarded:
            continue
        leaked = sorted(reach.get(name, set()) | {f"{name}.{c}" for c, tags in o.get("column_tags", {}).items()
                                                   if tag in tags and tags[tag].lower() != "false"})
        if leaked and approval not in o.get("tags", {}):
            yield name, False, f"PII reaches it from {', '.join(leaked)} without the '{approval}' tag"
        else:
            yield name, True, "no unapproved PII"


def _served(snap: Snapshot) -> dict[str, list[str]]:
    """endpoint node -> model versions feeding it."""
    out: dict[str, list[str]] = {}
    for s, t in snap.table_edges:
        if t.startswith("endpoint:"):
            out.setdefault(t, []).append(s)
    return out


TRAINING_SET_SPEC = "cairn.training_set.spec"  # the property a saved training set carries (pipelines/features)


def _spec(snap: Snapshot, name: str) -> dict[str, Any] | None:
    raw = snap.objects.get(name, {}).get("training_set_spec")
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return {"point_in_time": False, "feature_tables": []}  # unreadable: proves nothing


def check_provenance(rule: Rule, snap: Snapshot) -> Iterator[tuple[str, bool, str]]:
    behind = {v for versions in _served(snap).values() for v in versions}
    targets = sorted({v for v in snap.aliased_versions | behind})
    for version in targets:
        name = version[len("model:"):] if version.startswith("model:") else version
        if not rule.in_scope(name, "MODEL_VERSION", {}):
            continue
        up = snap.upstream(version, snap.table_edges)
        training = sorted(n for n in up if "training_set" in snap.tags(n) or _spec(snap, n) is not None)
        problems = []
        if not training:
            problems.append("no training set upstream")
        for ts in training:
            ts_up = snap.upstream(ts, snap.table_edges)
            spec = _spec(snap, ts)
            if spec is not None:  # recorded by the operation that built it: trusted over tags
                if not spec.get("point_in_time"):
                    problems.append(f"training set {ts} was not built with point-in-time lookups (its recorded spec)")
                for f in spec.get("feature_tables", []):
                    if f.get("table") not in ts_up:
                        problems.append(f"training set {ts}: its spec names {f.get('table')}, which its lineage does not record")
            elif snap.tags(ts).get("point_in_time", "").lower() != "true":
                problems.append(f"training set {ts} was not built with point-in-time lookups")
            raws = [n for n in ts_up if "raw" in snap.tags(n) or not snap.upstream(n, snap.table_edges)]
            if not raws:
                problems.append(f"training set {ts} does not trace to a raw table")
        yield name, not problems, "; ".join(problems) or f"traces through {', '.join(training)} to raw tables"


def check_freshness(rule: Rule, snap: Snapshot) -> Iterator[tuple[str, bool, str]]:
    max_age = timedelta(hours=float(rule.options["max_age_hours"]))
    now = datetime.now(UTC)
    served_models = {v for versions in _served(snap).values() for v in versions}
    features = set()
    for model in served_models:
        for n in snap.upstream(model, snap.table_edges):
            o = snap.objects.get(n, {})
            if o.get("kind") == "TABLE" and (o.get("timestamp_keys") or "feature_table" in o.get("tags", {})):
                features.add(n)
    for name in sorted(features):
        o = snap.objects[name]
        if not rule.in_scope(name, "TABLE", o.get("tags", {})):
            continue
        last = o.get("last_write")
        if last is None:
            yield name, False, "never written"
        else:
            age = now - last
            yield name, age <= max_age, f"last written {age.total_seconds() / 3600:.1f} h ago (limit {max_age.total_seconds() / 3600:g} h)"


def check_access(rule: Rule, snap: Snapshot) -> Iterator[tuple[str, bool, str]]:
    principal, endpoint = rule.options["principal"], f"endpoint:{rule.options['endpoint']}"
    needed = {}
    for n in snap.upstream(endpoint, snap.table_edges):
        kind = snap.objects.get(n, {}).get("kind")
        if kind == "TABLE":
            needed[n] = "SELECT"
        elif kind == "MODEL_VERSION" or n.startswith("model:"):
            needed[n.split("/")[0].removeprefix("model:")] = "EXECUTE"
    for obj, priv in sorted(needed.items()):
        has = priv in snap.grants.get(principal, {}).get(obj, set())
        yield obj, has, f"{principal} {'has' if has else 'lacks'} {priv}"
    for obj, privs in sorted(snap.direct_grants.get(principal, {}).items()):
        if obj not in needed and privs:
            yield obj, False, f"{principal} holds {', '.join(sorted(privs))} beyond what {endpoint} needs"


CHECKS = {"ownership": check_ownership, "documentation": check_ownership, "deprecation": check_deprecation, "pii": check_pii,
          "provenance": check_provenance, "freshness": check_freshness, "access": check_access}
