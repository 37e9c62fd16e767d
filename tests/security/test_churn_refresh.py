"""Attacks on the churn refresh's state table (pipelines/churn/refresh_state.py): a principal who may
not create tables cannot get one made for it by a refresh, a row filter on the state (which would
make the refresh compute wrong features from a partial state) is refused, with nothing written, and
so is a state table someone else made (the refresh would copy the features into it)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from catalog.client import Cairn, Metastore
from catalog.errors import FailedPrecondition, PermissionDenied
from pipelines.churn import data
from pipelines.churn import features as F
from pipelines.churn.incremental import refresh
from tests.security.conftest import denied_rows

EV, FT = "main.churn.events", "main.churn.user_features"


@pytest.fixture
def world(admin: Cairn, metastore: Metastore) -> Cairn:
    admin.sql("CREATE CATALOG main; CREATE SCHEMA main.churn")
    data.create_raw_table(admin, EV, data.generate(200, 6_000, days=60, seed=4))
    F.create_feature_table(admin, FT)
    admin.principals.create_user("carol")
    admin.sql("GRANT USE CATALOG ON CATALOG main TO carol; GRANT USE SCHEMA ON SCHEMA main.churn TO carol;"
              f"GRANT SELECT ON TABLE {EV} TO carol; GRANT SELECT, MODIFY ON TABLE {FT} TO carol")
    return metastore.as_principal("carol")


def test_a_refresh_cannot_create_the_state_table_for_who_may_not(world: Cairn, admin: Cairn) -> None:
    before = F.latest_version(admin, FT)
    with pytest.raises(PermissionDenied):
        refresh(world, EV, FT, data.end_of(60))
    assert [e.action for e in denied_rows(admin, "carol")] == ["create_table"]
    assert F.latest_version(admin, FT) == before and admin.data.read(FT).num_rows == 0  # nothing written
    assert FT + "_state" not in {t.full_name for t in admin.tables.list_tables("main", "churn")}


def test_a_row_filter_on_the_state_is_refused_not_a_partial_state(world: Cairn, admin: Cairn) -> None:
    t = data.end_of(60)
    assert refresh(admin, EV, FT, t).mode == "FULL"  # the owner's refresh builds the state
    admin.sql(f"GRANT SELECT, MODIFY ON TABLE {FT}_state TO carol;"
              "CREATE FUNCTION main.churn.few(user_id BIGINT) RETURNS BOOLEAN RETURN user_id < 20;"
              f"ALTER TABLE {FT}_state SET ROW FILTER main.churn.few ON (user_id)")
    admin.data.write(EV, data.generate(50, 500, days=60, seed=9))
    before = F.latest_version(admin, FT)
    with pytest.raises(FailedPrecondition, match="row filter or column mask"):
        refresh(world, EV, FT, t + timedelta(minutes=15))
    assert F.latest_version(admin, FT) == before  # no features computed from a partial state
    # without the filter the same refresh goes through, and equals a full recompute
    admin.sql(f"ALTER TABLE {FT}_state DROP ROW FILTER")
    assert refresh(world, EV, FT, t + timedelta(minutes=15)).mode == "INCREMENTAL"
    F.create_feature_table(admin, "main.churn.full")
    F.full_sql(admin, EV, "main.churn.full", t + timedelta(minutes=15))
    assert F.latest_rows(admin.data.read(FT)).equals(F.latest_rows(admin.data.read("main.churn.full")))


def test_a_state_table_made_by_someone_else_is_refused_not_filled_with_the_features(world: Cairn, admin: Cairn, metastore: Metastore) -> None:
    """mallory may create tables in the schema but read neither the raw events nor the features. She
    makes `<features>_state` before carol's first refresh and lets carol read and write it: the
    refresh would copy every user's features into her table (and compute features from her rows)."""
    from pipelines.churn import refresh_state as S

    admin.principals.create_user("mallory")
    admin.sql("GRANT USE CATALOG ON CATALOG main TO mallory; GRANT USE SCHEMA, CREATE TABLE ON SCHEMA main.churn TO mallory;"
              "GRANT CREATE TABLE ON SCHEMA main.churn TO carol")
    t = data.end_of(60)
    F.full_sql(admin, EV, FT, t)  # the feature table has every user's features
    mallory = metastore.as_principal("mallory")
    mallory.tables.create_table(FT + "_state", S.COLUMNS)
    mallory.sql(f"GRANT SELECT, MODIFY ON TABLE {FT}_state TO carol")
    before = F.latest_version(admin, FT)
    with pytest.raises(FailedPrecondition, match="owned by mallory"):
        refresh(world, EV, FT, t + timedelta(minutes=15))
    assert mallory.data.read(FT + "_state").num_rows == 0  # nothing of the features in her table
    assert F.latest_version(admin, FT) == before
    # a state carol made herself is hers: the refresh goes through
    admin.sql(f"DROP TABLE {FT}_state")
    assert refresh(world, EV, FT, t + timedelta(minutes=15)).mode in ("FULL", "INCREMENTAL")
    assert admin.tables.get_table(FT + "_state").owner == "carol"


def test_a_row_filter_on_the_feature_table_is_refused_not_a_partial_state(world: Cairn, admin: Cairn) -> None:
    """carol sees only some users of the feature table: a state rebuilt from what she sees would lack
    the others, and the refresh would then write them features counted from the new events alone."""
    t = data.end_of(60)
    F.full_sql(admin, EV, FT, t)
    admin.sql("GRANT CREATE TABLE ON SCHEMA main.churn TO carol;"
              "CREATE FUNCTION main.churn.few(user_id BIGINT) RETURNS BOOLEAN RETURN user_id < 20;"
              f"ALTER TABLE {FT} SET ROW FILTER main.churn.few ON (user_id)")
    admin.data.write(EV, data.generate(200, 2_000, days=60, seed=9))
    before, rows = F.latest_version(admin, FT), admin.data.read(FT).num_rows
    with pytest.raises(FailedPrecondition, match="row filter or column mask"):
        refresh(world, EV, FT, t + timedelta(minutes=15))
    assert F.latest_version(admin, FT) == before and admin.data.read(FT).num_rows == rows  # no features from a partial state
    assert admin.data.read(FT + "_state").num_rows == 0


def test_a_full_recompute_under_a_row_filter_on_the_feature_table_writes_nothing(world: Cairn, admin: Cairn) -> None:
    """A refresh that falls back to a full recompute (deletes in the raw table) rebuilds its state
    from the feature table whole after writing it: with a row filter for the refresher, refused
    before anything is written, not after the overwrite."""
    t = data.end_of(60)
    admin.sql("GRANT CREATE TABLE ON SCHEMA main.churn TO carol")
    assert refresh(world, EV, FT, t).mode == "FULL"  # carol's state, built without any filter
    rows = admin.data.read(FT).num_rows
    admin.sql("CREATE FUNCTION main.churn.few(user_id BIGINT) RETURNS BOOLEAN RETURN user_id < 20;"
              f"ALTER TABLE {FT} SET ROW FILTER main.churn.few ON (user_id)")
    admin.data.delete(EV, "user_id = 3")  # the change feed has a delete: the next refresh is a full recompute
    before = F.latest_version(admin, FT)
    with pytest.raises(FailedPrecondition, match="row filter or column mask"):
        refresh(world, EV, FT, t + timedelta(minutes=15))
    assert F.latest_version(admin, FT) == before  # the feature table untouched
    admin.sql(f"ALTER TABLE {FT} DROP ROW FILTER")
    assert rows > 20 and admin.data.read(FT).num_rows == rows  # every user's rows still there
