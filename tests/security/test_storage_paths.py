"""Storage paths: an external table must live inside an external location its creator may use, and
may not reach managed storage, another table's files, system folders or anything outside.

Bob holds USE CATALOG, USE SCHEMA, SELECT on one table, CREATE TABLE in the schema, and even CREATE
EXTERNAL TABLE on the external location `lake` (the worst case: a user allowed some external tables
tries to escape). Each spelling of each attack goes through every transport that can carry a table
location; each is refused with its code, changes nothing in the metastore or on disk, and leaves a
DENIED audit row.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from api.graphql import execute
from api.server import make_app
from catalog.client import Cairn, Metastore
from catalog.errors import CairnError, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from catalog.store import tables as t

UC = "/api/2.1/unity-catalog"
COLS = [{"name": "a", "type": "int"}]


@dataclass
class World:
    ms: Metastore
    admin: Cairn
    bob: Cairn
    lake: Path  # external location `lake`: bob holds CREATE EXTERNAL TABLE on it
    outside: Path  # a folder in no external location
    secret: str  # the managed folder of main.s.secret
    taken: str  # the folder of admin's external table main.s.ext, inside the lake


@pytest.fixture
def world(metastore: Metastore, admin: Cairn, tmp_path_factory: pytest.TempPathFactory) -> World:
    admin.principals.create_user("bob")
    admin.sql("CREATE CATALOG main; CREATE SCHEMA main.s")
    admin.tables.create_table("main.s.secret", data=[{"a": 42}])
    admin.tables.create_table("main.s.pub", data=[{"a": 1}])
    admin.grants.grant("catalog", "main", "bob", "USE CATALOG")
    admin.grants.grant("schema", "main.s", "bob", ["USE SCHEMA", "CREATE TABLE"])
    admin.grants.grant("table", "main.s.pub", "bob", "SELECT")
    lake, outside = tmp_path_factory.mktemp("lake"), tmp_path_factory.mktemp("outside")
    admin.storage_credentials.create_storage_credential("local")
    admin.external_locations.create_external_location("lake", str(lake), "local")
    admin.grants.grant("external_location", "lake", "bob", "CREATE EXTERNAL TABLE")
    taken = admin.tables.create_table("main.s.ext", COLS, table_type="EXTERNAL", storage_location=str(lake / "group" / "taken"))
    secret = admin.tables.get_table("main.s.secret").storage_location or ""
    os.symlink(secret, lake / "link_to_secret")
    os.symlink(outside, lake / "link_outside")
    return World(metastore, admin, metastore.as_principal("bob"), lake, outside, secret, taken.storage_location or "")


def next_managed_id(w: World) -> str:
    """Where the old scheme (`<warehouse>/<catalog>/<schema>/<id>`) would have put the next managed table."""
    with w.ms.engine.connect() as conn:
        top = conn.execute(select(t.securables.c.id).order_by(t.securables.c.id.desc()).limit(1)).scalar_one()
    return str(w.ms.settings.warehouse / "main" / "s" / str(top + 1))


# spelling -> (path given the world, the code of the refusal)
SPELLINGS: dict[str, tuple[Callable[[World], str], str]] = {
    "secret-folder": (lambda w: w.secret, "PERMISSION_DENIED"),
    "secret-folder-as-uri": (lambda w: "file://" + w.secret + "/", "PERMISSION_DENIED"),
    "secret-subfolder": (lambda w: w.secret + "/_delta_log/..", "PERMISSION_DENIED"),
    "warehouse-root": (lambda w: str(w.ms.settings.warehouse), "PERMISSION_DENIED"),
    "metastore-home": (lambda w: str(w.ms.settings.home), "PERMISSION_DENIED"),
    "system-dir-etc": (lambda w: "/etc", "PERMISSION_DENIED"),
    "system-dir-tmp": (lambda w: "/tmp", "PERMISSION_DENIED"),
    "outside-any-location": (lambda w: str(w.outside / "t"), "PERMISSION_DENIED"),
    "dotdot-out-of-the-lake": (lambda w: str(w.lake) + "/../" + w.outside.name + "/t", "PERMISSION_DENIED"),
    "relative-dotdot": (lambda w: "../x", "INVALID_ARGUMENT"),
    "relative-plain": (lambda w: "x/y", "INVALID_ARGUMENT"),
    "relative-file-uri": (lambda w: "file:x", "INVALID_ARGUMENT"),
    "symlink-into-secret": (lambda w: str(w.lake / "link_to_secret"), "PERMISSION_DENIED"),
    "symlink-out-of-the-lake": (lambda w: str(w.lake / "link_outside" / "t"), "PERMISSION_DENIED"),
    "same-as-another-external-table": (lambda w: w.taken, "PERMISSION_DENIED"),
    "inside-another-external-table": (lambda w: w.taken + "/sub", "PERMISSION_DENIED"),
    "around-another-external-table": (lambda w: str(w.lake / "group"), "PERMISSION_DENIED"),
    "the-location-root": (lambda w: str(w.lake), "PERMISSION_DENIED"),
    "next-managed-id": (next_managed_id, "PERMISSION_DENIED"),
}


def state(w: World) -> dict[str, Any]:
    """The metastore (but the audit log) and the files under every folder an attack aims at."""
    out: dict[str, Any] = {}
    with w.ms.engine.connect() as conn:
        for table in (t.securables, t.storage_paths, t.grants, t.columns):
            cols = [c for c in table.c if c.name not in ("properties", "spec")]
            out[table.name] = sorted(tuple(str(v) for v in row) for row in conn.execute(select(*cols)))
    for root in (w.lake, w.outside, w.ms.settings.home):
        out[str(root)] = sorted(str(p) for p in Path(root).rglob("*"))
    for system in ("/etc", "/tmp"):
        out[system] = os.path.exists(os.path.join(system, "_delta_log"))
    return out


def denials(w: World) -> list[tuple[str, str | None, str]]:
    events = w.admin.audit.list_events(principal="bob", action="create_table", max_results=1000)
    return [(e.result.value, e.error_code, e.source) for e in events if e.result.value != "ALLOWED"]


# transports: each creates main.s.x as bob at `path`, returning the error code it got
def via_python(w: World, path: str) -> str:
    try:
        w.bob.tables.create_table("main.s.x", COLS, table_type="EXTERNAL", storage_location=path)
    except CairnError as exc:
        return exc.code
    return "OK"


def via_sql(w: World, path: str) -> str:
    try:
        w.ms.as_principal("bob", "sql").sql(f"CREATE TABLE main.s.x (a INT) USING DELTA LOCATION '{path}'")
    except CairnError as exc:
        return exc.code
    return "OK"


def via_graphql(w: World, path: str) -> str:
    res = execute(w.ms.as_principal("bob", "graphql"), 'mutation($s: String!) { sql(statement: $s) { message } }',
                  {"s": f"CREATE EXTERNAL TABLE main.s.x (a INT) LOCATION '{path}'"})
    return res["errors"][0]["extensions"]["code"] if res.get("errors") else "OK"


TRANSPORTS = {"python": (via_python, "python"), "sql": (via_sql, "sql"), "graphql": (via_graphql, "graphql")}


def assert_refused(w: World, attempt: Callable[[World, str], str], path: str, code: str, source: str) -> None:
    before, denied_before = state(w), denials(w)
    assert attempt(w, path) == code, path
    with pytest.raises(NotFound):
        w.admin.tables.get_table("main.s.x")
    assert state(w) == before, f"{path}: the refusal changed something"
    assert denials(w) == denied_before + [("DENIED", code, source)], path


@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
@pytest.mark.parametrize("spelling", sorted(SPELLINGS))
def test_attack_is_refused(world: World, spelling: str, transport: str) -> None:
    path_of, code = SPELLINGS[spelling]
    attempt, source = TRANSPORTS[transport]
    assert_refused(world, attempt, path_of(world), code, source)


@pytest.mark.slow
def test_attacks_are_refused_over_rest(world: World, live: Any) -> None:
    token = world.admin.tokens.create_token("bob")[0]
    with live(make_app(world.ms)) as url:
        def via_rest(w: World, path: str) -> str:
            body = {"name": "x", "catalog_name": "main", "schema_name": "s", "table_type": "EXTERNAL", "data_source_format": "DELTA",
                    "storage_location": path, "columns": [{"name": "a", "type_text": "int", "type_name": "INT", "position": 0}]}
            r = httpx.post(f"{url}{UC}/tables", json=body, headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == {"PERMISSION_DENIED": 403, "INVALID_ARGUMENT": 400}.get(r.json().get("error_code"), 200), r.text
            assert "Traceback" not in r.text
            return r.json().get("error_code", "OK")

        for _spelling, (path_of, code) in sorted(SPELLINGS.items()):
            assert_refused(world, via_rest, path_of(world), code, "rest")


def test_refusals_say_why_without_naming_what_bob_cannot_see(world: World) -> None:
    with pytest.raises(PermissionDenied, match="overlaps the metastore's managed storage"):
        world.bob.tables.create_table("main.s.x", COLS, table_type="EXTERNAL", storage_location=world.secret)
    with pytest.raises(PermissionDenied, match="is not inside an external location"):
        world.bob.tables.create_table("main.s.x", COLS, table_type="EXTERNAL", storage_location="/etc")
    with pytest.raises(InvalidArgument, match=r"storage location '\.\./x' is relative"):
        world.bob.tables.create_table("main.s.x", COLS, table_type="EXTERNAL", storage_location="../x")
    with pytest.raises(PermissionDenied) as overlap:
        world.bob.tables.create_table("main.s.x", COLS, table_type="EXTERNAL", storage_location=world.taken)
    assert "main.s.ext" not in str(overlap.value)  # bob may not see admin's table, so it is not named
    world.admin.grants.grant("table", "main.s.ext", "bob", "SELECT")
    with pytest.raises(PermissionDenied, match="it overlaps table 'main.s.ext'"):
        world.bob.tables.create_table("main.s.x", COLS, table_type="EXTERNAL", storage_location=world.taken)


def test_bob_creates_reads_and_writes_an_external_table_inside_the_location(world: World) -> None:
    made = world.bob.tables.create_table("main.s.mine", COLS, table_type="EXTERNAL", storage_location=str(world.lake / "bob" / "mine/"))
    assert (made.owner, made.storage_location) == ("bob", str(world.lake / "bob" / "mine"))
    world.bob.data.write("main.s.mine", [{"a": 7}])
    assert world.bob.data.read("main.s.mine").to_pylist() == [{"a": 7}]
    assert (world.lake / "bob" / "mine" / "_delta_log").is_dir()
    world.bob.sql(f"CREATE TABLE main.s.mine2 (a INT) LOCATION 'file://{world.lake}/bob/mine2'")
    world.bob.sql("INSERT INTO main.s.mine2 VALUES (8)")
    assert world.bob.sql("SELECT a FROM main.s.mine2").rows == [(8,)]
    # A second table can no longer take the first one's folder, by any spelling.
    for spelling in (made.storage_location, f"file://{world.lake}/bob/./mine", f"{world.lake}/bob/mine/part"):
        with pytest.raises(PermissionDenied, match="overlaps"):
            world.bob.tables.create_table("main.s.x", COLS, table_type="EXTERNAL", storage_location=spelling)


def test_registering_an_existing_delta_folder_follows_the_same_rules(world: World) -> None:
    import pyarrow as pa
    from deltalake import write_deltalake

    write_deltalake(str(world.outside / "old"), pa.table({"a": pa.array([5], pa.int32())}))
    before = state(world)
    with pytest.raises(PermissionDenied, match="not inside an external location"):
        world.bob.tables.create_table("main.s.old", table_type="EXTERNAL", storage_location=str(world.outside / "old"))
    assert state(world) == before
    # Reading secret's schema through registration is refused before anything looks at the folder.
    with pytest.raises(PermissionDenied):
        world.bob.tables.create_table("main.s.peek", table_type="EXTERNAL", storage_location=world.secret)
    write_deltalake(str(world.lake / "old"), pa.table({"a": pa.array([5], pa.int32())}))
    registered = world.bob.tables.create_table("main.s.old", table_type="EXTERNAL", storage_location=str(world.lake / "old"))
    assert [c.name for c in registered.columns] == ["a"] and world.bob.data.read("main.s.old").to_pylist() == [{"a": 5}]


def test_managed_folders_are_fresh_and_cannot_be_claimed_first(world: World) -> None:
    """The old attack: pre-create external tables at the next managed ids to block managed CREATE TABLE."""
    first = int(next_managed_id(world).rsplit("/", 1)[1])
    guesses = [str(world.ms.settings.warehouse / "main" / "s" / str(first + i)) for i in range(4)]
    for guess in guesses:
        assert via_python(world, guess) == "PERMISSION_DENIED"
    # Even a Delta table planted on disk at the old predictable folder (by anyone with shell access) is never picked.
    import pyarrow as pa
    from deltalake import write_deltalake

    for guess in guesses:
        write_deltalake(guess, pa.table({"a": pa.array([666], pa.int32())}))
    made = [world.bob.tables.create_table(f"main.s.m{i}", COLS) for i in range(4)]
    folders = [m.storage_location for m in made]
    assert len(set(folders)) == 4 and not set(folders) & set(guesses)
    assert all(Path(f).parent == world.ms.settings.warehouse / "main" / "s" for f in folders)  # type: ignore[arg-type]
    assert all(world.bob.data.read(m.full_name).num_rows == 0 for m in made)
    # Dropping and re-creating a name gets a new folder: a folder is never reused.
    world.bob.tables.delete_table("main.s.m0")
    assert world.bob.tables.create_table("main.s.m0", COLS).storage_location not in folders


def test_a_read_only_location_takes_no_tables(world: World) -> None:
    world.admin.external_locations.update_external_location("lake", read_only=True)
    before = state(world)
    with pytest.raises(FailedPrecondition, match="read-only"):
        world.bob.tables.create_table("main.s.x", COLS, table_type="EXTERNAL", storage_location=str(world.lake / "x"))
    assert state(world) == before
    assert denials(world)[-1] == ("DENIED", "FAILED_PRECONDITION", "python")


def test_without_create_external_table_bob_is_refused(world: World) -> None:
    world.admin.grants.revoke("external_location", "lake", "bob", "CREATE EXTERNAL TABLE")
    before = state(world)
    with pytest.raises(PermissionDenied, match="lacks CREATE EXTERNAL TABLE on the external location holding it"):
        world.bob.tables.create_table("main.s.x", COLS, table_type="EXTERNAL", storage_location=str(world.lake / "x"))
    assert state(world) == before and denials(world)[-1] == ("DENIED", "PERMISSION_DENIED", "python")
    # Granted through a group, or by owning the location, it holds as usual.
    world.admin.principals.create_group("loaders")
    world.admin.principals.add_member("loaders", "bob")
    world.admin.grants.grant("external_location", "lake", "loaders", "CREATE EXTERNAL TABLE")
    assert world.bob.tables.create_table("main.s.x", COLS, table_type="EXTERNAL", storage_location=str(world.lake / "x")).owner == "bob"


def test_managed_folders_are_registered_so_a_replica_with_another_home_still_refuses_them(
        world: World, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Two servers on one metastore with different homes: the second does not know the first's
    warehouse, but the managed folders the first made are registered, so they cannot be claimed."""
    from catalog.config import Settings

    other = Metastore(Settings(tmp_path_factory.mktemp("replica"), world.ms.settings.metastore_url, None), world.ms.engine)
    admin2, bob2 = other.as_principal("admin"), other.as_principal("bob")
    # Misconfigured: from the replica, the first server's warehouse looks like any folder.
    admin2.external_locations.create_external_location("wide", str(world.ms.settings.warehouse / "main"))
    admin2.grants.grant("external_location", "wide", "bob", "CREATE EXTERNAL TABLE")
    before = state(world)
    for path in (world.secret, world.secret + "/sub", str(Path(world.secret).parent)):
        with pytest.raises(PermissionDenied, match="overlaps"):
            bob2.tables.create_table("main.s.x", COLS, table_type="EXTERNAL", storage_location=path)
    assert state(world) == before
    assert world.admin.data.read("main.s.secret").to_pylist() == [{"a": 42}]
