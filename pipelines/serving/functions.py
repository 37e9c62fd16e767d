"""On-demand features at serving: the Python feature functions of a model's feature spec, computed
per request record from what the request carries and what the lookups found, as training and
`score_batch` compute them (pipelines/features/training.py, same restricted namespace).

EXECUTE on each function is checked (and audited) for the endpoint's owner when the model loads,
then renewed in the background every half `ttl_seconds`, like the online reader's SELECT: a revoked
grant stops the function within a second and the requests fail with its error. SQL feature
functions are refused at load (they run in DuckDB or Spark during training and `score_batch`; one
query per request would cost more than the model). A value present in the request overrides the
function's output, as it overrides a looked-up feature.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from catalog.errors import FailedPrecondition, InvalidArgument
from pipelines.features.pyfunc import compile_body
from pipelines.lease import Lease


class OnDemandFeatures:
    """The spec's functions, compiled: `apply(rows)` adds each function's output to each row."""

    def __init__(self, functions: list[dict[str, Any]], cairn: Any, ttl_seconds: float = 1.0) -> None:
        self.cairn, self.ttl = cairn, ttl_seconds
        self.names = [str(f.get("udf_name")) for f in functions]
        self.compiled: list[tuple[str, list[str], str, Callable[..., Any]]] = []  # (name, bound columns, output, body)
        for f in functions:
            fn = cairn.functions.authorize_execute(f["udf_name"])  # EXECUTE, audited
            if (fn.data_source_format or "SQL").upper() != "PYTHON":
                raise FailedPrecondition(f"the model's feature spec computes {fn.full_name}, a SQL function; serving computes Python "
                                         "feature functions only (SQL ones run in training and score_batch)")
            params = [c.name for c in fn.columns]
            bindings = {k.lower(): v.lower() for k, v in (f.get("input_bindings") or {}).items()}
            output = (f.get("output_name") or f["udf_name"].rsplit(".", 1)[-1]).lower()
            body = compile_body(fn.full_name, params, fn.routine_definition or "return None")
            self.compiled.append((fn.full_name, [bindings.get(p.lower(), p.lower()) for p in params], output, body))
        # EXECUTE renewed for the endpoint's owner (the first check was the loop above)
        self._lease = Lease(self._check, ttl_seconds if self.compiled else 0, "cairn-serving-functions", checked=True)

    def _check(self) -> None:
        for name in self.names:
            self.cairn.functions.authorize_execute(name)

    def close(self) -> None:
        self._lease.close()

    def apply(self, rows: list[dict[str, Any]]) -> None:
        """Compute every function for every row (lower-cased keys), in spec order, in place."""
        if not self.compiled:
            return
        self._lease.ensure()
        for i, row in enumerate(rows):
            for name, args, output, body in self.compiled:
                if output in row:  # given in the request: it overrides the function
                    continue
                try:
                    values = [row[a] for a in args]
                except KeyError:
                    missing = [a for a in args if a not in row]
                    raise InvalidArgument(f"record {i} lacks {missing} that feature function {name} takes") from None
                try:
                    row[output] = body(*values)
                except NameError as exc:
                    raise InvalidArgument(f"{name} failed on record {i}: {exc} (feature functions run with a restricted set of builtins)") from None
                except Exception as exc:
                    raise InvalidArgument(f"{name} failed on record {i}: {type(exc).__name__}: {exc}") from None
