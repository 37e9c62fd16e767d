"""`cairn audit` against a fixture lakehouse with known violations, through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import date, timedelta
from pathlib import Path

import pytest

from catalog.client import Metastore
from lineage.policy import PolicyError, load

ROOT = Path(__file__).resolve().parents[2]
# This checkout's CLI, whichever venv runs the tests (an installed `cairn` script may point at another checkout).
CAIRN = [sys.executable, "-m", "api.cli"]
FUTURE = (date.today() + timedelta(days=30)).isoformat()
PAST = (date.today() - timedelta(days=1)).isoformat()
COLS = [{"name": "user_id", "type": "bigint", "nullable": False}, {"name": "email", "type": "string"}]


@pytest.fixture(scope="module")
def lakehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("lake")
    ms = Metastore.open(home=home)
    ms.initialize("admin")
    a = ms.as_principal("admin")
    a.principals.create_group("data-eng")
    a.principals.create_service_principal("svc-serving")
    a.principals.create_service_principal("svc-ok")
    a.sql("CREATE CATALOG main COMMENT 'lake'; CREATE SCHEMA main.raw; CREATE SCHEMA main.features; CREATE SCHEMA main.ml; CREATE SCHEMA main.gold")
    for t in ("events", "users", "old"):
        a.tables.create_table(f"main.raw.{t}", COLS)
        a.tags.set_tags("table", f"main.raw.{t}", {"raw": "true"})
    a.tags.set_tags("table", "main.raw.users", {"pii": "true"}, column="email")
    a.tags.set_tags("table", "main.raw.old", {"deprecated": "true"})
    a.tables.create_table("main.features.user_features", [{"name": "user_id", "type": "bigint", "nullable": False},
                                                          {"name": "ts", "type": "timestamp", "nullable": False}, {"name": "spend", "type": "double"}],
                          primary_keys=["user_id", "ts"], timestamp_keys=["ts"])
    for t, tags in (("ts_good", {"training_set": "true", "point_in_time": "true"}), ("ts_bad", {"training_set": "true"})):
        a.tables.create_table(f"main.ml.{t}", COLS)
        a.tags.set_tags("table", f"main.ml.{t}", tags)
    for t in ("users_export", "approved", "legacy", "report"):
        a.tables.create_table(f"main.gold.{t}", COLS)
    a.tags.set_tags("table", "main.gold.approved", {"pii_approved": "legal-2026", "domain": "growth"})
    a.tables.update_table("main.gold.approved", comment="approved export")
    a.grants.transfer_ownership("table", "main.gold.approved", "data-eng")
    # lineage: raw -> features -> training sets -> models -> endpoints; PII into gold; a deprecated reader
    a.lineage.record(["main.raw.events"], ["main.features.user_features"])
    a.lineage.record(["main.features.user_features"], ["main.ml.ts_good", "main.ml.ts_bad"])
    a.lineage.record(["main.raw.users"], ["main.gold.users_export", "main.gold.approved"],
                     [{"source": "main.raw.users.email", "target": "main.gold.users_export.email"},
                      {"source": "main.raw.users.email", "target": "main.gold.approved.email"}])
    a.lineage.record(["main.gold.users_export"], ["main.gold.report"], [{"source": "main.gold.users_export.email", "target": "main.gold.report.email"}])
    a.lineage.record(["main.raw.old"], ["main.gold.legacy"])
    for model, ts in (("churn", "ts_good"), ("risk", "ts_bad")):
        a.models.create_registered_model(f"main.ml.{model}")
        a.models.create_model_version(f"main.ml.{model}", "file:///m")
        a.lineage.record([f"main.ml.{ts}"], [f"model:main.ml.{model}/1"])
    a.models.set_alias("main.ml.churn", "champion", 1)
    a.lineage.record(["model:main.ml.churn/1"], ["endpoint:churn-prod"])
    a.lineage.record(["model:main.ml.risk/1"], ["endpoint:risk-prod"])
    for who in ("svc-serving", "svc-ok"):
        a.grants.grant("catalog", "main", who, ["USE CATALOG", "USE SCHEMA"])
    for t in ("main.ml.ts_good", "main.features.user_features", "main.raw.events"):
        a.grants.grant("table", t, "svc-ok", "SELECT")
    a.grants.grant("model", "main.ml.churn", "svc-ok", "EXECUTE")
    a.grants.grant("table", "main.ml.ts_good", "svc-serving", "SELECT")      # missing the rest
    a.grants.grant("table", "main.gold.legacy", "svc-serving", "SELECT")     # beyond what it needs
    ms.close()
    return home


def audit(home: Path, policy: str, *args: str) -> subprocess.CompletedProcess[str]:
    path = home / f"policy-{abs(hash(policy))}.yml"
    path.write_text(policy)
    env = {**os.environ, "CAIRN_HOME": str(home), "CAIRN_PRINCIPAL": "admin"}
    env.pop("CAIRN_METASTORE_URL", None)
    return subprocess.run(cwd=ROOT, args=[*CAIRN, "audit", "--policy", str(path), "--format", "json", *args], capture_output=True, text=True, env=env, timeout=120)


def findings(res: subprocess.CompletedProcess[str]) -> dict[tuple[str, str], tuple[bool, str | None]]:
    data = json.loads(res.stdout)
    return {(f["rule"], f["object"]): (f["passed"], f["allowed_by"]) for f in data["findings"]}


POLICY = """
rules:
  - id: provenance
    type: provenance
  - id: pii
    type: pii
    targets: ["main.gold.*"]
    scope: {names: ["main.gold.*"]}
  - id: owners
    type: ownership
    scope: {names: ["main.gold.*"], kinds: [TABLE]}
    require_comment: true
    required_tags: [domain]
  - id: fresh
    type: freshness
    max_age_hours: 24
  - id: fresh-strict
    type: freshness
    severity: warning
    max_age_hours: 0.000001
  - id: serving-access
    type: access
    principal: svc-serving
    endpoint: churn-prod
  - id: ok-access
    type: access
    principal: svc-ok
    endpoint: churn-prod
  - id: deprecation
    type: deprecation
    scope: {names: ["main.*"]}
