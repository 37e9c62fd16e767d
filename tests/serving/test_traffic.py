"""Canary splits, pinning, a version switch under load with zero failures, scale to zero and back."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from api.server import make_app
from catalog.client import Metastore
from tests.serving.conftest import auth, entities

pytestmark = pytest.mark.slow
ROW = {"dataframe_records": [{f"f{i}": 0.5 for i in range(5)}]}


def test_split_proportions_pinning_and_metrics_per_entity(server: str, world: dict[str, Any]) -> None:
    token, vs = world["token"], world["versions"]
    config = {"served_entities": entities(("a", vs["plain"]), ("b", vs["shifted"])),
              "traffic_config": {"routes": [{"served_model_name": "a", "traffic_percentage": 80},
                                            {"served_model_name": "b", "traffic_percentage": 20}]}}
    r = httpx.post(f"{server}/api/2.0/serving-endpoints", json={"name": "canary", "config": config}, headers=auth(token))
    assert r.status_code == 200, r.text
    seen: Counter[str] = Counter()
    with httpx.Client(headers=auth(token)) as c:
        for _ in range(1000):
            r = c.post(f"{server}/serving-endpoints/canary/invocations", json=ROW)
            assert r.status_code == 200
            seen[r.headers["served-entity"]] += 1
            # the answer matches the entity that says it answered: b predicts about 100 more
            assert (r.json()["predictions"][0] > 50) == (r.headers["served-entity"] == "b")
        assert 740 <= seen["a"] <= 860 and seen["a"] + seen["b"] == 1000  # 80 % ± 6 points (> 4 sigma)
        pinned = c.post(f"{server}/serving-endpoints/canary/served-models/b/invocations", json=ROW)
        assert pinned.status_code == 200 and pinned.headers["served-entity"] == "b" and pinned.json()["predictions"][0] > 50
        assert c.post(f"{server}/serving-endpoints/canary/served-models/zz/invocations", json=ROW).status_code == 404
        metrics = c.get(f"{server}/api/2.0/serving-endpoints/canary/metrics").text
    assert f'entity="a",model_version="m.s.churn/{vs["plain"]}",status="200"}} {seen["a"]}' in metrics
    assert f'entity="b",model_version="m.s.churn/{vs["shifted"]}",status="200"}} {seen["b"] + 1}' in metrics


def test_a_version_switch_under_load_fails_no_request(server: str, world: dict[str, Any]) -> None:
    token, vs = world["token"], world["versions"]
    httpx.post(f"{server}/api/2.0/serving-endpoints", json={"name": "live", "config": {"served_entities": entities(("old", vs["plain"]))}},
               headers=auth(token)).raise_for_status()
    statuses: Counter[int] = Counter()
    answered: Counter[str] = Counter()
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(headers=auth(token)) as c:
            while not stop.is_set():
                r = c.post(f"{server}/serving-endpoints/live/invocations", json=ROW)
                statuses[r.status_code] += 1
                answered[r.headers.get("served-entity", "?")] += 1

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    r = httpx.put(f"{server}/api/2.0/serving-endpoints/live/config", json={"served_entities": entities(("new", vs["shifted"]))},
                  headers=auth(token))
    assert r.status_code == 200 and r.json()["config"]["config_version"] == 2
    deadline = time.time() + 30
    while answered["new"] < 50 and time.time() < deadline:
        time.sleep(0.1)
    stop.set()
    for t in threads:
        t.join()
    assert set(statuses) == {200}, statuses
    assert answered["old"] > 0 and answered["new"] >= 50


def test_scale_to_zero_and_back(metastore: Metastore, world: dict[str, Any], live, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CAIRN_SERVING_IDLE_SECONDS", "0.5")
    app = make_app(metastore)
    token, vs = world["token"], world["versions"]
    with live(app) as url:
        httpx.post(f"{url}/api/2.0/serving-endpoints", json={"name": "idle", "config": {"served_entities": entities(("m", vs["plain"]), scale_to_zero=True)}},
                   headers=auth(token)).raise_for_status()
        first = httpx.post(f"{url}/serving-endpoints/idle/invocations", json=ROW, headers=auth(token))
        assert first.status_code == 200
        get = lambda: httpx.get(f"{url}/api/2.0/serving-endpoints/idle", headers=auth(token)).json()  # noqa: E731
        assert get()["config"]["served_entities"][0]["state"]["cairn_state"] == "READY"
        deadline = time.time() + 10
        while get()["config"]["served_entities"][0]["state"]["cairn_state"] != "SCALED_TO_ZERO" and time.time() < deadline:
            time.sleep(0.1)
        assert get()["config"]["served_entities"][0]["state"]["cairn_state"] == "SCALED_TO_ZERO"
        again = httpx.post(f"{url}/serving-endpoints/idle/invocations", json=ROW, headers=auth(token))
        assert again.status_code == 200 and again.json() == first.json()
        metrics = httpx.get(f"{url}/api/2.0/serving-endpoints/idle/metrics", headers=auth(token)).text
        assert 'cairn_serving_load_seconds{endpoint="idle",entity="m"' in metrics


def test_an_entity_that_cannot_load_answers_503_at_once_never_a_hang(server: str, world: dict[str, Any], admin) -> None:  # type: ignore[no-untyped-def]
    from tests.serving.helpers import register

    broken = register(admin, "m.s.churn", "file:///nowhere/model")
    token = world["token"]
    httpx.post(f"{server}/api/2.0/serving-endpoints", json={"name": "broken", "config": {"served_entities": entities(("x", broken))}},
               headers=auth(token)).raise_for_status()
    for _ in range(2):  # the load fails, then the failure is answered without loading again
        started = time.time()
        r = httpx.post(f"{server}/serving-endpoints/broken/invocations", json=ROW, headers=auth(token), timeout=60)
        assert r.status_code == 503 and "failed to load" in r.json()["message"] and "Traceback" not in r.text
        assert time.time() - started < 30  # bounded by CAIRN_SERVING_LOAD_TIMEOUT, not a hang
    state = httpx.get(f"{server}/api/2.0/serving-endpoints/broken", headers=auth(token)).json()["config"]["served_entities"][0]["state"]
    assert state == {"deployment": "DEPLOYMENT_FAILED", "cairn_state": "LOAD_FAILED"}
