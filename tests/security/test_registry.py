"""Attacks on the registry: gates, promotions, version tags and webhooks. Each refusal changes
nothing and leaves a DENIED audit row naming what was refused."""

from __future__ import annotations

import json

import pytest

from catalog.client import Cairn, Metastore
from catalog.errors import InvalidArgument, NotFound, PermissionDenied, PromotionRefused
from tests.security.conftest import denied_rows

SECRET = "a-webhook-secret-of-some-length"


@pytest.fixture
def reg(admin: Cairn, metastore: Metastore) -> Cairn:
    admin.catalogs.create_catalog("main")
    admin.schemas.create_schema("main.ml")
    admin.models.create_registered_model("main.ml.churn")
    v = admin.models.create_model_version("main.ml.churn", "file:///m", metrics={"auc": 0.5})
    admin.models.finalize_model_version("main.ml.churn", v.version)
    admin.models.set_gates("main.ml.churn", [{"kind": "metric", "metric": "auc", "threshold": 0.9}])
    admin.principals.create_user("eve")
    admin.grants.grant("catalog", "main", "eve", ["USE CATALOG", "USE SCHEMA"])
    admin.grants.grant("model", "main.ml.churn", "eve", ["EXECUTE", "APPLY TAG"])
    return admin


def test_gates_and_promotions_need_manage(reg: Cairn, metastore: Metastore) -> None:
    eve = metastore.as_principal("eve")
    with pytest.raises(PermissionDenied):
        eve.models.set_gates("main.ml.churn", [])
    with pytest.raises(PermissionDenied):
        eve.models.promote("main.ml.churn", "champion", 1)
    with pytest.raises(PermissionDenied):  # and no way around the gates: a bare alias needs MANAGE too
        eve.models.set_alias("main.ml.churn", "champion", 1)
    assert reg.models.get_gates("main.ml.churn")[0]["threshold"] == 0.9
    assert reg.models.get_registered_model("main.ml.churn").aliases == {}
    assert [e.action for e in denied_rows(reg, "eve")] == ["set_model_gates", "promote_model_version", "set_model_alias"]


def test_gate_records_and_approvals_cannot_be_forged(reg: Cairn, metastore: Metastore) -> None:
    eve = metastore.as_principal("eve")
    reg.principals.create_group("leads")
    reg.principals.create_user("lead")
    reg.principals.add_member("leads", "lead")
    reg.grants.grant("catalog", "main", "lead", ["USE CATALOG", "USE SCHEMA"])
    reg.grants.grant("model", "main.ml.churn", "lead", ["APPLY TAG"])
    reg.models.set_gates("main.ml.churn", [{"kind": "approval", "tag": "approved=yes", "group": "leads"}])
    # The registry's own tags cannot be written on any path: not gate results, not who set a tag.
    for attempt in (lambda: eve.models.set_model_version_tag("main.ml.churn", 1, "cairn.gate.champion.1", json.dumps({"passed": True})),
                    lambda: eve.models.set_model_version_tag("main.ml.churn", 1, "cairn.setter.approved", "lead"),
                    lambda: eve.tags.set_tags("model_version", "main.ml.churn/1", {"cairn.setter.approved": "lead"})):
        with pytest.raises(InvalidArgument, match="registry's own"):
            attempt()
    # A lead approves; eve then changes the value through the generic tag path or SQL: recorded as hers,
    # and she is not a lead.
    eve_sql = metastore.as_principal("eve")
    metastore.as_principal("lead").models.set_model_version_tag("main.ml.churn", 1, "approved", "no")
    for change in (lambda: eve.tags.set_tags("model_version", "main.ml.churn/1", {"approved": "yes"}),
                   lambda: eve_sql.sql("ALTER MODEL main.ml.churn VERSION 1 SET TAGS ('approved' = 'yes')"),
                   lambda: eve.models.set_model_version_tag("main.ml.churn", 1, "approved", "yes")):
        metastore.as_principal("lead").models.set_model_version_tag("main.ml.churn", 1, "approved", "no")
        change()
        with pytest.raises(PromotionRefused, match="set by eve, who is not a member of leads"):
            reg.models.promote("main.ml.churn", "champion", 1)
    with pytest.raises(InvalidArgument, match="registry's own"):
        eve_sql.sql("ALTER MODEL main.ml.churn VERSION 1 SET TAGS ('cairn.setter.approved' = 'lead')")
    assert reg.models.get_registered_model("main.ml.churn").aliases == {}
    # The lead approves through SQL: that is an approval.
    metastore.as_principal("lead").sql("ALTER MODEL main.ml.churn VERSION 1 SET TAGS ('approved' = 'yes')")
    assert reg.models.promote("main.ml.churn", "champion", 1)[0]["detail"] == "approved by lead (leads)"


