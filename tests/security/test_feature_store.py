"""Attacks on the feature store: reading a table through a lookup, masks and filters in training
sets, leaking through the online store, writing or saving without the privilege. Each denial is
audited and changes nothing."""

from __future__ import annotations

import pandas as pd
import pytest

from catalog.client import Cairn, Metastore
from catalog.errors import FailedPrecondition, NotFound, PermissionDenied
from pipelines.features import FeatureEngineeringClient, FeatureFunction, FeatureLookup
from pipelines.features.online import SqliteOnlineStore
from tests.security.conftest import denied_rows


def T(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


@pytest.fixture
def world(admin: Cairn, metastore: Metastore) -> tuple[FeatureEngineeringClient, FeatureEngineeringClient]:
    """admin owns main.fs.open (bob may read it) and main.fs.salary (bob may not), both feature tables;
    main.fs.masked has a row filter (region US only for non-hr) and a masked column."""
    admin.catalogs.create_catalog("main")
    admin.schemas.create_schema("main.fs")
    fa = FeatureEngineeringClient(admin)
    fa.create_table("main.fs.open", "user_id", "ts", df=pd.DataFrame({"user_id": [1, 2], "ts": [T("2024-01-01")] * 2, "clicks": [5, 6]}))
    fa.create_table("main.fs.salary", "user_id", "ts", df=pd.DataFrame({"user_id": [1, 2], "ts": [T("2024-01-01")] * 2, "pay": [100, 200]}))
    fa.create_table("main.fs.masked", "user_id", "ts", df=pd.DataFrame({
        "user_id": [1, 2], "ts": [T("2024-01-01")] * 2, "region": ["US", "EU"], "score": [0.5, 0.9]}))
    admin.principals.create_user("bob")
    admin.principals.create_group("hr")
    admin.sql("""
        CREATE FUNCTION main.fs.us_only(region STRING) RETURNS BOOLEAN RETURN is_account_group_member('hr') OR region = 'US';
        CREATE FUNCTION main.fs.hide(score DOUBLE) RETURNS DOUBLE RETURN CASE WHEN is_member('hr') THEN score ELSE -1.0 END;
        ALTER TABLE main.fs.masked SET ROW FILTER main.fs.us_only ON (region);
        ALTER TABLE main.fs.masked ALTER COLUMN score SET MASK main.fs.hide;
        GRANT USE CATALOG ON CATALOG main TO bob; GRANT USE SCHEMA ON SCHEMA main.fs TO bob;
        GRANT SELECT ON TABLE main.fs.open TO bob; GRANT SELECT ON TABLE main.fs.masked TO bob;
    """)
    return fa, FeatureEngineeringClient(metastore.as_principal("bob"))


def labels() -> pd.DataFrame:
    return pd.DataFrame({"user_id": [1, 2], "at": [T("2024-01-02")] * 2, "y": [0, 1]})


def reads_of(admin: Cairn, table: str) -> list:
    return [e for e in admin.audit.list_events(action="read_table", max_results=1000).items if e.securable_name == table]


def test_lookup_cannot_read_a_table_without_select(world, admin: Cairn) -> None:
    _, fb = world
    before = len(reads_of(admin, "main.fs.open"))
    with pytest.raises((PermissionDenied, NotFound)):
        fb.create_training_set(labels(), [FeatureLookup("main.fs.open", "user_id", timestamp_lookup_key="at"),
                                          FeatureLookup("main.fs.salary", "user_id", timestamp_lookup_key="at")], label="y")
    denied = denied_rows(admin, "bob")
    assert any(e.securable_name and "main.fs.salary" in e.securable_name for e in denied)
    # All tables are checked before any is read: the table bob may read was not read either.
    assert len(reads_of(admin, "main.fs.open")) == before
    # Renaming the output does not help, nor naming the table differently.
    with pytest.raises((PermissionDenied, NotFound)):
        fb.create_training_set(labels(), [FeatureLookup("MAIN.FS.`SALARY`", "user_id", rename_outputs={"pay": "clicks2"})], label="y")


def test_training_sets_apply_the_readers_filters_and_masks(world, admin: Cairn, metastore: Metastore) -> None:
    _, fb = world
    lk = [FeatureLookup("main.fs.masked", "user_id", timestamp_lookup_key="at", feature_names=["score"])]
    out = fb.create_training_set(labels(), lk, label="y").load_df()
    assert [None if pd.isna(v) else v for v in out["score"]] == [-1.0, None]  # masked; user 2 (EU) filtered out
    admin.principals.add_member("hr", "bob")
    out = FeatureEngineeringClient(metastore.as_principal("bob")).create_training_set(labels(), lk, label="y").load_df()
    assert list(out["score"]) == [0.5, 0.9]


def test_save_applies_masks_and_needs_create_table(world, admin: Cairn) -> None:
    _, fb = world
    ts = fb.create_training_set(labels(), [FeatureLookup("main.fs.masked", "user_id", timestamp_lookup_key="at", feature_names=["score"])], "y")
    with pytest.raises(PermissionDenied):
        ts.save("main.fs.bobs_set")
    assert [t.name for t in admin.tables.list_tables("main", "fs").items if t.name == "bobs_set"] == []
    admin.sql("GRANT CREATE TABLE ON SCHEMA main.fs TO bob")
    ts.save("main.fs.bobs_set")
    assert admin.data.read("main.fs.bobs_set").column("score").to_pylist() == [-1.0, None]  # what bob saw, not the truth


def test_write_table_needs_modify_and_changes_nothing(world, admin: Cairn) -> None:
    fa, fb = world
    with pytest.raises(PermissionDenied):
        fb.write_table("main.fs.open", pd.DataFrame({"user_id": [1], "ts": [T("2024-01-01")], "clicks": [999]}))
    assert admin.data.read("main.fs.open").column("clicks").to_pylist() == [5, 6]
    assert fa.get_table("main.fs.open").version == 1
    assert any(e.action == "merge_table" for e in denied_rows(admin, "bob"))


def test_feature_function_needs_execute(world, admin: Cairn) -> None:
    _, fb = world
    admin.functions.create_function("main.fs.twice", "x * 2", "bigint", [{"name": "x", "type": "bigint"}])
    with pytest.raises((PermissionDenied, NotFound)):
        fb.create_training_set(labels(), [FeatureLookup("main.fs.open", "user_id", timestamp_lookup_key="at"),
                                          FeatureFunction("main.fs.twice", {"x": "clicks"})], label="y")
    admin.sql("GRANT EXECUTE ON FUNCTION main.fs.twice TO bob")
    out = fb.create_training_set(labels(), [FeatureLookup("main.fs.open", "user_id", timestamp_lookup_key="at"),
                                            FeatureFunction("main.fs.twice", {"x": "clicks"})], label="y").load_df()
    assert list(out["twice"]) == [10, 12]


def test_publishing_refuses_filtered_or_masked_tables(world, admin: Cairn, tmp_path) -> None:
    fa, _ = world
    store = SqliteOnlineStore(tmp_path / "online.db")
    with pytest.raises(FailedPrecondition, match="row filter or column masks"):
        fa.publish_table("main.fs.masked", online_store=store)
    assert store.state("main.fs.masked") is None
    assert store.read("main.fs.masked", ["[1]", "[2]"]) == [None, None]


def test_online_reads_need_select_and_stop_when_a_mask_appears(world, admin: Cairn, tmp_path) -> None:
    fa, fb = world
    store = SqliteOnlineStore(tmp_path / "online.db")
    fa.publish_table("main.fs.salary", online_store=store)
    fa.publish_table("main.fs.open", online_store=store)
    with pytest.raises((PermissionDenied, NotFound)):
        fb.read_online_features("main.fs.salary", [{"user_id": 1}], online_store=store)
    with pytest.raises((PermissionDenied, NotFound)):
        fb.online_reader("main.fs.salary", online_store=store)
    assert any(e.securable_name == "main.fs.salary" for e in denied_rows(admin, "bob"))
    assert fb.read_online_features("main.fs.open", [{"user_id": 2}], online_store=store).rows == [{"user_id": 2, "ts": "2024-01-01T00:00:00.000000+00:00", "clicks": 6}]
    # A mask set after publishing: the published values may no longer be served to anyone.
    admin.sql("CREATE FUNCTION main.fs.zero(clicks BIGINT) RETURNS BIGINT RETURN 0; ALTER TABLE main.fs.open ALTER COLUMN clicks SET MASK main.fs.zero")
    with pytest.raises(FailedPrecondition):
        fb.read_online_features("main.fs.open", [{"user_id": 2}], online_store=store)
    # A leased reader notices at its next check.
    admin.sql("ALTER TABLE main.fs.open ALTER COLUMN clicks DROP MASK")
    reader = fb.online_reader("main.fs.open", online_store=store, ttl_seconds=0)
    assert reader.lookup([2]) == [{"ts": "2024-01-01T00:00:00.000000+00:00", "clicks": 6}]
    admin.sql("REVOKE SELECT ON TABLE main.fs.open FROM bob")
    with pytest.raises((PermissionDenied, NotFound)):
        reader.lookup([2])


def test_label_rows_from_a_table_need_select_too(world, admin: Cairn) -> None:
    _, fb = world
    with pytest.raises((PermissionDenied, NotFound)):
        fb.create_training_set("main.fs.salary", [FeatureLookup("main.fs.open", "user_id", timestamp_lookup_key="ts")], label="pay")
    assert any(e.securable_name and "main.fs.salary" in e.securable_name for e in denied_rows(admin, "bob"))


def test_a_feature_function_cannot_read_a_table(world, admin: Cairn) -> None:
    from catalog.errors import InvalidArgument

    _, fb = world
    admin.functions.create_function("main.fs.peek", "(SELECT max(pay) FROM main.fs.salary) + x", "bigint", [{"name": "x", "type": "bigint"}])
    admin.sql("GRANT EXECUTE ON FUNCTION main.fs.peek TO bob")
    ts = fb.create_training_set(labels(), [FeatureLookup("main.fs.open", "user_id", timestamp_lookup_key="at"),
                                           FeatureFunction("main.fs.peek", {"x": "clicks"})], label="y")
    with pytest.raises(InvalidArgument, match="may not read tables"):
        ts.load_df()


@pytest.mark.parametrize("body, refused", [
    ("import os\nreturn os.getcwd()", "imports a module"),
    ("from os import path\nreturn 1", "imports a module"),
    ("return ().__class__.__mro__[1].__subclasses__()", "'__subclasses__'"),
    ("return x.__class__", "'__class__'"),
    ("return __import__('os').system('id')", "'__import__'"),
    # A running generator's frame leads to the caller's module globals, whose __builtins__ hold __import__.
    ("g = (g.gi_frame.f_back.f_back.f_globals for q in [1])\nreturn next(g)['__builtins__']['__import__']('os').getpid()", "format-string attributes"),
    ("try:\n    1 / 0\nexcept ZeroDivisionError as e:\n    return e.with_traceback(None) and 0\nreturn x.tb_frame", "format-string attributes"),
    ("async def c():\n    return 1\nreturn c().cr_frame.f_globals", "format-string attributes"),
    ("return len('{0.__class__.__mro__}'.format(x))", "format-string attributes"),
    ("return len('{x.__class__}'.format_map({'x': x}))", "format-string attributes"),
])
def test_python_feature_functions_cannot_import_or_reach_dunders(world, admin: Cairn, body: str, refused: str) -> None:
    from catalog.errors import InvalidArgument

    fa, _ = world
    admin.functions.create_function("main.fs.evil", body, "bigint", [{"name": "x", "type": "bigint"}], language="PYTHON")
    with pytest.raises(InvalidArgument, match=refused):
        fa.create_training_set(labels(), [FeatureLookup("main.fs.open", "user_id", timestamp_lookup_key="at"),
                                          FeatureFunction("main.fs.evil", {"x": "clicks"})], label="y")


def test_python_feature_functions_have_no_file_or_eval_builtins(world, admin: Cairn, tmp_path) -> None:
    from catalog.errors import InvalidArgument

    fa, _ = world
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cret")
    admin.functions.create_function("main.fs.reader", f"return len(open({str(secret)!r}).read()) + x", "bigint",
                                    [{"name": "x", "type": "bigint"}], language="PYTHON")
    admin.functions.create_function("main.fs.evaler", "return eval('x + 1')", "bigint", [{"name": "x", "type": "bigint"}], language="PYTHON")
    for name in ("main.fs.reader", "main.fs.evaler"):
        ts = fa.create_training_set(labels(), [FeatureLookup("main.fs.open", "user_id", timestamp_lookup_key="at"),
                                               FeatureFunction(name, {"x": "clicks"})], label="y")
        with pytest.raises(InvalidArgument, match="restricted set of builtins"):
            ts.load_df()
    # What a feature function is for still works: arithmetic, builtins like min/round, and math.
    admin.functions.create_function("main.fs.ok", "return round(math.sqrt(x) + min(x, 3), 2)", "double",
                                    [{"name": "x", "type": "bigint"}], language="PYTHON")
    out = fa.create_training_set(labels(), [FeatureLookup("main.fs.open", "user_id", timestamp_lookup_key="at"),
                                            FeatureFunction("main.fs.ok", {"x": "clicks"})], label="y").load_df()
    assert list(out["ok"]) == [round(5 ** 0.5 + 3, 2), round(6 ** 0.5 + 3, 2)]