"""


def test_every_rule_passes_and_fails_where_it_should(lakehouse: Path) -> None:
    res = audit(lakehouse, POLICY)
    assert res.returncode == 1, res.stderr
    f = findings(res)
    assert f[("provenance", "main.ml.churn/1")] == (True, None)
    assert f[("provenance", "main.ml.risk/1")] == (False, None)  # behind an endpoint, trained without point-in-time lookups
    assert f[("pii", "main.gold.approved")] == (True, None)
    assert f[("pii", "main.gold.users_export")] == (False, None)
    assert f[("pii", "main.gold.report")] == (False, None)  # PII through column lineage, two hops
    assert f[("owners", "main.gold.approved")] == (True, None)
    assert f[("owners", "main.gold.users_export")] == (False, None)
    assert f[("fresh", "main.features.user_features")] == (True, None)
    assert f[("fresh-strict", "main.features.user_features")] == (False, None)
    assert f[("ok-access", "main.raw.events")] == (True, None)
    assert all(ok for (rule, _o), (ok, _a) in f.items() if rule == "ok-access")
    assert f[("serving-access", "main.raw.events")] == (False, None)  # missing SELECT
    assert f[("serving-access", "main.gold.legacy")] == (False, None)  # excess grant
    assert f[("deprecation", "main.gold.legacy")] == (False, None)
    assert f[("deprecation", "main.gold.report")] == (True, None)
    messages = {(x["rule"], x["object"]): x["message"] for x in json.loads(res.stdout)["findings"]}
    assert "not built with point-in-time" in messages[("provenance", "main.ml.risk/1")]
    assert "main.raw.users.email" in messages[("pii", "main.gold.report")]


def test_allowlists_waive_until_they_expire(lakehouse: Path) -> None:
    policy = f"""
rules:
  - id: pii
    type: pii
    targets: ["main.gold.*"]
    scope: {{names: ["main.gold.*"]}}
    allow:
      - {{object: "main.gold.users_export", reason: "legal review LR-12", expires: {FUTURE}}}
      - {{object: "main.gold.report", reason: "old waiver", expires: {PAST}}}
