"""Send OpenLineage events for the runs Cairn performs to a configured consumer (Marquez, ...).

Configured by `CAIRN_OPENLINEAGE_URL` (the consumer's base URL; events go to `/api/v1/lineage`)
and optionally `CAIRN_OPENLINEAGE_API_KEY`. Emission happens after the run's change is
committed and never fails it: a consumer that is down costs a logged warning, not a lost write.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from typing import Any

log = logging.getLogger("cairn.openlineage")


def configured() -> bool:
    return bool(os.environ.get("CAIRN_OPENLINEAGE_URL"))


def emit(event: dict[str, Any], timeout: float = 5.0) -> bool:
    """POST one event; True when the consumer accepted it."""
    base = os.environ.get("CAIRN_OPENLINEAGE_URL")
    if not base:
        return False
    headers = {"Content-Type": "application/json"}
    key = os.environ.get("CAIRN_OPENLINEAGE_API_KEY")
    if key:
        headers["Authorization"] = f"Bearer {key}"
    if not base.startswith(("http://", "https://")):
        return False  # only http(s): never file: or a custom scheme
    req = urllib.request.Request(f"{base.rstrip('/')}/api/v1/lineage", json.dumps(event).encode(), headers, method="POST")  # noqa: S310 - scheme checked above
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - scheme checked above
            return 200 <= resp.status < 300
    except Exception as exc:  # the consumer's trouble must not become the writer's
        log.warning("could not send OpenLineage event for run %s to %s: %s", event.get("run", {}).get("runId"), base, exc)
        return False
