"""Row filters and column masks, enforced on Python reads for every principal."""

from __future__ import annotations

import pytest

from catalog.client import Cairn, Metastore
from catalog.errors import InvalidArgument, PermissionDenied

ROWS = [{"id": 1, "region": "US", "ssn": "111"}, {"id": 2, "region": "EU", "ssn": "222"}, {"id": 3, "region": "US", "ssn": "333"}]


@pytest.fixture
def hr(admin: Cairn) -> Cairn:
    admin.catalogs.create_catalog("main")
    admin.schemas.create_schema("main.hr")
    admin.tables.create_table("main.hr.people", data=ROWS)
    admin.functions.create_function("main.hr.us_only", "is_account_group_member('global') OR region = 'US'", "boolean",
                                    [{"name": "region", "type": "string"}])
    admin.functions.create_function("main.hr.mask_ssn", "CASE WHEN is_account_group_member('hr') THEN ssn ELSE '***' END", "string",
                                    [{"name": "ssn", "type": "string"}])
    for u in ("ana", "hank"):
        admin.principals.create_user(u)
    admin.principals.create_group("hr")
    admin.principals.create_group("global")
    admin.principals.add_member("hr", "hank")
    admin.principals.add_member("global", "hank")
    admin.grants.grant("catalog", "main", "ana", ["USE CATALOG", "USE SCHEMA", "SELECT"])
    admin.grants.grant("catalog", "main", "hr", ["USE CATALOG", "USE SCHEMA", "SELECT"])
    return admin


def read(client: Cairn, **kw) -> list[tuple]:  # type: ignore[no-untyped-def]
    return sorted(tuple(r.values()) for r in client.data.read("main.hr.people", **kw).to_pylist())


def test_filters_and_masks_follow_the_reader(hr: Cairn, metastore: Metastore) -> None:
    hr.tables.set_row_filter("main.hr.people", "main.hr.us_only", ["region"])
    hr.tables.set_column_mask("main.hr.people", "ssn", "main.hr.mask_ssn")
    ana, hank = metastore.as_principal("ana"), metastore.as_principal("hank")
    assert read(ana) == [(1, "US", "***"), (3, "US", "***")]
    assert read(hank) == [(1, "US", "111"), (2, "EU", "222"), (3, "US", "333")]
    assert read(hr) == [(1, "US", "***"), (3, "US", "***")]  # admins are readers like any other
    assert read(ana, columns=["id", "ssn"], filters=[("id", ">", 1)]) == [(3, "***")]
    # A group change shows at the next read.
    hr.principals.add_member("hr", "ana")
    assert read(ana) == [(1, "US", "111"), (3, "US", "333")]
    hr.tables.drop_row_filter("main.hr.people")
    hr.tables.drop_column_mask("main.hr.people", "ssn")
    assert len(read(metastore.as_principal("ana"))) == 3


def test_setting_policies_is_governed_and_validated(hr: Cairn, metastore: Metastore) -> None:
    with pytest.raises(InvalidArgument, match="takes 1 argument"):
        hr.tables.set_row_filter("main.hr.people", "main.hr.us_only", ["region", "id"])
    with pytest.raises(InvalidArgument, match="no column 'nope'"):
        hr.tables.set_column_mask("main.hr.people", "nope", "main.hr.mask_ssn")
    with pytest.raises(PermissionDenied, match="ownership or MANAGE"):
        metastore.as_principal("ana").tables.set_row_filter("main.hr.people", "main.hr.us_only", ["region"])
    assert hr.tables.get_table("main.hr.people").row_filter is None