"""
    res = audit(lakehouse, policy)
    f = findings(res)
    assert f[("pii", "main.gold.users_export")] == (False, "legal review LR-12")
    assert f[("pii", "main.gold.report")] == (False, None)
    assert res.returncode == 1
    only_waived = policy.replace('      - {object: "main.gold.report", reason: "old waiver", expires: ' + PAST + "}\n", "").replace(
        'names: ["main.gold.*"]', 'names: ["main.gold.users_export"]')
    assert audit(lakehouse, only_waived).returncode == 0


def test_formats_and_exit_codes(lakehouse: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.xml"
    res = audit(lakehouse, POLICY, "--format", "junit", "--output", str(out))
    assert res.returncode == 1
    root = ET.parse(out).getroot()
    cases = root.findall(".//testcase")
    assert len(cases) == int(root.get("tests")) and any(c.find("failure") is not None for c in cases)
    assert {s.get("name") for s in root.findall("testsuite")} >= {"provenance", "pii", "owners", "fresh", "serving-access", "deprecation"}
    passing = "rules:\n  - id: ok\n    type: access\n    principal: svc-ok\n    endpoint: churn-prod\n"
    assert audit(lakehouse, passing).returncode == 0
    bad = audit(lakehouse, "rules:\n  - id: x\n    type: pii\n    allow:\n      - {object: a}\n")
    assert bad.returncode == 2 and "needs a 'reason'" in bad.stderr
    assert audit(lakehouse, "rules: []").returncode == 2
    (tmp_path / "nowhere").mkdir()
    missing = audit(tmp_path / "nowhere", passing)
    assert missing.returncode == 2 and f"no metastore at {tmp_path / 'nowhere'}" in missing.stderr
    assert [p.name for p in (tmp_path / "nowhere").iterdir()] == [p.name for p in (tmp_path / "nowhere").glob("policy-*.yml")]  # no metastore made


def test_policy_validation_messages() -> None:
    with pytest.raises(PolicyError, match="type must be one of"):
        load("rules:\n  - {id: a, type: nope}\n")
    with pytest.raises(PolicyError, match="freshness needs 'max_age_hours'"):
        load("rules:\n  - {id: a, type: freshness}\n")
    with pytest.raises(PolicyError, match="rule id 'a' repeats"):
        load("rules:\n  - {id: a, type: pii}\n  - {id: a, type: pii}\n")
    with pytest.raises(PolicyError, match="expires"):
        load("rules:\n  - id: a\n    type: pii\n    allow: [{object: x, reason: y, expires: soon}]\n")


def test_audit_diff_reports_impact_and_breaking_column_drops(lakehouse: Path, tmp_path: Path) -> None:
    base, head = tmp_path / "base", tmp_path / "head"
    for d in (base, head):
        (d / "sql").mkdir(parents=True)
    (base / "sql" / "export.sql").write_text("INSERT INTO main.gold.users_export SELECT user_id, email FROM main.raw.users")
    (head / "sql" / "export.sql").write_text("INSERT INTO main.gold.users_export SELECT user_id FROM main.raw.users")
    env = {**os.environ, "CAIRN_HOME": str(lakehouse), "CAIRN_PRINCIPAL": "admin"}
    env.pop("CAIRN_METASTORE_URL", None)
    run = lambda *a: subprocess.run(cwd=ROOT, args=[*CAIRN, "audit", "diff", *a], capture_output=True, text=True, env=env, timeout=120)  # noqa: E731
    res = run("--base", str(base), "--head", str(head), "--path", "sql", "--format", "json")
    assert res.returncode == 1, res.stderr
    report = json.loads(res.stdout)
    assert report["changed_files"] == ["export.sql"]
    assert report["breaking"] == [{"file": "export.sql", "column": "main.gold.users_export.email", "used_by": ["main.gold.report.email"]}]
    assert {t["node"] for t in report["touched"]} == {"main.gold.report"}
    assert run("--base", str(base), "--head", str(head), "--path", "sql", "--allow-breaking").returncode == 0
    (head / "sql" / "export.sql").write_text("INSERT INTO main.gold.users_export SELECT user_id, lower(email) AS email FROM main.raw.users")
    assert run("--base", str(base), "--head", str(head), "--path", "sql").returncode == 0
    # Fail closed: a --path that is not there is an error, not "nothing changed".
    missing = run("--base", str(base), "--head", str(head), "--path", "sqll")
    assert missing.returncode == 2 and "--path 'sqll' is not a folder" in missing.stderr


def test_audit_diff_fails_closed_when_the_catalog_cannot_answer(lakehouse: Path) -> None:
    """A refusal from the catalog (here: the acting principal does not exist) is not "nothing downstream"."""
    from catalog.errors import CairnError
    from lineage import ci

    ms = Metastore.open(home=lakehouse)
    try:
        with pytest.raises(CairnError) as err:
            ci.diff(ms.as_principal("ghost"), {"a.sql": "INSERT INTO main.gold.users_export SELECT email FROM main.raw.users"},
                    {"a.sql": "INSERT INTO main.gold.users_export SELECT user_id FROM main.raw.users"}, "databricks", None, None)
        assert err.value.code == "UNAUTHENTICATED"
    finally:
        ms.close()


def test_auditing_a_running_server_gives_the_same_findings(lakehouse: Path, live) -> None:  # type: ignore[no-untyped-def]
    from api.server import make_app

    ms = Metastore.open(home=lakehouse)
    token = ms.as_principal("admin").tokens.create_token()[0]
    with live(make_app(ms)) as url:
        remote = audit(lakehouse, POLICY, "--server", url, "--token", token)
        local = audit(lakehouse, POLICY)
        assert remote.returncode == local.returncode == 1, remote.stderr
        assert findings(remote) == findings(local)
        refused = audit(lakehouse, POLICY, "--server", url, "--token", "cairn_nope")
        assert refused.returncode == 2 and "refused the token" in refused.stderr
        down = audit(lakehouse, POLICY, "--server", "http://127.0.0.1:9", "--token", token)
        assert down.returncode == 2 and "cannot reach" in down.stderr
    ms.close()


def test_unknown_principals_and_objects_are_findings_not_an_unreachable_catalog(lakehouse: Path) -> None:
    policy = ("rules:\n  - id: serving\n    type: access\n    principal: svc-ghost\n    endpoint: churn-prod\n"
              "  - id: gold-docs\n    type: documentation\n    scope: {names: [main.gold.nope, 'main.silver.*']}\n")
    res = audit(lakehouse, policy)
    assert res.returncode == 1, res.stderr  # violations, not "unreachable catalog" (2)
    got = {(f["rule"], f["object"]): (f["passed"], f["severity"], f["message"]) for f in json.loads(res.stdout)["findings"]}
    assert got[("serving", "svc-ghost")] == (False, "error", "principal 'svc-ghost' does not exist")
    assert got[("gold-docs", "main.gold.nope")] == (False, "error", "object 'main.gold.nope' does not exist (or you may not see it)")
    assert got[("gold-docs", "main.silver.*")] == (False, "error", "no object matches 'main.silver.*'")


def test_a_rule_that_checks_nothing_warns_or_fails_on_request(lakehouse: Path) -> None:
    policy = "rules:\n  - id: nothing-here\n    type: documentation\n    scope: {tags: {no-such-tag: null}}\n"
    warned = audit(lakehouse, policy)
    assert warned.returncode == 0
    (finding,) = json.loads(warned.stdout)["findings"]
    assert (finding["object"], finding["severity"], finding["passed"]) == ("(nothing)", "warning", False)
    assert "checked nothing" in finding["message"]
    text = audit(lakehouse, policy, "--format", "text")
    assert text.stdout.startswith("cairn audit: 1 checks, 0 violations, 1 warnings, 0 allowed")
    failed = audit(lakehouse, policy, "--fail-on-empty")
    assert failed.returncode == 1 and json.loads(failed.stdout)["findings"][0]["severity"] == "error"
