"""Registry benchmark: webhook delivery through an outage, and the cost of a gated promotion.

Webhooks: N registry events (model versions created) are written to the outbox while the receiver
(a real HTTP server on 127.0.0.1 that verifies every signature and dedupes on the delivery id) is
down; it comes up after D seconds. Reported: events lost, duplicate deliveries past the delivery id
(repeats a receiver would drop), and the delay of each delivery after the receiver came up (p50,
p99, max). Targets: 0 lost, 0 duplicates, p99 <= 1 s (full run: 1,000 events, 10 s down).
The sender runs with its defaults (rows back off up to 30 s): a webhook it cannot reach is probed
with one row at most `probe_max` (0.25 s) apart, backoff or not, and its whole backlog goes once a
probe gets through. The receiver listens with a backlog of 128, as real servers do. The receiver runs in a process of its own.

Promotion: a promotion through four gates (metric, beats the holder, signature, tag), embedded on
SQLite; target <= 20 ms. Prints one JSON object.

    python benchmarks/registry.py [--quick]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import multiprocessing
import os
import socket
import statistics
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from catalog.client import Metastore
from catalog.service.webhook_delivery import SenderConfig, WebhookSender

SECRET = "benchmark-secret-0123456789"


def receiver(port: int, log: str) -> None:
    """The receiver, in a process of its own (as a real one is): verifies each signature, dedupes on
    the delivery id, and appends `id time` (or `dup id` / `bad`) per request to `log`."""
    seen: set[str] = set()
    out = open(log, "a", buffering=1)  # noqa: SIM115 - open for the life of the process

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real receivers do

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            did, ts = self.headers["X-MLflow-Delivery-Id"], self.headers["X-MLflow-Timestamp"]
            want = "v1," + base64.b64encode(hmac.new(SECRET.encode(), f"{did}.{ts}.{body}".encode(), hashlib.sha256).digest()).decode()
            if not hmac.compare_digest(want, self.headers.get("X-MLflow-Signature", "")):
                out.write("bad\n")
                self.send_response(401)
            else:
                out.write(f"dup {did}\n" if did in seen else f"{did} {time.time()}\n")
                seen.add(did)
                self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        # socketserver listens with a backlog of 5: 16 senders connecting at once overflow it, the
        # kernel drops their SYNs and they retry a second later. Real servers listen with 128 or more.
        request_queue_size = 128

    srv = Server(("127.0.0.1", port), Handler)
    out.write(f"up {time.time()}\n")
    srv.serve_forever()


def read_log(log: Path) -> tuple[dict[str, float], list[str], int, float | None]:
    got: dict[str, float] = {}
    dups: list[str] = []
    bad, up = 0, None
    for line in log.read_text().splitlines() if log.exists() else []:
        parts = line.split()
        if parts[0] == "up":
            up = float(parts[1])
        elif parts[0] == "bad":
            bad += 1
        elif parts[0] == "dup":
            dups.append(parts[1])
        elif len(parts) == 2:
            got[parts[0]] = float(parts[1])
    return got, dups, bad, up


def webhooks(home: Path, events: int, down: float) -> dict[str, object]:
    os.environ["CAIRN_WEBHOOK_ALLOW_PRIVATE"] = "1"
    ms = Metastore.open(home=home)
    ms.initialize("admin")
    c = ms.as_principal("admin")
    c.catalogs.create_catalog("main")
    c.schemas.create_schema("main.ml")
    c.models.create_registered_model("main.ml.churn")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    hook = c.webhooks.create_webhook("bench", f"http://127.0.0.1:{port}/hook", ["model_version.created"], "main.ml.churn", SECRET)
    sender = WebhookSender(ms, SenderConfig()).start()  # the defaults `cairn serve` runs with
    t0 = time.time()
    for _ in range(events):
        c.models.create_model_version("main.ml.churn", "file:///m")
    enqueue_s = time.time() - t0
    time.sleep(max(0.0, down - (time.time() - t0)))
    log_path = home / "receiver.log"
    proc = multiprocessing.get_context("spawn").Process(target=receiver, args=(port, str(log_path)), daemon=True)
    proc.start()
    deadline = time.time() + 60
    got: dict[str, float] = {}
    while len(got) < events and time.time() < deadline:
        time.sleep(0.05)
        got, dups, bad, up = read_log(log_path)
    sender.stop()
    proc.terminate()
    proc.join(5)
    got, dups, bad, up = read_log(log_path)
    up_at = up if up is not None else time.time()  # the moment the receiver listens
    log = c.webhooks.list_deliveries(hook.id, None, 1000)
    ids = {d.delivery_id for d in log}
    while len(log) == 1000:
        log = c.webhooks.list_deliveries(hook.id, log[-1].cursor, 1000)
        ids |= {d.delivery_id for d in log}
    delays = sorted(max(0.0, at - up_at) for at in got.values())
    ms.close()
    return {
        "events": events, "receiver_down_s": down, "enqueue_ms_per_event": round(enqueue_s / events * 1000, 3),
        "delivered": len(got), "lost": len(ids - set(got)), "duplicates_past_delivery_id": len(dups), "bad_signatures": bad,
        "delay_after_up_p50_s": round(statistics.median(delays), 3) if delays else None,
        "delay_after_up_p99_s": round(delays[int(len(delays) * 0.99) - 1 if len(delays) > 1 else 0], 3) if delays else None,
        "delay_after_up_max_s": round(delays[-1], 3) if delays else None,
        "all_delivered_after_up_s": round(max(got.values()) - up_at, 3) if got else None,
    }


def promotion(home: Path, n: int) -> dict[str, object]:
    ms = Metastore.open(home=home)
    ms.initialize("admin")
    c = ms.as_principal("admin")
    c.catalogs.create_catalog("main")
    c.schemas.create_schema("main.ml")
    c.models.create_registered_model("main.ml.churn")
    sig = {"inputs": "[]", "outputs": "[]"}
    for auc in (0.80, 0.90):
        v = c.models.create_model_version("main.ml.churn", "file:///m", run_id="r", signature=sig, metrics={"auc": auc})
        c.models.finalize_model_version("main.ml.churn", v.version)
        c.models.set_model_version_tag("main.ml.churn", v.version, "validated", "true")
    c.models.set_gates("main.ml.churn", [{"kind": "metric", "metric": "auc", "threshold": 0.75}, {"kind": "beats_current", "metric": "auc", "margin": 0.01},
                                         {"kind": "signature"}, {"kind": "tags", "tag": "validated=true"}])
    c.models.promote("main.ml.churn", "champion", 1)
    times = []
    for i in range(n):
        alias = f"a{i}"  # a fresh alias each time: the holder comparison runs, the promotion passes
        c.models.set_alias("main.ml.churn", alias, 1)
        t = time.perf_counter()
        c.models.promote("main.ml.churn", alias, 2)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    ms.close()
    return {"promotions": n, "gates": 4, "p50_ms": round(statistics.median(times), 2), "p99_ms": round(times[int(n * 0.99) - 1], 2),
            "target_ms": 20}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="200 events, 3 s down, 100 promotions (< 30 s)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        hooks = webhooks(Path(tmp) / "hooks", 200 if args.quick else 1000, 3.0 if args.quick else 10.0)
        promo = promotion(Path(tmp) / "promo", 100 if args.quick else 500)
    ok = hooks["lost"] == 0 and hooks["duplicates_past_delivery_id"] == 0 and (hooks["delay_after_up_p99_s"] or 0) <= 1.0 and promo["p99_ms"] <= 20
    print(json.dumps({"benchmark": "registry", "quick": args.quick, "webhooks": hooks, "gated_promotion": promo, "targets_met": ok}))


if __name__ == "__main__":
    main()
