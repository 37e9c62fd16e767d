from __future__ import annotations

import pytest

from catalog import names
from catalog.errors import InvalidArgument


@pytest.mark.parametrize(
    "text, parts",
    [
        ("main", ("main",)),
        ("Main.Sales", ("main", "sales")),
        ("main.sales.Orders", ("main", "sales", "orders")),
        ("`my-cat`.`a b`", None),  # spaces are refused even when quoted
        ("`my-cat`.s.`t-1`", ("my-cat", "s", "t-1")),
        ("`we``ird`", ("we`ird",)),
        ("  main.sales  ", ("main", "sales")),
        ("123.456", ("123", "456")),
    ],
)
def test_parse(text: str, parts: tuple[str, ...] | None) -> None:
    if parts is None:
        with pytest.raises(InvalidArgument, match="spaces"):
            names.parse(text)
    else:
        assert names.parse(text).parts == parts


@pytest.mark.parametrize(
    "text, message",
    [
        ("a..b", "part 2 is empty"),
        ("a.b.c.d", "at most 3 parts"),
        (".a", "part 1 is empty"),
        ("a.", "part 2 is empty"),
        ("", "must not be empty"),
        ("a-b", "contains '-'"),
        ("`a.b`", "contains '.'"),
        ("`a/b`.c", "contains '/'"),
        ("`abc", "unterminated backtick"),
        ("`a`b", "expected '.'"),
        ("x" * 256, "longer than 255"),
    ],
)
def test_parse_errors_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        names.parse(text)


def test_levels_and_round_trip() -> None:
    with pytest.raises(InvalidArgument, match=r"expected 3 parts \(catalog.schema.object\), got 2"):
        names.parse_object("a.b")
    fn = names.parse("main.`my-schema`.t")
    assert str(fn) == "main.`my-schema`.t"
    assert names.parse(str(fn)) == fn
    assert fn.key == "main.my-schema.t"
    assert (fn.catalog, fn.schema, fn.name) == ("main", "my-schema", "t")
    assert fn.parent == names.FullName(("main", "my-schema"))


def test_case_insensitive() -> None:
    assert names.parse("MAIN.Sales.ORDERS") == names.parse("main.sales.orders")
