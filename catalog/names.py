"""Parse, validate and quote three-level names (`catalog.schema.object`).

Unity Catalog names are case-insensitive and stored lower-case. A part is either an unquoted
identifier (letters, digits, underscores) or a backtick-quoted one, in which a doubled backtick
stands for a backtick. No part may be empty or contain a period, a space, a slash or a control
character, quoted or not, because those break storage paths and other engines.

>>> parse("Main.Sales.`Orders_2024`")
FullName(parts=('main', 'sales', 'orders_2024'))
>>> str(parse("main.`my-schema`.t"))
'main.`my-schema`.t'
>>> parse("a..b")
Traceback (most recent call last):
...
catalog.errors.InvalidArgument: invalid name 'a..b': part 2 is empty
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from catalog.errors import InvalidArgument

MAX_PART_LENGTH = 255
_UNQUOTED = re.compile(r"[A-Za-z0-9_]+")
_FORBIDDEN = re.compile(r"[.\s/\x00-\x1f\x7f]")
_LEVELS = {1: "catalog", 2: "schema", 3: "object"}


@dataclass(frozen=True, slots=True)
class FullName:
    """A validated, lower-cased name of one to three parts."""

    parts: tuple[str, ...]

    @property
    def catalog(self) -> str:
        return self.parts[0]

    @property
    def schema(self) -> str:
        if len(self.parts) < 2:
            raise InvalidArgument(f"'{self}' names a catalog, not a schema")
        return self.parts[1]

    @property
    def name(self) -> str:
        return self.parts[-1]

    @property
    def parent(self) -> FullName | None:
        return FullName(self.parts[:-1]) if len(self.parts) > 1 else None

    def child(self, part: str) -> FullName:
        return FullName((*self.parts, validate_part(part)))

    @property
    def key(self) -> str:
        """The canonical unquoted key used for storage and lookups: parts joined by '.'."""
        return ".".join(self.parts)

    def __str__(self) -> str:
        return ".".join(quote(p) for p in self.parts)


def quote(part: str) -> str:
    """Quote one part with backticks when it is not a plain identifier.

    >>> quote("orders"), quote("my-table")
    ('orders', '`my-table`')
    """
    if _UNQUOTED.fullmatch(part):
        return part
    return "`" + part.replace("`", "``") + "`"


def validate_part(part: str, *, whole: str | None = None, position: int = 1) -> str:
    """Validate one already-unquoted part and return it lower-cased."""
    where = f"invalid name '{whole if whole is not None else part}'"
    if not part:
        raise InvalidArgument(f"{where}: part {position} is empty")
    if len(part) > MAX_PART_LENGTH:
        raise InvalidArgument(f"{where}: part {position} is longer than {MAX_PART_LENGTH} characters")
    bad = _FORBIDDEN.search(part)
    if bad:
        raise InvalidArgument(
            f"{where}: part {position} contains {bad.group()!r}; "
            "names may not contain periods, spaces, slashes or control characters"
        )
    return part.lower()


def _split(text: str) -> list[str]:
    parts: list[str] = []
    i, n = 0, len(text)
    while True:
        if i < n and text[i] == "`":
            j, buf = i + 1, []
            while True:
                if j >= n:
                    raise InvalidArgument(f"invalid name '{text}': unterminated backtick at column {i + 1}")
                if text[j] == "`":
                    if j + 1 < n and text[j + 1] == "`":
                        buf.append("`")
                        j += 2
                        continue
                    break
                buf.append(text[j])
                j += 1
            parts.append("".join(buf))
            i = j + 1
            if i < n and text[i] != ".":
                raise InvalidArgument(f"invalid name '{text}': expected '.' at column {i + 1}")
        else:
            j = text.find(".", i)
            raw = text[i:] if j < 0 else text[i:j]
            if raw and not _UNQUOTED.fullmatch(raw):
                bad = next(c for c in raw if not (c.isalnum() or c == "_"))
                raise InvalidArgument(
                    f"invalid name '{text}': part {len(parts) + 1} contains {bad!r}; "
                    "quote it with backticks or use letters, digits and underscores"
                )
            parts.append(raw)
            i = n if j < 0 else j
        if i >= n:
            return parts
        i += 1  # skip the '.'
        if i >= n:
            parts.append("")
            return parts


def parse(text: str, levels: int | None = None) -> FullName:
    """Parse a one-to-three-part name; with `levels`, require exactly that many parts.

    >>> parse("main.sales", levels=3)
    Traceback (most recent call last):
    ...
    catalog.errors.InvalidArgument: invalid name 'main.sales': expected 3 parts (catalog.schema.object), got 2
    """
    if not isinstance(text, str):
        raise InvalidArgument(f"a name must be a string, got {type(text).__name__}")
    text = text.strip()
    if not text:
        raise InvalidArgument("a name must not be empty")
    raw = _split(text)
    parts = tuple(validate_part(p, whole=text, position=i + 1) for i, p in enumerate(raw))
    if len(parts) > 3:
        raise InvalidArgument(f"invalid name '{text}': at most 3 parts (catalog.schema.object), got {len(parts)}")
    if levels is not None and len(parts) != levels:
        shape = ".".join(_LEVELS[k] for k in range(1, levels + 1))
        raise InvalidArgument(f"invalid name '{text}': expected {levels} parts ({shape}), got {len(parts)}")
    return FullName(parts)


def parse_catalog(text: str) -> FullName:
    return parse(text, 1)


def parse_schema(text: str) -> FullName:
    return parse(text, 2)


def parse_object(text: str) -> FullName:
    return parse(text, 3)


_BAD_PRINCIPAL = re.compile(r"[\x00-\x1f\x7f`]")


def validate_principal_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidArgument("a principal name must be a non-empty string")
    if len(name) > 255:
        raise InvalidArgument(f"principal name '{name[:40]}...' is longer than 255 characters")
    if _BAD_PRINCIPAL.search(name) or name != name.strip():
        raise InvalidArgument(f"principal name {name!r} contains a backtick, a control character or edge spaces")
    return name


_ENDPOINT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")


def validate_endpoint_name(name: str) -> str:
    """A serving endpoint's name as Databricks has it: letters, digits, '-' and '_', at most 63
    characters, starting with a letter or digit. Canonical in lower case.

    >>> validate_endpoint_name("Churn-Prod")
    'churn-prod'
    """
    if not isinstance(name, str) or not _ENDPOINT.fullmatch(name.strip("`")):
        raise InvalidArgument(
            f"invalid endpoint name {name!r}: use letters, digits, '-' and '_' (at most 63, starting with a letter or digit)")
    return name.strip("`").lower()
