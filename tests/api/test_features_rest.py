"""`FeatureEngineeringClient(url=..., token=...)` against `cairn serve`'s app on a real 127.0.0.1 server:
the same answers as the embedded client, the same checks, audit rows and lineage on the server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pandas as pd
import pytest

from api.server import make_app
from catalog.client import Cairn, Metastore
from catalog.errors import InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from pipelines.features import FeatureEngineeringClient, FeatureLookup
from pipelines.features.remote import RemoteFeatureEngineeringClient

pytestmark = pytest.mark.slow


def T(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


FEATURES = pd.DataFrame({"user_id": [1, 1, 2], "ts": [T("2024-01-01"), T("2024-01-05"), T("2024-01-03")], "spend": [1.0, 2.0, 4.0]})
LABELS = pd.DataFrame({"user_id": [1, 1, 2, 3], "at": [T("2024-01-02"), T("2024-01-06"), T("2024-01-02"), T("2024-01-09")], "y": [0, 1, 1, 0]})


@pytest.fixture
def server(metastore: Metastore, live) -> Iterator[str]:  # type: ignore[no-untyped-def]
    with live(make_app(metastore)) as url:
        yield url


@pytest.fixture
def tokens(admin: Cairn) -> dict[str, str]:
    admin.catalogs.create_catalog("main")
    admin.schemas.create_schema("main.ml")
    admin.principals.create_user("ana")
    return {"admin": admin.tokens.create_token()[0], "ana": admin.tokens.create_token("ana", "1d")[0]}


def test_remote_client_matches_the_embedded_one(server: str, tokens: dict[str, str], admin: Cairn) -> None:
    fe = FeatureEngineeringClient(url=server, token=tokens["admin"])
    assert isinstance(fe, RemoteFeatureEngineeringClient)
    t = fe.create_table("main.ml.users", "user_id", "ts", df=FEATURES, description="per user", tags={"team": "ml"})
    assert (t.name, t.primary_keys, t.timestamp_keys, t.features, t.description, t.version) == \
        ("main.ml.users", ("user_id", "ts"), ("ts",), ("spend",), "per user", 1)
    assert fe.write_table("main.ml.users", pd.DataFrame({"user_id": [2], "ts": [T("2024-01-04")], "spend": [5.0]})) == 2
    assert sorted(fe.read_table("main.ml.users")["spend"]) == [1.0, 2.0, 4.0, 5.0]
    assert len(fe.read_table("main.ml.users", as_of_version=1)) == 3
    lookups = [FeatureLookup("main.ml.users", "user_id", timestamp_lookup_key="at", lookback_window=timedelta(days=3))]
    ts = fe.create_training_set(LABELS, lookups, label="y")
    assert ts.spec()["feature_tables"] == [{"table": "main.ml.users", "version": 2}]
    # Written after create_training_set: the pinned version 2 is what load_df reads.
    fe.write_table("main.ml.users", pd.DataFrame({"user_id": [1], "ts": [T("2024-01-06")], "spend": [9.0]}))
    remote = ts.load_df()
    assert [None if pd.isna(v) else v for v in remote["spend"]] == [1.0, 2.0, None, None]
    embedded = FeatureEngineeringClient(admin).create_training_set(LABELS, lookups, label="y").at_versions({"main.ml.users": 2}).load_df()
    pd.testing.assert_frame_equal(remote, embedded)
    saved = ts.save("main.ml.train")
    assert saved["table"] == "main.ml.train" and fe.get_training_set_spec("main.ml.train")["feature_tables"][0]["version"] == 2
    assert len(admin.data.read("main.ml.train")) == 4
    published = fe.publish_table("main.ml.users")
    assert (published.mode, published.keys_written, published.version) == ("FULL", 2, 3)
    got = fe.read_online_features("main.ml.users", [{"user_id": 1}, {"user_id": 7}], ["spend"])
    assert (got.rows, got.version) == ([{"user_id": 1, "spend": 9.0}, {"user_id": 7, "spend": None}], 3)
    assert fe.drop_table("main.ml.users") == 2  # the server's online rows go with it
    with pytest.raises(NotFound):
        fe.get_table("main.ml.users")
    # The remote calls ran on the server as admin, audited with the REST source (create, load, save).
    rest = [e for e in admin.audit.list_events(action="read_tables", max_results=100).items if e.source == "rest"]
    assert len(rest) >= 3 and {e.principal for e in rest} == {"admin"}


def test_remote_calls_are_governed(server: str, tokens: dict[str, str], admin: Cairn) -> None:
    FeatureEngineeringClient(admin).create_table("main.ml.users", "user_id", "ts", df=FEATURES)
    admin.grants.grant("catalog", "main", "ana", ["USE CATALOG", "USE SCHEMA", "BROWSE"])
    ana = FeatureEngineeringClient(url=server, token=tokens["ana"])
    with pytest.raises(PermissionDenied):
        ana.create_training_set(LABELS, [FeatureLookup("main.ml.users", "user_id", timestamp_lookup_key="at")], label="y")
    with pytest.raises(PermissionDenied):
        ana.write_table("main.ml.users", FEATURES)
    denied = [e for e in admin.audit.list_events(result="DENIED", max_results=100).items if e.principal == "ana"]
    assert {e.source for e in denied} == {"rest"} and len(denied) >= 2
    assert len(admin.data.read("main.ml.users")) == 3  # nothing written
    with pytest.raises(Unauthenticated):
        FeatureEngineeringClient(url=server, token="not-a-token").get_table("main.ml.users")
    with pytest.raises(InvalidArgument, match="needs a token"):
        FeatureEngineeringClient(url=server)
    admin_fe = FeatureEngineeringClient(url=server, token=tokens["admin"])
    with pytest.raises(InvalidArgument, match="lookup key 'nope'"):
        admin_fe.create_training_set(LABELS, [FeatureLookup("main.ml.users", "nope")], label="y")
