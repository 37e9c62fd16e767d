"""Attacks on the churn refresh's state table (pipelines/churn/refresh_state.py): a principal who may
not create tables cannot get one made for it by a refresh, and a row filter on the state (which would
make the refresh compute wrong features from a partial state) is refused, with nothing written."""

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
