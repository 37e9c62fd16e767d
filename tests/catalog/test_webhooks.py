"""Webhooks delivered to a real HTTP receiver on loopback: MLflow's payload and signature, retries
while the receiver is down, nothing lost when a sender is killed with SIGKILL."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from catalog.service.webhook_delivery import SenderConfig, WebhookSender

SECRET = "s3cret-s3cret-s3cret"


class Receiver:
    """A webhook receiver on 127.0.0.1 that verifies signatures and records deliveries by id."""

    def __init__(self, port: int | None = None, delay: float = 0.0) -> None:
        if port is None:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
        self.port, self.delay = port, delay
        self.got: list[dict] = []
        self.arrived = 0  # requests read, answered or not yet
        self.bad = 0
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        rec = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                rec.arrived += 1
                did, ts = self.headers["X-MLflow-Delivery-Id"], self.headers["X-MLflow-Timestamp"]
                want = "v1," + base64.b64encode(hmac.new(SECRET.encode(), f"{did}.{ts}.{body}".encode(), hashlib.sha256).digest()).decode()
                if rec.delay:
                    time.sleep(rec.delay)
                if not hmac.compare_digest(want, self.headers.get("X-MLflow-Signature", "")):
                    rec.bad += 1
                    self.send_response(401)
                else:
                    rec.got.append({"id": did, "body": json.loads(body), "at": time.time()})
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *a: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture(autouse=True)
def loopback(monkeypatch):
    monkeypatch.setenv("CAIRN_WEBHOOK_ALLOW_PRIVATE", "1")


@pytest.fixture
def reg(admin):
    admin.catalogs.create_catalog("main")
    admin.schemas.create_schema("main.ml")
    admin.models.create_registered_model("main.ml.churn")
    return admin


def drain(sender: WebhookSender, until, timeout: float = 20.0) -> None:
    end = time.time() + timeout
    while time.time() < end and not until():
        if not sender.run_once():
            time.sleep(0.05)


def test_events_are_signed_like_mlflow_and_retried_while_down(reg, metastore) -> None:
    rec = Receiver()  # not listening yet: connection refused
    hook = reg.webhooks.create_webhook("ops", rec.url, ["model_version.created", "model_version_alias.created", "registered_model.created",
                                                        "model_version_tag.set", "model_version_alias.deleted"],
                                       model="main.ml.churn", secret=SECRET)
    assert hook.has_secret and not hasattr(hook, "secret")
    with metastore.engine.connect() as conn:  # stored encrypted, not in the clear
        assert SECRET not in str(conn.exec_driver_sql("SELECT secret FROM webhooks").scalar())
    v = reg.models.create_model_version("main.ml.churn", "file:///m", run_id="r1")
    reg.models.finalize_model_version("main.ml.churn", v.version)
    reg.models.set_alias("main.ml.churn", "champion", 1)
    reg.models.set_model_version_tag("main.ml.churn", 1, "k", "v")
    reg.models.delete_alias("main.ml.churn", "champion")
    sender = WebhookSender(metastore, SenderConfig(base_backoff=0.05, max_backoff=0.2))
    try:
        for _ in range(3):
            sender.run_once()
            time.sleep(0.1)
        log = reg.webhooks.list_deliveries(hook.id)
        assert all(d.status == "PENDING" and d.attempts >= 1 and "ConnectionRefusedError" in (d.last_error or "") for d in log)
        rec.start()
        drain(sender, lambda: len(rec.got) >= 4)
    finally:
        sender.stop()
        rec.stop()
    assert rec.bad == 0
    bodies = [r["body"] for r in rec.got]
    assert sorted((b["entity"], b["action"]) for b in bodies) == sorted([
        ("model_version", "created"), ("model_version_alias", "created"), ("model_version_tag", "set"), ("model_version_alias", "deleted")])
    created = next(b for b in bodies if b["entity"] == "model_version")
    assert created["data"] == {"name": "main.ml.churn", "version": "1", "source": "file:///m", "run_id": "r1", "tags": {}, "description": None}
    log = reg.webhooks.list_deliveries(hook.id)
    assert {d.status for d in log} == {"DELIVERED"} and all(d.last_status == 200 and d.latency_ms is not None for d in log)
    assert sorted(d.delivery_id for d in log) == sorted(r["id"] for r in rec.got)


def test_refused_promotion_is_an_event(reg, metastore) -> None:
    rec = Receiver().start()
    reg.webhooks.create_webhook("all", rec.url, ["promotion.refused"], secret=SECRET)  # metastore-wide: admin
    reg.models.set_gates("main.ml.churn", [{"kind": "signature"}])
    v = reg.models.create_model_version("main.ml.churn", "file:///m")
    reg.models.finalize_model_version("main.ml.churn", v.version)
    with pytest.raises(Exception, match="signature present"):
        reg.models.promote("main.ml.churn", "champion", 1)
    sender = WebhookSender(metastore)
    try:
        drain(sender, lambda: len(rec.got) >= 1)
    finally:
        sender.stop()
        rec.stop()
    body = rec.got[0]["body"]
    assert (body["entity"], body["action"]) == ("promotion", "refused")
    assert body["data"]["results"][0]["passed"] is False and body["data"]["alias"] == "champion"


SENDER = """
import sys, time
from catalog.client import Metastore
from catalog.service.webhook_delivery import SenderConfig, WebhookSender
ms = Metastore.open(home=sys.argv[1])
s = WebhookSender(ms, SenderConfig(workers=4, batch=8, lease=1.0))
print("ready", flush=True)
s.run_forever()
"""


@pytest.mark.slow
def test_nothing_is_lost_when_a_sender_is_killed(reg, metastore, tmp_path: Path) -> None:
    if metastore.settings.metastore_url.startswith("postgresql"):
        pytest.skip("the subprocess opens the SQLite metastore by its home")
    rec = Receiver(delay=0.05).start()
    hook = reg.webhooks.create_webhook("ops", rec.url, ["model_version.created"], model="main.ml.churn", secret=SECRET)
    for _ in range(60):
        reg.models.create_model_version("main.ml.churn", "file:///m")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "CAIRN_WEBHOOK_ALLOW_PRIVATE": "1"}
    proc = subprocess.Popen([sys.executable, "-c", SENDER, str(metastore.settings.home)], env=env, stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == b"ready"
        end = time.time() + 30
        while len(rec.got) < 10 and time.time() < end:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)  # mid-batch: some rows are leased, some in flight
        proc.wait(10)
        assert 10 <= len({r["id"] for r in rec.got}) < 60
        sender = WebhookSender(metastore, SenderConfig(lease=1.0))
        try:
            drain(sender, lambda: len({r["id"] for r in rec.got}) >= 60, timeout=30)
        finally:
            sender.stop()
    finally:
        if proc.poll() is None:
            proc.kill()
        rec.stop()
    ids = {d.delivery_id for d in reg.webhooks.list_deliveries(hook.id, max_results=1000)}
    assert len(ids) == 60 and {r["id"] for r in rec.got} == ids  # none lost; any repeat carries the same id
    assert {r["body"]["data"]["version"] for r in rec.got} == {str(i) for i in range(1, 61)}


def test_a_receiver_back_gets_its_whole_backlog_on_the_pass_after_a_probe(reg, metastore) -> None:
    rec = Receiver()  # down
    hook = reg.webhooks.create_webhook("ops", rec.url, ["model_version.created"], model="main.ml.churn", secret=SECRET)
    for _ in range(30):
        reg.models.create_model_version("main.ml.churn", "file:///m")
    # Rows back off for a minute after a failure; the webhook itself is probed again at once.
    sender = WebhookSender(metastore, SenderConfig(base_backoff=60.0, max_backoff=60.0, probe_max=0.0))
    try:
        assert sender.run_once() == 30  # every row fails: connection refused
        assert sender.run_once() == 1  # the webhook rests: one row probes it
        rec.start()
        assert sender.run_once() == 1 and len(rec.got) == 1  # the probe gets through ...
        assert sender.run_once() == 29  # ... and the backlog goes now, not a minute later
    finally:
        sender.stop()
        rec.stop()
    log = reg.webhooks.list_deliveries(hook.id)
    assert len(log) == 30 and {d.status for d in log} == {"DELIVERED"} and len({r["id"] for r in rec.got}) == 30


def test_version_tags_set_through_the_tag_service_and_sql_are_events_too(reg, metastore) -> None:
    rec = Receiver().start()
    hook = reg.webhooks.create_webhook("tags", rec.url, ["model_version_tag.set", "model_version_tag.deleted"], model="main.ml.churn",
                                       secret=SECRET)
    v = reg.models.create_model_version("main.ml.churn", "file:///m")
    reg.models.finalize_model_version("main.ml.churn", v.version)
    reg.tags.set_tags("model_version", "main.ml.churn/1", {"team": "growth", "tier": "gold"})  # the generic tag service
    reg.sql("ALTER MODEL main.ml.churn VERSION 1 SET TAGS ('stage' = 'qa')")
    reg.sql("ALTER MODEL main.ml.churn VERSION 1 UNSET TAGS ('tier', 'never-set')")  # a key not set: ignored, no event
    reg.tags.unset_tags("model_version", "main.ml.churn/1", ["team"])
    reg.sql("ALTER MODEL main.ml.churn SET TAGS ('domain' = 'churn')")  # the registered model's: MLflow has no such event
    with pytest.raises(Exception, match="registry's own"):  # refused: nothing written, nothing announced
        reg.tags.set_tags("model_version", "main.ml.churn/1", {"ok": "1", "cairn.gate.x": "passed"})
    sender = WebhookSender(metastore)
    try:
        drain(sender, lambda: len(rec.got) >= 5)
        sender.run_once()
    finally:
        sender.stop()
        rec.stop()
    assert rec.bad == 0
    got = sorted((r["body"]["entity"], r["body"]["action"], json.dumps(r["body"]["data"], sort_keys=True)) for r in rec.got)
    assert got == sorted([
        ("model_version_tag", "set", json.dumps({"name": "main.ml.churn", "version": "1", "key": "team", "value": "growth"}, sort_keys=True)),
        ("model_version_tag", "set", json.dumps({"name": "main.ml.churn", "version": "1", "key": "tier", "value": "gold"}, sort_keys=True)),
        ("model_version_tag", "set", json.dumps({"name": "main.ml.churn", "version": "1", "key": "stage", "value": "qa"}, sort_keys=True)),
        ("model_version_tag", "deleted", json.dumps({"name": "main.ml.churn", "version": "1", "key": "tier"}, sort_keys=True)),
        ("model_version_tag", "deleted", json.dumps({"name": "main.ml.churn", "version": "1", "key": "team"}, sort_keys=True)),
    ])
    assert len(reg.webhooks.list_deliveries(hook.id)) == 5
    tags = reg.models.get_model_version_tags("main.ml.churn", 1)
    assert tags == {"stage": "qa", "cairn.setter.stage": "admin"}  # who set it is kept, as the registry's tag API keeps it


def test_a_slow_receiver_holds_one_worker_not_the_other_webhooks(reg, metastore) -> None:
    slow, fast = Receiver(delay=5.0).start(), Receiver().start()
    reg.models.create_registered_model("main.ml.other")
    reg.webhooks.create_webhook("slow", slow.url, ["model_version.created"], model="main.ml.churn", secret=SECRET)
    reg.webhooks.create_webhook("fast", fast.url, ["model_version.created"], model="main.ml.other", secret=SECRET)
    sender = WebhookSender(metastore, SenderConfig(timeout=20.0)).start()
    try:
        reg.models.create_model_version("main.ml.churn", "file:///m")
        end = time.time() + 20
        while slow.arrived < 1 and time.time() < end:
            time.sleep(0.02)
        for _ in range(5):  # while the slow receiver sits on its request
            reg.models.create_model_version("main.ml.other", "file:///m")
        while len(fast.got) < 5 and time.time() < end:
            time.sleep(0.02)
        assert len(fast.got) == 5 and slow.got == []  # delivered past the slow one, which has not answered yet
        while len(slow.got) < 1 and time.time() < end + 10:
            time.sleep(0.05)
    finally:
        sender.stop()
        slow.stop()
        fast.stop()
    assert [r["body"]["data"]["name"] for r in slow.got] == ["main.ml.churn"] and slow.bad == fast.bad == 0
