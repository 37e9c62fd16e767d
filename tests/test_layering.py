"""The import contract: modules import only from their own layer or below, never in a circle.

    names, errors, privileges, pure SQL and OpenLineage helpers
    → entities → stores (and the lineage recorder) → authorization and the lineage graph cache
    → runtime and unit of work → catalog and lineage services (none imports another's module)
    → the services bound to a principal (catalog/services.py) → the SQL shim
    → the facade (catalog/client.py: services + SQL) → api | pipelines

api/ and pipelines/ never import a service's module or a store (catalog.service.*, catalog.store.*):
they ask the facade.

Imports inside functions count; imports under `if TYPE_CHECKING:` do not (they never run).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("catalog", "lineage", "api", "pipelines")
LAYERS = [
    r"catalog\.(names|errors|privileges|config|policies|relations|storage|jobspec)|lineage\.(sql(\..+)?|openlineage|emit|policy)",
    r"catalog\.(entities|paging)",
    r"catalog\.store(\..+)?|catalog\.delta|lineage\.(store|recording)",
    r"catalog\.authz|lineage\.graph",
    r"catalog\.runtime|catalog\.service\.(base|common)",
    r"catalog\.service\.\w+|lineage\.service",
    r"catalog\.services",
    r"catalog\.sql(\..+)?",
    r"catalog\.client",
    r"api(\..+)?|pipelines(\..+)?|lineage\.ci",
]
SERVICES = 5
# Transports (api/, pipelines/) reach the catalog through the facade (catalog.client) and what it
# hands out (entities, errors, names, paging), never through a service's module or a store.
TRANSPORTS = r"api(\..+)?|pipelines(\..+)?"
INTERNALS = r"catalog\.(service|store)(\..+)?|lineage\.(service|store|recording)"
# Known imports of service internals by pipelines/ (owned by the pipelines work): shrink, never grow.
KNOWN_INTERNAL = {
    ("pipelines.spark", "catalog.service.data"),
    ("pipelines.features.training", "catalog.service.data"),
    ("pipelines.features.engine", "catalog.service.data"),
    ("pipelines.features.online", "catalog.service.data"),
    ("pipelines.features.spark_engine", "catalog.service.data"),
    ("pipelines.churn.refresh_state", "catalog.service.data"),
}


def modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = path
    return out


def imports(path: Path, module: str, known: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text())
    skipped = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
               for stmt in node.body for n in ast.walk(stmt)}
    out = set()
    for node in ast.walk(tree):
        if id(node) in skipped or not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            base = node.module or ""
            if node.level:
                parts = module.split(".")[: len(module.split(".")) - node.level + (1 if path.name == "__init__.py" else 0)]
                base = ".".join([*parts, *([base] if base else [])])
            # `from pkg import module` runs the package's __init__ too: both count.
            names = [base, *(f"{base}.{a.name}" for a in node.names)]
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module and name not in PACKAGES:
                out.add(name)
    return out


def layer(module: str) -> int | None:
    return next((i for i, pattern in enumerate(LAYERS) if re.fullmatch(pattern, module)), None)


def graph() -> dict[str, set[str]]:
    known = modules()
    return {m: imports(p, m, known) for m, p in known.items()}


def test_every_module_has_a_layer() -> None:
    assert [m for m in graph() if m not in PACKAGES and layer(m) is None] == []


def test_imports_point_down() -> None:
    wrong = []
    for module, targets in graph().items():
        for target in targets:
            a, b = layer(module), layer(target)
            if a is None or b is None:
                continue
            if b > a:
                wrong.append(f"{module} (layer {a}) imports {target} (layer {b})")
            elif a == b == SERVICES:
                wrong.append(f"service {module} imports service {target}: move what they share down a layer")
    assert wrong == []


def test_transports_use_the_facade_not_service_internals() -> None:
    found = {(module, target) for module, targets in graph().items() if re.fullmatch(TRANSPORTS, module)
             for target in targets if re.fullmatch(INTERNALS, target)}
    assert sorted(found - KNOWN_INTERNAL) == []


def test_no_import_cycles() -> None:
    import networkx as nx

    g = nx.DiGraph([(m, t) for m, ts in graph().items() for t in ts])
    assert [sorted(c) for c in nx.simple_cycles(g)] == []
