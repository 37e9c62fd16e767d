"""Traversal over the lineage graph: a per-process, in-memory CSR copy of the edge table.

Edges are append-only, so the copy follows the database by edge id: each query first reads edges
past its high-water mark (usually none). New edges land in a small overlay that is folded into the
compressed arrays when it grows. Breadth-first search runs level by level on numpy arrays, so a
closure of 100,000 nodes costs a few vectorized steps rather than 100,000 Python iterations.
Directed, cycle-safe (a node is visited once), and filterable by time (edges created after the
as-of instant are ignored), by level (table or column edges) and by depth.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from lineage.store import LineageStore

KINDS = {"DATASET": 0, "COLUMN": 1}
_OVERLAY_MAX = 50_000


def _micros(ts: datetime) -> int:
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return int(ts.timestamp() * 1_000_000)


@dataclass
class Traversal:
    """Nodes reached, each with its depth and its parent on one shortest path back to the start."""

    start: int
    depth: dict[int, int] = field(default_factory=dict)
    parent: dict[int, int] = field(default_factory=dict)
    truncated: bool = False

    def path_to(self, node: int) -> list[int]:
        path = [node]
        while path[-1] != self.start:
            path.append(self.parent[path[-1]])
        return path[::-1]


class _Csr:
    """Compressed adjacency: the neighbours of node v are nbr[ptr[v]:ptr[v + 1]]."""

    def __init__(self, n: int, src: np.ndarray, dst: np.ndarray, ts: np.ndarray, kind: np.ndarray) -> None:
        order = np.argsort(src, kind="stable")
        counts = np.bincount(src, minlength=n)[:n] if len(src) else np.zeros(n, np.int64)
        self.ptr = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        self.nbr = dst[order]
        self.ts = ts[order]
        self.kind = kind[order]


class LineageGraph:
    """Shared by every request of a process; thread-safe for readers and the syncing writer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.last_id = 0
        self.n = 1
        self._cols: dict[str, list[np.ndarray]] = {"src": [], "dst": [], "ts": [], "kind": []}
        self.fwd: _Csr | None = None
        self.bwd: _Csr | None = None
        # Edges newer than the arrays: node -> [(neighbour, created_us, kind)]
        self.over_fwd: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
        self.over_bwd: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
        self.over_count = 0

    def sync(self, store: LineageStore) -> None:
        with self._lock:
            rows = store.edges_after(self.last_id)
            while rows:
                if self.fwd is None or len(rows) > _OVERLAY_MAX:
                    self._append_arrays(rows)
                else:
                    for _id, src, dst, k, t in rows:
                        self.over_fwd[src].append((dst, t, k))
                        self.over_bwd[dst].append((src, t, k))
                        self.n = max(self.n, src + 1, dst + 1)
                    self.over_count += len(rows)
                self.last_id = rows[-1][0]
                rows = store.edges_after(self.last_id)
            if self.over_count > _OVERLAY_MAX:
                self._fold_overlay()
            if self.fwd is None:
                self._rebuild()

    def _append_arrays(self, rows: list[tuple[int, int, int, int, int]]) -> None:
        table = np.array(rows, dtype=np.int64)
        src, dst, kind, ts = table[:, 1], table[:, 2], table[:, 3].astype(np.int8), table[:, 4]
        for key, arr in (("src", src), ("dst", dst), ("ts", ts), ("kind", kind)):
            self._cols[key].append(arr)
        self.n = max(self.n, int(src.max()) + 1, int(dst.max()) + 1)
        self.fwd = None

    def _fold_overlay(self) -> None:
        rows_src, rows_dst, rows_ts, rows_kind = [], [], [], []
        for s, lst in self.over_fwd.items():
            for d, t, k in lst:
                rows_src.append(s)
                rows_dst.append(d)
                rows_ts.append(t)
                rows_kind.append(k)
        self._cols["src"].append(np.array(rows_src, np.int64))
        self._cols["dst"].append(np.array(rows_dst, np.int64))
        self._cols["ts"].append(np.array(rows_ts, np.int64))
        self._cols["kind"].append(np.array(rows_kind, np.int8))
        self.over_fwd.clear()
        self.over_bwd.clear()
        self.over_count = 0
        self._rebuild()

    def _rebuild(self) -> None:
        cat = {k: (np.concatenate(v) if v else np.zeros(0, np.int64 if k != "kind" else np.int8)) for k, v in self._cols.items()}
        self._cols = {k: [a] for k, a in cat.items()}
        self.fwd = _Csr(self.n, cat["src"], cat["dst"], cat["ts"], cat["kind"])
        self.bwd = _Csr(self.n, cat["dst"], cat["src"], cat["ts"], cat["kind"])

    # queries -------------------------------------------------------------------------------
    def traverse(
        self,
        start: int,
        downstream: bool = True,
        level: str = "DATASET",
        max_depth: int = 20,
        as_of: datetime | None = None,
        limit: int = 100_000,
        stop_at: int | None = None,
    ) -> Traversal:
        """Breadth-first closure from `start`; `truncated` says whether depth or `limit` cut it."""
        csr = self.fwd if downstream else self.bwd
        overlay = self.over_fwd if downstream else self.over_bwd
        kind = KINDS[level]
        cutoff = _micros(as_of) if as_of else None
        result = Traversal(start)
        n = max(self.n, start + 1)
        visited = np.zeros(n, dtype=bool)
        visited[start] = True
        frontier = np.array([start], dtype=np.int64)
        depth = 0
        while len(frontier):
            if depth == max_depth:
                result.truncated = bool(self._has_unvisited(csr, overlay, frontier, visited, kind, cutoff))
                break
            depth += 1
            nbr, par = self._expand(csr, overlay, frontier, kind, cutoff)
            if not len(nbr):
                break
            fresh = ~visited[nbr]
            nbr, par = nbr[fresh], par[fresh]
            nbr, first = np.unique(nbr, return_index=True)
            par = par[first]
            room = limit - len(result.depth)
            if len(nbr) > room:
                nbr, par = nbr[:room], par[:room]
                result.truncated = True
            visited[nbr] = True
            result.depth.update(dict.fromkeys(nbr.tolist(), depth))
            result.parent.update(zip(nbr.tolist(), par.tolist()))
            if result.truncated or (stop_at is not None and stop_at in result.depth):
                break
            frontier = nbr
        return result

    def _expand(self, csr: _Csr | None, overlay: dict, frontier: np.ndarray, kind: int, cutoff: int | None) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[type-arg]
        parts_n, parts_p = [], []
        if csr is not None and len(csr.nbr):
            f = frontier[frontier < len(csr.ptr) - 1]
            starts, ends = csr.ptr[f], csr.ptr[f + 1]
            counts = ends - starts
            total = int(counts.sum())
            if total:
                offsets = np.repeat(starts - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
                idx = np.arange(total, dtype=np.int64) + offsets
                mask = csr.kind[idx] == kind
                if cutoff is not None:
                    mask &= csr.ts[idx] <= cutoff
                parts_n.append(csr.nbr[idx][mask])
                parts_p.append(np.repeat(f, counts)[mask])
        if overlay:
            extra_n, extra_p = [], []
            members = frontier.tolist()
            if len(members) > len(overlay):
                wanted = set(members)
                members = [k for k in overlay if k in wanted]
            for node in members:
                for d, t, k in overlay.get(node, ()):
                    if k == kind and (cutoff is None or t <= cutoff):
                        extra_n.append(d)
                        extra_p.append(node)
            if extra_n:
                parts_n.append(np.array(extra_n, np.int64))
                parts_p.append(np.array(extra_p, np.int64))
        if not parts_n:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(parts_n), np.concatenate(parts_p)

    def _has_unvisited(self, csr, overlay, frontier, visited, kind, cutoff) -> bool:  # type: ignore[no-untyped-def]
        nbr, _ = self._expand(csr, overlay, frontier, kind, cutoff)
        nbr = nbr[nbr < len(visited)]
        return bool(len(nbr) and (~visited[nbr]).any())

    def shortest_path(self, source: int, target: int, level: str = "DATASET", as_of: datetime | None = None, max_depth: int = 50) -> list[int] | None:
        """The shortest directed path from source to target, or None."""
        if source == target:
            return [source]
        t = self.traverse(source, True, level, max_depth, as_of, limit=10_000_000, stop_at=target)
        return t.path_to(target) if target in t.depth else None
