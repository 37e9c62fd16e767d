"""Prometheus metrics of the API server: request counts and a latency histogram per route, plus
the totals of errors (5xx) and denials (401, 403). Served at /metrics."""

from __future__ import annotations

import threading
from collections import defaultdict


class Metrics:
    """Prometheus counters and a latency histogram, per route."""

    BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.latency: dict[str, list[int]] = defaultdict(lambda: [0] * (len(self.BUCKETS) + 1))
        self.latency_sum: dict[str, float] = defaultdict(float)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        with self.lock:
            self.requests[(route, method, status)] += 1
            buckets = self.latency[route]
            for i, b in enumerate(self.BUCKETS):
                if seconds <= b:
                    buckets[i] += 1
            buckets[-1] += 1
            self.latency_sum[route] += seconds

    def render(self) -> str:
        out = ["# TYPE cairn_requests_total counter"]
        with self.lock:
            for (route, method, status), n in sorted(self.requests.items()):
                out.append(f'cairn_requests_total{{route="{route}",method="{method}",status="{status}"}} {n}')
            errors = sum(n for (_r, _m, s), n in self.requests.items() if s >= 500)
            denials = sum(n for (_r, _m, s), n in self.requests.items() if s in (401, 403))
            out += ["# TYPE cairn_errors_total counter", f"cairn_errors_total {errors}",
                    "# TYPE cairn_denials_total counter", f"cairn_denials_total {denials}",
                    "# TYPE cairn_request_seconds histogram"]
            for route, buckets in sorted(self.latency.items()):
                for b, n in zip(self.BUCKETS, buckets):
                    out.append(f'cairn_request_seconds_bucket{{route="{route}",le="{b}"}} {n}')
                out.append(f'cairn_request_seconds_bucket{{route="{route}",le="+Inf"}} {buckets[-1]}')
                out.append(f'cairn_request_seconds_sum{{route="{route}"}} {self.latency_sum[route]:.6f}')
                out.append(f'cairn_request_seconds_count{{route="{route}"}} {buckets[-1]}')
        return "\n".join(out) + "\n"
