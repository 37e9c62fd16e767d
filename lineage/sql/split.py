"""Statements out of a script, procedure bodies included.

A script is cut at semicolons outside BEGIN ... END blocks. Plain statements go to sqlglot as they are.
A procedure (CREATE PROCEDURE ... BEGIN ... END, PL/SQL's IS ... BEGIN ... END, T-SQL's AS ...) or a
block (BEGIN ... END, DECLARE ..., IF ..., WHILE ...) is walked token by token: control flow (IF/ELSIF
conditions, LOOP, EXIT, WHILE, TRY/CATCH, EXCEPTION handlers), declarations and variable assignments
are stepped over, and each data statement inside is cut out on its own, at its semicolon or, in T-SQL
where semicolons are optional, where the next statement begins.

    >>> from sqlglot.dialects.dialect import Dialect
    >>> d = Dialect.get_or_raise("oracle")
    >>> sql = "CREATE PROCEDURE p IS n NUMBER; BEGIN IF n > 0 THEN INSERT INTO t SELECT a FROM s; END IF; END;"
    >>> toks = d.tokenize(sql)
    >>> [" ".join(t.text for t in p.tokens) for p in pieces(toks, sql, d)]
    ['INSERT INTO t SELECT a FROM s']
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import TokenError
from sqlglot.tokens import Token, TokenType

QUOTED = frozenset({TokenType.STRING, TokenType.IDENTIFIER, TokenType.NATIONAL_STRING, TokenType.HEREDOC_STRING,
                    TokenType.RAW_STRING, TokenType.BYTE_STRING, TokenType.BIT_STRING, TokenType.HEX_STRING})
STARTERS = frozenset({"SELECT", "WITH", "INSERT", "UPDATE", "DELETE", "MERGE", "CREATE", "TRUNCATE", "DROP", "ALTER",
                      "COPY", "UNLOAD", "UPSERT", "REPLACE", "CACHE"})
# Words that end a T-SQL statement written without a semicolon.
TSQL_BREAKS = frozenset({"IF", "WHILE", "DECLARE", "SET", "EXEC", "EXECUTE", "PRINT", "RETURN", "RAISERROR", "THROW",
                         "COMMIT", "ROLLBACK", "GO", "OPEN", "FETCH", "CLOSE", "DEALLOCATE", "BREAK", "CONTINUE",
                         "WAITFOR", "GOTO", "USE"})
BLOCK_ENDS = frozenset({"END", "ELSE", "ELSIF", "ELSEIF", "EXCEPTION", "BEGIN"})
CONDITIONS = frozenset({"IF", "ELSIF", "ELSEIF", "WHILE", "FOR", "WHEN", "UNTIL"})
CONDITION_ENDS = frozenset({"THEN", "LOOP", "DO"})
END_OF = frozenset({"IF", "LOOP", "WHILE", "FOR", "CASE", "TRY", "CATCH", "REPEAT"})
NOT_BLOCKS = frozenset({"TRANSACTION", "TRAN", "WORK", "DISTRIBUTED"})
PROCEDURAL = frozenset({"BEGIN", "DECLARE", "IF", "WHILE", "FOR", "LOOP", "REPEAT"})


@dataclass(frozen=True, slots=True)
class Piece:
    tokens: list[Token]  # the statement's tokens
    sql: str  # the text they index (a procedure body in a $$ string has its own)
    procedural: bool  # inside a procedure or block: SELECT ... INTO names variables, not a new table


def word(tok: Token) -> str | None:
    return None if tok.token_type in QUOTED else tok.text.upper()


def _opens_block(tokens: list[Token], i: int) -> bool:
    w = word(tokens[i])
    if w == "CASE":
        return True
    if w != "BEGIN":
        return False
    nxt = tokens[i + 1] if i + 1 < len(tokens) else None
    return nxt is not None and nxt.token_type != TokenType.SEMICOLON and word(nxt) not in NOT_BLOCKS


def _closes_block(tokens: list[Token], i: int) -> bool:
    if word(tokens[i]) != "END":
        return False
    nxt = tokens[i + 1] if i + 1 < len(tokens) else None
    return nxt is None or word(nxt) not in END_OF - {"CASE", "TRY", "CATCH"}


def chunks(tokens: list[Token], dialect: str) -> list[tuple[int, int]]:
    """Top-level statements: [start, end) token ranges cut at semicolons outside BEGIN/CASE ... END.
    A procedure's declarations (PL/SQL's IS ...;) and a body without BEGIN (T-SQL's AS ...) belong to it."""
    out, depth, start = [], 0, 0
    awaiting = _awaits_body(tokens, 0, dialect)
    for i, tok in enumerate(tokens):
        if tok.token_type == TokenType.SEMICOLON and depth == 0:
            if awaiting:
                continue
            if i > start:
                out.append((start, i))
            start = i + 1
            awaiting = _awaits_body(tokens, start, dialect)
        elif _opens_block(tokens, i):
            depth += 1
        elif depth and _closes_block(tokens, i):
            depth -= 1
            if depth == 0 and awaiting and dialect != "tsql":
                awaiting = False
    if start < len(tokens):
        out.append((start, len(tokens)))
    return out


def _awaits_body(tokens: list[Token], start: int, dialect: str) -> bool:
    if start >= len(tokens):
        return False
    first = word(tokens[start])
    if first == "DECLARE":
        return dialect == "oracle"
    if first in ("CREATE", "ALTER"):
        end = min(len(tokens), start + 8)
        return is_procedural(tokens, start, end) and not _string_body(tokens, start)
    return False


def _string_body(tokens: list[Token], start: int) -> bool:
    """CREATE PROCEDURE ... AS $$ ... $$ (PostgreSQL, Snowflake): the body is one string."""
    body = procedure_body(tokens, start, len(tokens))
    return body < len(tokens) and tokens[body].token_type in QUOTED - {TokenType.IDENTIFIER}


def is_procedural(tokens: list[Token], start: int, end: int) -> bool:
    """A procedure definition or a block of procedural code, rather than one plain statement."""
    first = word(tokens[start])
    if first in PROCEDURAL:
        return first != "BEGIN" or _opens_block(tokens, start)
    if first == "<<":
        return True
    if first in ("CREATE", "ALTER"):
        for tok in tokens[start + 1:min(end, start + 8)]:
            w = word(tok)
            if w in ("PROCEDURE", "PROC"):
                return True
            if w not in ("OR", "REPLACE", "ALTER", "DEFINER", "=", "TEMP", "TEMPORARY") and tok.token_type != TokenType.VAR:
                return False
    return False


def procedure_body(tokens: list[Token], start: int, end: int) -> int:
    """Where a CREATE PROCEDURE's body begins: after its AS/IS, or at its BEGIN."""
    i, depth, seen_name = start, 0, False
    while i < end:
        tok, w = tokens[i], word(tokens[i])
        if tok.token_type == TokenType.L_PAREN:
            depth += 1
        elif tok.token_type == TokenType.R_PAREN:
            depth -= 1
        elif depth == 0 and w in ("PROCEDURE", "PROC"):
            seen_name = True
        elif depth == 0 and seen_name:
            if w == "BEGIN":
                return i
            if w in ("AS", "IS") and word(tokens[i - 1]) != "EXECUTE":
                return i + 1
        i += 1
    return end


def pieces(tokens: list[Token], sql: str, dialect: Dialect) -> list[Piece]:
    """Every statement of the script, with procedure bodies and blocks opened."""
    name = type(dialect).__name__.lower()
    tsql = name == "tsql"
    out: list[Piece] = []
    for start, end in chunks(tokens, name):
        if is_procedural(tokens, start, end):
            body = procedure_body(tokens, start, end) if word(tokens[start]) in ("CREATE", "ALTER") else start
            if body < end and tokens[body].token_type in QUOTED - {TokenType.IDENTIFIER}:
                out += _string_pieces(tokens[body], dialect)
                continue
            out += _walk(tokens, body, end, tsql, sql, dialect)
        else:
            out.append(Piece(_directory_using(tokens[start:end]), sql, False))
    return out


def _string_pieces(string: Token, dialect: Dialect) -> list[Piece]:
    """The statements of a procedure body written as a string ($$ ... $$), lines counted from the file's."""
    try:
        inner = dialect.tokenize(string.text)
    except TokenError:
        return []
    first_line = string.line - string.text.count("\n")  # sqlglot gives a string token the line it ends on
    for tok in inner:
        tok.line += first_line - 1
    out = []
    for piece in pieces(inner, string.text, dialect):
        out.append(Piece(piece.tokens, piece.sql, True))
    return out


def _command_pieces(command: str | None, string: Token, dialect: Dialect) -> list[Piece]:
    """The statements in the rest of a procedural command (BigQuery's `WHILE i < 3 DO SET ...; INSERT ...`)."""
    try:
        inner = dialect.tokenize(string.text)
    except TokenError:
        return []
    first_line = string.line - string.text.count("\n")
    for tok in inner:
        tok.line += first_line - 1
    start = _skip_condition(inner, 0, len(inner)) if command in CONDITIONS else 0
    return _walk(inner, start, len(inner), False, string.text, dialect)


def _directory_using(tokens: list[Token]) -> list[Token]:
    """Spark's INSERT OVERWRITE [LOCAL] DIRECTORY 'path' USING parquet [OPTIONS (...)] SELECT ...: the
    format says nothing of lineage and sqlglot does not read it, so leave it out."""
    words = [word(t) for t in tokens[:6]]
    if "DIRECTORY" not in words:
        return tokens
    i = words.index("DIRECTORY") + 1
    if i + 2 < len(tokens) and tokens[i].token_type == TokenType.STRING and word(tokens[i + 1]) == "USING":
        j = i + 3
        if j < len(tokens) and word(tokens[j]) == "OPTIONS" and j + 1 < len(tokens) and tokens[j + 1].token_type == TokenType.L_PAREN:
            depth, j = 0, j + 1
            while j < len(tokens):
                depth += {TokenType.L_PAREN: 1, TokenType.R_PAREN: -1}.get(tokens[j].token_type, 0)
                j += 1
                if depth == 0:
                    break
        return tokens[:i + 1] + tokens[j:]
    return tokens


def _skip_to_semicolon(tokens: list[Token], i: int, end: int, tsql: bool) -> int:
    """Past an assignment, declaration or call: to its semicolon or, in T-SQL, the next statement."""
    depth = case = 0
    while i < end:
        tok, w = tokens[i], word(tokens[i])
        if tok.token_type == TokenType.SEMICOLON and depth == 0:
            return i
        if tok.token_type == TokenType.L_PAREN:
            depth += 1
        elif tok.token_type == TokenType.R_PAREN:
            depth -= 1
        elif w == "CASE":
            case += 1
        elif w == "END" and case:
            case -= 1
        elif depth == 0 and not case and (w in BLOCK_ENDS or (tsql and (w in STARTERS or w in TSQL_BREAKS))):
            return i
        i += 1
    return i


def _skip_condition(tokens: list[Token], i: int, end: int) -> int:
    """Past IF/WHILE/FOR/WHEN's condition: after its THEN/LOOP/DO, or at the statement or BEGIN that follows (T-SQL)."""
    depth = 0
    while i < end:
        tok, w = tokens[i], word(tokens[i])
        if tok.token_type == TokenType.L_PAREN:
            depth += 1
        elif tok.token_type == TokenType.R_PAREN:
            depth -= 1
        elif depth == 0:
            if w in CONDITION_ENDS:
                return i + 1
            if w in STARTERS or w in BLOCK_ENDS or w in TSQL_BREAKS or tok.token_type == TokenType.SEMICOLON:
                return i
        i += 1
    return i


def _walk(tokens: list[Token], i: int, end: int, tsql: bool, sql: str, dialect: Dialect) -> list[Piece]:
    out: list[Piece] = []
    while i < end:
        tok, w = tokens[i], word(tokens[i])
        if tok.token_type == TokenType.SEMICOLON:
            i += 1
        elif tok.token_type == TokenType.COMMAND and i + 1 < end and tokens[i + 1].token_type == TokenType.STRING:
            # BigQuery reads BEGIN, WHILE, EXCEPTION ... that open a statement as a command, the rest as a string
            out += _command_pieces(w, tokens[i + 1], dialect)
            i += 2
        elif w in STARTERS or (tok.token_type == TokenType.L_PAREN and i + 1 < end and word(tokens[i + 1]) in ("SELECT", "WITH")):
            j = statement_end(tokens, i, end, tsql)
            out.append(Piece(_directory_using(tokens[i:j]), sql, True))
            i = j
        elif w == "BEGIN":
            i += 2 if i + 1 < end and word(tokens[i + 1]) in ("TRY", "CATCH") else 1
            if i < end and word(tokens[i]) in NOT_BLOCKS:
                i = _skip_to_semicolon(tokens, i, end, tsql)
        elif w == "END":
            i += 1
            if i < end and word(tokens[i]) in END_OF:
                i += 1
            if i < end and tokens[i].token_type == TokenType.VAR and word(tokens[i]) not in STARTERS | TSQL_BREAKS | BLOCK_ENDS:
                i += 1  # END proc_name; END label;
        elif w in CONDITIONS:
            i = _skip_condition(tokens, i + 1, end)
        elif w in ("ELSE", "LOOP", "DO", "THEN", "EXCEPTION", "REPEAT", "AS", "IS"):
            i += 1
        elif w == "<<":  # a PL/SQL label: <<name>>
            i += 3
        else:
            j = _skip_to_semicolon(tokens, i + 1, end, tsql)
            i = j if j > i else i + 1
    return out


def statement_end(tokens: list[Token], i: int, end: int, tsql: bool) -> int:
    """Where the statement starting at token i ends (exclusive)."""
    kind = word(tokens[i])
    depth = case = 0
    selects = sets = 0
    j = i + 1
    while j < end:
        tok, w = tokens[j], word(tokens[j])
        tt = tok.token_type
        if tt == TokenType.L_PAREN:
            depth += 1
        elif tt == TokenType.R_PAREN:
            depth -= 1
            if depth < 0:
                return j
        elif depth == 0:
            if tt == TokenType.SEMICOLON:
                return j
            if w == "CASE":
                case += 1
            elif w == "END" and case:
                case -= 1
            elif not case:
                if w in BLOCK_ENDS:
                    return j
                if kind == "WITH" and w in ("SELECT", "INSERT", "UPDATE", "DELETE", "MERGE"):
                    kind = w  # the statement the CTEs are for
                    selects += w == "SELECT"
                    j += 1
                    continue
                if tsql and _tsql_breaks(tokens, j, end, kind, selects, sets):
                    return j
                if w == "SELECT":
                    selects += 1
                elif w == "SET":
                    sets += 1
        j += 1
    return j


def _tsql_breaks(tokens: list[Token], j: int, end: int, kind: str | None, selects: int, sets: int) -> bool:
    w = word(tokens[j])
    prev = word(tokens[j - 1])
    nxt = word(tokens[j + 1]) if j + 1 < end else None
    if w == "SELECT":
        if prev in ("UNION", "ALL", "INTERSECT", "EXCEPT", "DISTINCT", "AS"):
            return False
        return not (kind in ("INSERT", "CREATE", "WITH") and selects == 0)
    if w == "WITH":
        return tokens[j + 1].token_type != TokenType.L_PAREN and prev != "AS" if j + 1 < end else False
    if w == "SET":
        return not (kind == "MERGE" or kind == "ALTER" or (kind == "UPDATE" and sets == 0))
    if w in ("INSERT", "UPDATE", "DELETE"):
        return kind != "MERGE"
    if w == "IF":
        return nxt not in ("EXISTS", "NOT") or prev not in ("TABLE", "VIEW", "DROP")  # DROP TABLE IF EXISTS
    if w == "EXEC" or w == "EXECUTE":
        return not (kind == "INSERT" and selects == 0)  # INSERT INTO t EXEC p
    return w in STARTERS or w in TSQL_BREAKS
