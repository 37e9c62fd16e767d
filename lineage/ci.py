"""`cairn audit` for CI: build the policy snapshot from the catalog, report, and check SQL changes."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from catalog.errors import CairnError, InvalidArgument, NotFound
from catalog.paging import every
from lineage.policy import TRAINING_SET_SPEC, Finding, Rule, Snapshot
from lineage.sql import extract


def _node(name: str, kind: str) -> str:
    return f"endpoint:{name}" if kind == "ENDPOINT" else name


def build_snapshot(cairn: Any, rules: list[Rule]) -> Snapshot:
    """Read what the rules need through the governed services, as the acting principal."""
    objects: dict[str, dict[str, Any]] = {}
    securables: list[Any] = []
    for cat in every(cairn.catalogs.list_catalogs):
        securables.append(cat)
        for sch in every(cairn.schemas.list_schemas, cat.name):
            securables.append(sch)
            securables += list(every(cairn.tables.list_tables, cat.name, sch.name))
            for model in every(cairn.models.list_registered_models, cat.name, sch.name):
                securables.append(model)
                securables += list(every(cairn.models.list_model_versions, model.full_name))
    tags = cairn.tags.list_tags_many(securables)
    aliased = set()
    for s in securables:
        obj_tags = {t.key: t.value for t in tags.get(s.id, []) if t.column is None}
        col_tags: dict[str, dict[str, str]] = {}
        for t in tags.get(s.id, []):
            if t.column is not None:
                col_tags.setdefault(t.column, {})[t.key] = t.value
        objects[s.full_name] = {"kind": s.kind.value, "owner": s.owner, "comment": s.comment, "tags": obj_tags, "column_tags": col_tags,
                                "timestamp_keys": list(s.timestamp_keys), "last_write": None, "securable": s,
                                "training_set_spec": (s.properties or {}).get(TRAINING_SET_SPEC)}
        for version in (s.aliases or {}).values():
            aliased.add(f"{s.full_name}/{version}")
    table_edges = [(_node(e["source"], e["source_kind"]), _node(e["target"], e["target_kind"])) for e in cairn.lineage.list_edges("TABLE")]
    column_edges = [(e["source"], e["target"]) for e in cairn.lineage.list_edges("COLUMN")]
    if any(r.type == "freshness" for r in rules):
        for name, o in objects.items():
            if o["kind"] == "TABLE" and (o["timestamp_keys"] or "feature_table" in o["tags"]):
                try:
                    hist = cairn.data.history(name, 1)
                    o["last_write"] = datetime.fromtimestamp(hist[0]["timestamp"] / 1000, tz=UTC) if hist else None
                except CairnError:
                    o["last_write"] = None
    kinds = {p.name: p.kind.value for p in every(cairn.principals.list_principals)}
    grants: dict[str, dict[str, set[str]]] = {}
    direct: dict[str, dict[str, set[str]]] = {}
    for who in sorted({r.options["principal"] for r in rules if r.type == "access"} & set(kinds)):  # the rest are findings
        mine, mine_direct = grants.setdefault(who, {}), direct.setdefault(who, {})
        for name, o in objects.items():
            if o["kind"] not in ("TABLE", "MODEL"):
                continue
            kind = o["kind"].lower()
            mine[name] = {e.privilege.value for e in cairn.grants.get_effective_privileges(kind, name, who)}
            mine_direct[name] = {g.privilege.value for g in cairn.grants.list_grants(kind, name, who)}
    for o in objects.values():
        o.pop("securable", None)
    return Snapshot(objects, kinds, table_edges, column_edges, aliased, grants, direct)


def exit_code(findings: list[Finding]) -> int:
    return 1 if any(not f.passed and not f.allowed_by and f.severity == "error" for f in findings) else 0


def render_text(findings: list[Finding]) -> str:
    bad = [f for f in findings if not f.passed and not f.allowed_by]
    waived = [f for f in findings if not f.passed and f.allowed_by]
    errors = sum(1 for f in bad if f.severity == "error")
    lines = [f"cairn audit: {len(findings)} checks, {errors} violations, {len(bad) - errors} warnings, {len(waived)} allowed"]
    for f in bad:
        lines.append(f"  {f.severity.upper():7} {f.rule}: {f.object}: {f.message}")
    for f in waived:
        lines.append(f"  ALLOWED {f.rule}: {f.object}: {f.message} (reason: {f.allowed_by})")
    return "\n".join(lines) + "\n"


def render_json(findings: list[Finding]) -> str:
    return json.dumps({"passed": exit_code(findings) == 0, "findings": [f.__dict__ for f in findings]}, indent=2) + "\n"


def render_junit(findings: list[Finding]) -> str:
    """JUnit XML: a suite per rule, a test case per rule and object."""
    by_rule: dict[str, list[Finding]] = {}
    for f in findings:
        by_rule.setdefault(f.rule, []).append(f)
    out = ['<?xml version="1.0" encoding="UTF-8"?>', f'<testsuites name="cairn-audit" tests="{len(findings)}">']
    for rule, items in by_rule.items():
        failures = sum(1 for f in items if not f.passed and not f.allowed_by and f.severity == "error")
        out.append(f'  <testsuite name="{escape(rule)}" tests="{len(items)}" failures="{failures}">')
        for f in items:
            case = f'    <testcase classname="{escape(rule)}" name="{escape(f.object)}"'
            if f.passed:
                out.append(case + "/>")
            elif f.allowed_by:
                out.append(case + f'><skipped message="{escape("allowed: " + f.allowed_by)}"/></testcase>')
            elif f.severity == "warning":
                out.append(case + f"><system-out>{escape('warning: ' + f.message)}</system-out></testcase>")
            else:
                out.append(case + f'><failure message="{escape(f.message, {chr(34): "&quot;"})}"/></testcase>')
        out.append("  </testsuite>")
    out.append("</testsuites>")
    return "\n".join(out) + "\n"


# change impact --------------------------------------------------------------------------------
def sql_files(ref: str, path: str) -> dict[str, str]:
    """SQL files under `path` at a git ref, or in a folder when `ref` is one."""
    folder = Path(ref)
    if folder.is_dir():
        base = folder / path if path else folder
        if not base.is_dir():
            raise InvalidArgument(f"--path '{path}' is not a folder in '{ref}'")
        return {str(p.relative_to(base)): p.read_text() for p in sorted(base.rglob("*.sql"))}
    try:
        listing = subprocess.run(["git", "ls-tree", "-r", "--name-only", ref, "--", path or "."], capture_output=True, text=True, check=True).stdout
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        raise InvalidArgument(f"'{ref}' is neither a folder nor a git ref here: {getattr(exc, 'stderr', exc)}".strip()) from None
    if path and not listing.strip():
        raise InvalidArgument(f"--path '{path}' does not exist at git ref '{ref}'")
    out = {}
    for name in listing.splitlines():
        if name.endswith(".sql"):
            shown = subprocess.run(["git", "show", f"{ref}:{name}"], capture_output=True, text=True, check=True).stdout
            out[name[len(path):].lstrip("/") if path and name.startswith(path) else name] = shown
    return out


def _outputs(sql: str, dialect: str | None) -> tuple[set[str], set[str], list[str]]:
    lin = extract(sql, dialect)
    cols = {e.target for e in lin.columns if e.kind == "DIRECT"}
    return lin.targets, cols, [str(e) for e in lin.errors]


def diff(cairn: Any, base: dict[str, str], head: dict[str, str], dialect: str | None, default_catalog: str | None,
         default_schema: str | None) -> dict[str, Any]:
    """What changed SQL touches downstream, and which dropped columns are still used there."""
    def q(name: str) -> str:
        parts = name.split(".")
        if len(parts) == 3:
            return name
        if len(parts) == 2 and default_catalog:
            return f"{default_catalog}.{name}"
        if len(parts) == 1 and default_catalog and default_schema:
            return f"{default_catalog}.{default_schema}.{name}"
        return name

    changed = sorted(f for f in set(base) | set(head) if base.get(f) != head.get(f))
    report: dict[str, Any] = {"changed_files": changed, "targets": [], "touched": [], "breaking": [], "errors": []}
    for f in changed:
        b_targets, b_cols, _ = _outputs(base.get(f, ""), dialect) if f in base else (set(), set(), [])
        h_targets, h_cols, errs = _outputs(head.get(f, ""), dialect) if f in head else (set(), set(), [])
        report["errors"] += [f"{f}: {e}" for e in errs]
        targets = {q(t) for t in b_targets | h_targets}
        report["targets"] += sorted(targets)
        for t in sorted(targets):
            try:
                down = cairn.lineage.get_downstream(t, depth=20)
            except NotFound:
                continue  # a table the change creates has nothing downstream yet; any other failure fails the gate
            report["touched"] += [{"from": t, "node": n.name or "(restricted)", "kind": n.kind, "depth": n.depth} for n in down.nodes]
        dropped = {q(c.rsplit(".", 1)[0]) + "." + c.rsplit(".", 1)[1] for c in b_cols} - {
            q(c.rsplit(".", 1)[0]) + "." + c.rsplit(".", 1)[1] for c in h_cols}
        for col in sorted(dropped):
            try:
                users = cairn.lineage.get_downstream(col, level="COLUMN", depth=20)
            except NotFound:
                continue
            used = [n.name or "(restricted)" for n in users.nodes]
            if used:
                report["breaking"].append({"file": f, "column": col, "used_by": used})
    return report


_NODE = "fullName owner comment tags { key value column }"
_PAGE = "pageInfo { hasNextPage endCursor }"
_REMOTE_QUERY = """{ tableEdges: lineageEdges(level: "TABLE") { source target sourceKind targetKind }
  columnEdges: lineageEdges(level: "COLUMN") { source target } }"""
_CATALOGS = "query($after: String) { x: catalogs(first: 1000, after: $after) { edges { node { %s } } %s } }" % (_NODE, _PAGE)
_SCHEMAS = "query($name: String!, $after: String) { catalog(name: $name) { x: schemas(first: 1000, after: $after) { edges { node { %s } } %s } } }" % (_NODE, _PAGE)
_TABLES = ("query($name: String!, $after: String) { schema(name: $name) { x: tables(first: 1000, after: $after) { edges { node { %s timestampKeys } } %s } } }"
           % (_NODE, _PAGE))
_MODELS = ("query($name: String!, $after: String) { schema(name: $name) { x: models(first: 1000, after: $after) { edges { node { %s aliases { alias version } } } %s } } }"
           % (_NODE, _PAGE))
_VERSIONS = "query($name: String!, $after: String) { model(name: $name) { x: versions(first: 1000, after: $after) { edges { node { %s } } %s } } }" % (_NODE, _PAGE)
_PRINCIPALS = "query($after: String) { x: principals(first: 1000, after: $after) { edges { node { name kind } } %s } }" % _PAGE


def build_snapshot_remote(url: str, token: str, rules: list[Rule]) -> Snapshot:
    """The same snapshot, read from a running Cairn server over GraphQL as the token's principal."""
    import httpx

    def gql(query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            r = httpx.post(url.rstrip("/") + "/graphql", json={"query": query, "variables": variables or {}},
                           headers={"Authorization": f"Bearer {token}"}, timeout=120)
        except httpx.HTTPError as exc:
            raise InvalidArgument(f"cannot reach {url}: {exc}") from None
        if r.status_code == 401:
            raise InvalidArgument(f"{url} refused the token (401)")
        body = r.json()
        if body.get("errors"):
            raise InvalidArgument(f"{url}: {body['errors'][0]['message']}")
        return body["data"]

    def paged(query: str, parent: str | None = None) -> list[dict[str, Any]]:
        """Every node of one connection, page by page (the server bounds what one query may ask)."""
        out, after = [], None
        while True:
            data = gql(query, {"after": after, **({"name": parent} if parent else {})})
            conn = data["x"] if parent is None else next(iter(data.values()))["x"]
            out += [e["node"] for e in conn["edges"]]
            if not conn["pageInfo"]["hasNextPage"]:
                return out
            after = conn["pageInfo"]["endCursor"]

    data = gql(_REMOTE_QUERY)
    objects: dict[str, dict[str, Any]] = {}
    aliased: set[str] = set()

    def add(node: dict[str, Any], kind: str) -> None:
        tags = {t["key"]: t["value"] for t in node["tags"] if t["column"] is None}
        cols: dict[str, dict[str, str]] = {}
        for t in node["tags"]:
            if t["column"] is not None:
                cols.setdefault(t["column"], {})[t["key"]] = t["value"]
        objects[node["fullName"]] = {"kind": kind, "owner": node["owner"], "comment": node["comment"], "tags": tags, "column_tags": cols,
                                     "timestamp_keys": node.get("timestampKeys") or [], "last_write": None}

    for catalog in paged(_CATALOGS):
        add(catalog, "CATALOG")
        for schema in paged(_SCHEMAS, catalog["fullName"]):
            add(schema, "SCHEMA")
            for table in paged(_TABLES, schema["fullName"]):
                add(table, "TABLE")
            for m in paged(_MODELS, schema["fullName"]):
                add(m, "MODEL")
                aliased |= {f"{m['fullName']}/{a['version']}" for a in m["aliases"]}
                for v in paged(_VERSIONS, m["fullName"]):
                    add(v, "MODEL_VERSION")
    if any(r.type == "freshness" for r in rules):
        for name, o in objects.items():
            if o["kind"] == "TABLE" and (o["timestamp_keys"] or "feature_table" in o["tags"]):
                hist = gql('{ table(name: "%s") { history(limit: 1) { timestamp } } }' % name)["table"]["history"]
                o["last_write"] = datetime.fromtimestamp(hist[0]["timestamp"] / 1000, tz=UTC) if hist else None
    kinds = {p["name"]: p["kind"] for p in paged(_PRINCIPALS)}
    grants: dict[str, dict[str, set[str]]] = {}
    direct: dict[str, dict[str, set[str]]] = {}
    for who in sorted({r.options["principal"] for r in rules if r.type == "access"} & set(kinds)):  # the rest are findings
        for name, o in objects.items():
            if o["kind"] not in ("TABLE", "MODEL"):
                continue
            field = "table" if o["kind"] == "TABLE" else "model"
            got = gql('{ x: %s(name: "%s") { effectivePrivileges(principal: "%s") { privilege } grants { principal privilege } } }' % (field, name, who))["x"]
            grants.setdefault(who, {})[name] = {e["privilege"] for e in got["effectivePrivileges"]}
            direct.setdefault(who, {})[name] = {g["privilege"] for g in got["grants"] if g["principal"] == who}
    table_edges = [(_node(e["source"], e["sourceKind"]), _node(e["target"], e["targetKind"])) for e in data["tableEdges"]]
    column_edges = [(e["source"], e["target"]) for e in data["columnEdges"]]
    return Snapshot(objects, kinds, table_edges, column_edges, aliased, grants, direct)