def test_webhooks_need_manage_and_hide_their_secret(reg: Cairn, metastore: Metastore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAIRN_WEBHOOK_ALLOW_PRIVATE", "1")
    eve = metastore.as_principal("eve")
    with pytest.raises(PermissionDenied):
        eve.webhooks.create_webhook("spy", "https://example.com/h", ["model_version.created"], "main.ml.churn", SECRET)
    with pytest.raises(PermissionDenied):  # every model's events: admins only
        eve.webhooks.create_webhook("spy", "https://example.com/h", ["model_version.created"])
    hook = reg.webhooks.create_webhook("ops", "https://example.com/h", ["model_version.created"], "main.ml.churn", SECRET)
    assert eve.webhooks.list_webhooks() == [] and eve.webhooks.list_webhooks("main.ml.churn") == []
    for call in (lambda: eve.webhooks.get_webhook(hook.id), lambda: eve.webhooks.list_deliveries(hook.id),
                 lambda: eve.webhooks.update_webhook(hook.id, url="https://evil.example/"), lambda: eve.webhooks.delete_webhook(hook.id)):
        with pytest.raises(NotFound):
            call()
    assert reg.webhooks.get_webhook(hook.id).url == "https://example.com/h"
    assert [e.action for e in denied_rows(reg, "eve")] == ["create_webhook", "create_webhook", "get_webhook", "list_webhook_deliveries",
                                                           "update_webhook", "delete_webhook"]
    # The secret is nowhere to be read: not returned, not audited, not stored in the clear.
    assert SECRET not in repr(reg.webhooks.get_webhook(hook.id))
    assert all(SECRET not in json.dumps(e.parameters) for e in reg.audit.list_events(max_results=1000))
    with metastore.engine.connect() as conn:
        assert SECRET not in " ".join(str(r) for r in conn.exec_driver_sql("SELECT * FROM webhooks"))


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/h", "http://169.254.169.254/latest/meta-data", "http://10.0.0.5/h",
                                 "http://[::1]/h", "file:///etc/passwd", "http://user:pw@example.com/h", "gopher://example.com/"])
def test_webhooks_cannot_reach_into_the_servers_network(reg: Cairn, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CAIRN_WEBHOOK_ALLOW_PRIVATE", raising=False)
    with pytest.raises(InvalidArgument):
        reg.webhooks.create_webhook("x", url, ["model_version.created"], "main.ml.churn")
    assert reg.webhooks.list_webhooks() == []


def test_a_delivery_connects_only_to_the_address_it_checked(metastore: Metastore, monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS rebinding: a webhook host that resolved to a public address when checked must not be
    resolved again by the HTTP client (a TTL-0 name could then point at 127.0.0.1). The sender
    connects to the checked address itself: here a name that resolves nowhere still reaches it."""
    import http.server
    import threading

    from catalog.service.webhook_delivery import WebhookSender
    from catalog.store.registry import checked_address

    monkeypatch.delenv("CAIRN_WEBHOOK_ALLOW_PRIVATE", raising=False)
    assert checked_address("https://8.8.8.8/hook") == "8.8.8.8"
    with pytest.raises(InvalidArgument, match="private or loopback"):
        checked_address("http://127.0.0.1:9/hook")
    hosts: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            hosts.append(self.headers["Host"])
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        sender = WebhookSender(metastore)
        url = f"http://receiver.invalid:{port}/hook"  # .invalid never resolves (RFC 6761)
        assert sender._post(url, b"{}", {"Content-Type": "application/json"}, "127.0.0.1") == 204
        assert hosts == [f"receiver.invalid:{port}"]  # the request names the host; the socket went to the checked address
    finally:
        server.shutdown()
        server.server_close()
