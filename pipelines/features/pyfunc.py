"""Python feature function bodies, run in a restricted namespace.

A body (`return x * 2`) becomes `def f(params): body`, checked, then run with a fixed set of
builtins that cannot reach files, the network or other modules: no `open`, `__import__`, `exec`,
`eval`, `compile`, `getattr`, `globals`, `vars`, `input`, `breakpoint`, `help`, `type`... and
`math` as the only module. Refused before anything runs:
- `import` and `from ... import` statements;
- any name or attribute starting with an underscore (`x.__class__.__mro__` is how a restricted
  namespace is escaped in CPython: no dunder, no way to walk from an object to `os`);
- the attributes that reach a running frame without an underscore (a generator's `gi_frame`, a
  coroutine's `cr_frame`, a traceback's `tb_frame`, a frame's `f_back`/`f_globals`/`f_builtins`:
  from the caller's frame its module's `__builtins__` hands out `__import__`), and `format` /
  `format_map`, whose format strings walk attributes (`"{0.__class__}"`) the checker cannot see.

The limit: this is a namespace, not a process sandbox. A body can still loop forever or allocate
memory until the process suffers, and runs in the caller's process with the caller's rights on
the data it is handed (the bound columns). EXECUTE on the function is checked (and audited)
before it runs; grant it on Python functions whose owners the callers trust. Databricks runs such
bodies in an isolated sandbox; Cairn does not.
"""

from __future__ import annotations

import ast
import builtins
import math
from collections.abc import Callable
from typing import Any

from catalog.errors import InvalidArgument

_ALLOWED = ["abs", "all", "any", "ascii", "bin", "bool", "bytes", "callable", "chr", "complex", "dict", "divmod", "enumerate", "filter", "float", "format", "frozenset", "hash", "hex", "int", "isinstance", "issubclass", "iter", "len", "list", "map", "max", "min", "next", "oct", "ord", "pow", "range", "repr", "reversed", "round", "set", "slice", "sorted", "str", "sum", "tuple", "zip", "ArithmeticError", "AssertionError", "Exception", "IndexError", "KeyError", "LookupError", "OverflowError", "StopIteration", "TypeError", "ValueError", "ZeroDivisionError", "True", "False", "None"]
_FRAME_PREFIXES = ("gi_", "cr_", "ag_", "tb_", "f_")  # generator, coroutine, async generator, traceback, frame
_FORMATTERS = ("format", "format_map")
SAFE_BUILTINS: dict[str, Any] = {name: getattr(builtins, name) for name in _ALLOWED if hasattr(builtins, name)}


def check_body(function: str, source: str) -> ast.Module:
    """The parsed definition, or InvalidArgument naming what the body may not do."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise InvalidArgument(f"the body of {function} is not valid Python: {exc.msg} (line {exc.lineno})") from None
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            raise InvalidArgument(f"the body of {function} imports a module; feature functions may not import (math is provided)")
        name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else \
            node.name if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name != "__cairn_fn" else None
        if name is not None and name.startswith("_"):
            raise InvalidArgument(f"the body of {function} uses '{name}'; names starting with an underscore are not allowed")
        if isinstance(node, ast.Attribute) and (node.attr.startswith(_FRAME_PREFIXES) or node.attr in _FORMATTERS):
            raise InvalidArgument(f"the body of {function} uses '.{node.attr}'; frame, traceback and format-string attributes are not allowed")
        if isinstance(node, ast.arg) and node.arg.startswith("_"):
            raise InvalidArgument(f"{function} has a parameter '{node.arg}'; names starting with an underscore are not allowed")
    return tree


def compile_body(function: str, params: list[str], body: str) -> Callable[..., Any]:
    """The body as a function of `params`, checked and bound to the restricted namespace."""
    indented = "\n".join("    " + line for line in (body or "return None").splitlines())
    source = f"def __cairn_fn({', '.join(params)}):\n{indented}\n"
    tree = check_body(function, source)
    scope: dict[str, Any] = {"__builtins__": SAFE_BUILTINS, "math": math}
    exec(compile(tree, f"<{function}>", "exec"), scope)  # noqa: S102 - checked above; restricted builtins
    return scope["__cairn_fn"]
