"""Splitting scripts into statements, and a small token cursor for governance statements.

Queries and DML go to sqlglot whole; governance statements (GRANT, SHOW, ALTER ... SET TAGS, ...)
are read here, because Databricks' governance grammar is mostly outside what SQL parsers model.

>>> [s.text for s in split("SELECT ';' AS x; -- a comment; still comment\\nSHOW CATALOGS;")]
["SELECT ';' AS x", 'SHOW CATALOGS']
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import NoReturn

from catalog.errors import InvalidArgument

MAX_NESTING = 32  # levels of parentheses; deeper statements are refused before any parser recurses

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|--[^\n]*|/\*.*?\*/)
  | (?P<quoted>`(?:[^`]|``)*`)
  | (?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<punct>\|\||::|<=>|[<>!=]=|<>|->|=>|[^\s\w'"`])
    """,
    re.X | re.S,
)


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # quoted | string | number | word | punct
    text: str
    line: int
    col: int

    @property
    def value(self) -> str:
        if self.kind == "quoted":
            return self.text[1:-1].replace("``", "`")
        if self.kind == "string":
            q = self.text[0]
            return self.text[1:-1].replace(q + q, q).replace("\\" + q, q)
        return self.text


@dataclass(frozen=True, slots=True)
class Statement:
    text: str
    line: int
    tokens: tuple[Token, ...]


def tokenize(sql: str) -> list[Token]:
    out, pos, line, line_start, depth = [], 0, 1, 0, 0
    while pos < len(sql):
        m = _TOKEN.match(sql, pos)
        where = f"line {line}, column {pos - line_start + 1}"
        if m is None or (m.group() in ("/", "'", '"', "`") and sql.startswith(("/*", "'", '"', "`"), pos)):
            what = {"/": "comment /* has no closing */", "'": "string has no closing quote", '"': "string has no closing quote",
                    "`": "identifier has no closing backtick"}.get(sql[pos], f"unexpected character {sql[pos]!r}")
            raise InvalidArgument(f"{where}: {what}")
        kind = m.lastgroup or "ws"
        if kind == "punct" and m.group() == "(":
            depth += 1
            if depth > MAX_NESTING:
                raise InvalidArgument(f"{where}: the statement nests parentheses deeper than {MAX_NESTING} levels")
        elif kind == "punct" and m.group() == ")":
            depth = max(depth - 1, 0)
        if kind != "ws":
            out.append(Token(kind, m.group(), line, pos - line_start + 1))
        newlines = m.group().count("\n")
        if newlines:
            line += newlines
            line_start = m.start() + m.group().rfind("\n") + 1
        pos = m.end()
    return out


def split(script: str) -> list[Statement]:
    """Statements of a script, split on semicolons outside strings, identifiers and comments."""
    return list(_split(script))


@functools.lru_cache(maxsize=512)
def _split(script: str) -> tuple[Statement, ...]:
    # Statements and tokens are immutable, so the same text shares one split.
    tokens = tokenize(script)
    out: list[Statement] = []
    start_tok = 0
    offsets = _offsets(script)
    for i, t in enumerate([*tokens, None]):  # type: ignore[list-item]
        if t is None or (t.kind == "punct" and t.text == ";"):
            chunk = tokens[start_tok:i]
            if chunk:
                begin = offsets[chunk[0].line - 1] + chunk[0].col - 1
                last = chunk[-1]
                end = offsets[last.line - 1] + last.col - 1 + len(last.text)
                out.append(Statement(script[begin:end], chunk[0].line, tuple(chunk)))
            start_tok = i + 1
    return tuple(out)


def _offsets(script: str) -> list[int]:
    out = [0]
    for m in re.finditer("\n", script):
        out.append(m.end())
    return out


class Cursor:
    """Reads one governance statement token by token, with errors that name line and column."""

    def __init__(self, tokens: tuple[Token, ...]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self, offset: int = 0) -> Token | None:
        i = self.pos + offset
        return self.tokens[i] if i < len(self.tokens) else None

    def at(self, *words: str) -> bool:
        for i, w in enumerate(words):
            t = self.peek(i)
            if t is None or t.kind not in ("word", "punct") or t.text.upper() != w:
                return False
        return True

    def accept(self, *words: str) -> bool:
        if self.at(*words):
            self.pos += len(words)
            return True
        return False

    def expect(self, *words: str) -> None:
        if not self.accept(*words):
            self.fail(f"expected {' '.join(words)}")

    def fail(self, message: str) -> NoReturn:
        t = self.peek()
        where = f"line {t.line}, column {t.col}" if t else "the end of the statement"
        got = f" but found {t.text!r}" if t else ""
        raise InvalidArgument(f"{message} at {where}{got}")

    def done(self) -> None:
        if self.peek() is not None:
            self.fail("unexpected text")

    def name(self) -> str:
        """A dotted name; backtick-quoted parts keep their backticks for `catalog.names.parse`."""
        parts = [self._part()]
        while self.accept("."):
            parts.append(self._part())
        return ".".join(parts)

    def _part(self) -> str:
        t = self.peek()
        if t is None or t.kind not in ("word", "quoted", "number"):
            self.fail("expected a name")
        self.pos += 1
        return t.text

    def principal(self) -> str:
        t = self.peek()
        if t is None or t.kind not in ("word", "quoted", "string"):
            self.fail("expected a principal")
        self.pos += 1
        return t.value

    def string(self) -> str:
        t = self.peek()
        if t is None or t.kind != "string":
            self.fail("expected a quoted string")
        self.pos += 1
        return t.value

    def number(self) -> int:
        t = self.peek()
        if t is None or t.kind != "number" or "." in t.text:
            self.fail("expected a whole number")
        self.pos += 1
        return int(t.text)

    def word(self) -> str:
        t = self.peek()
        if t is None or t.kind != "word":
            self.fail("expected a keyword")
        self.pos += 1
        return t.text.upper()

    def names_in_parens(self) -> list[str]:
        self.expect("(")
        out = [self.name()]
        while self.accept(","):
            out.append(self.name())
        self.expect(")")
        return out

    def key_values(self) -> dict[str, str]:
        """('k' = 'v', ...) as in SET TAGS."""
        self.expect("(")
        out: dict[str, str] = {}
        while True:
            head = self.peek()
            key = self.string() if head is not None and head.kind == "string" else self.name()
            value = ""
            if self.accept("="):
                value = self.string()
            out[key.strip("`")] = value
            if not self.accept(","):
                break
        self.expect(")")
        return out

    def strings_in_parens(self) -> list[str]:
        self.expect("(")
        out = []
        while True:
            t = self.peek()
            out.append(self.string() if t is not None and t.kind == "string" else self.name().strip("`"))
            if not self.accept(","):
                break
        self.expect(")")
        return out
