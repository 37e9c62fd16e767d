"""How big a GraphQL request may be, measured before it is parsed (`bounds`: tokens, aliases,
bracket nesting, from the lexer alone) and before it runs (`depth_of`, `nodes_of`, over the parsed
document). Parsing costs grow with the text, and validation compares same-named fields pairwise,
so a request is measured by what is cheap to count before anything expensive is done.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError
from graphql.language import (
    FieldNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    Lexer,
    OperationDefinitionNode,
    Source,
    TokenKind,
    VariableNode,
)

MAX_DEPTH = 12
MAX_TOKENS = 3_000  # a page of a real query is a few hundred
MAX_ALIASES = 100
MAX_NESTING = 40  # braces, brackets and parentheses; fields deeper than MAX_DEPTH are refused after parsing
DEFAULT_FIRST = 100
# Objects a query may ask for, estimated before it runs: the items of every connection, each connection
# asking `first` items for every item of the connections above it (GitHub's node limit).
MAX_NODES = 1_500_000
CONNECTIONS = frozenset({"catalogs", "schemas", "tables", "models", "versions", "functions", "principals", "search", "auditEvents",
                         "externalLocations", "storageCredentials"})


def depth_of(document: Any) -> int:
    """How many fields deep the query goes (fragments followed; each fragment measured once)."""
    fragments = {d.name.value: d for d in document.definitions if d.kind == "fragment_definition"}
    memo: dict[str, int] = {}

    def fragment(name: str, seen: frozenset[str]) -> int:
        if name not in memo:
            frag = fragments.get(name)
            memo[name] = walk(frag.selection_set, seen | {name}) if frag is not None and name not in seen else 0
        return memo[name]

    def walk(selection_set: Any, seen: frozenset[str]) -> int:
        if selection_set is None:
            return 0
        best = 0
        for sel in selection_set.selections:
            if isinstance(sel, FieldNode):
                best = max(best, 1 + walk(sel.selection_set, seen))
            elif isinstance(sel, InlineFragmentNode):
                best = max(best, walk(sel.selection_set, seen))
            elif isinstance(sel, FragmentSpreadNode) and sel.name.value not in seen:
                best = max(best, fragment(sel.name.value, seen))
        return best

    return max((walk(d.selection_set, frozenset()) for d in document.definitions if isinstance(d, OperationDefinitionNode)), default=0)


def nodes_of(document: Any, variables: dict[str, Any]) -> int:
    """Connection items the query could ask for at most: each connection's `first` times the items above it."""
    fragments = {d.name.value: d for d in document.definitions if d.kind == "fragment_definition"}
    memo: dict[str, int] = {}

    def first_of(field: FieldNode) -> int:
        for arg in field.arguments or ():
            if arg.name.value == "first":
                value = variables.get(arg.value.name.value) if isinstance(arg.value, VariableNode) else getattr(arg.value, "value", None)
                try:
                    return max(int(value), 1) if value is not None else DEFAULT_FIRST
                except (TypeError, ValueError):
                    return DEFAULT_FIRST
        return DEFAULT_FIRST

    def walk(selection_set: Any, seen: frozenset[str]) -> int:
        total = 0
        for sel in selection_set.selections if selection_set is not None else ():
            if isinstance(sel, FieldNode):
                if sel.name.value in CONNECTIONS:
                    n = first_of(sel)
                    total += n + n * walk(sel.selection_set, seen)
                else:
                    total += walk(sel.selection_set, seen)
            elif isinstance(sel, InlineFragmentNode):
                total += walk(sel.selection_set, seen)
            elif isinstance(sel, FragmentSpreadNode) and sel.name.value not in seen and sel.name.value in fragments:
                name = sel.name.value
                if name not in memo:  # each fragment counted once, however often it is spread
                    memo[name] = walk(fragments[name].selection_set, seen | {name})
                total += memo[name]
        return total

    return sum(walk(d.selection_set, frozenset()) for d in document.definitions if isinstance(d, OperationDefinitionNode))


def bounds(query: str) -> str | None:
    """Why the query text is too big to parse (tokens, aliases, nesting), or None. Lexes at most
    MAX_TOKENS + 1 tokens: cheap, and the parser never sees an unbounded document."""
    lexer = Lexer(Source(query))
    tokens = aliases = nesting = 0
    parens = 0  # inside ( ): arguments and variable definitions, whose `name:` is not an alias
    previous = None
    opening, closing = (TokenKind.BRACE_L, TokenKind.BRACKET_L, TokenKind.PAREN_L), (TokenKind.BRACE_R, TokenKind.BRACKET_R, TokenKind.PAREN_R)
    try:
        token = lexer.advance()
        while token.kind is not TokenKind.EOF:
            tokens += 1
            if tokens > MAX_TOKENS:
                return f"the query has more than {MAX_TOKENS:,} tokens, the limit"
            kind = token.kind
            if kind in opening:
                nesting += 1
                parens += kind is TokenKind.PAREN_L
                if nesting > MAX_NESTING:
                    return f"the query nests deeper than {MAX_NESTING} levels, the limit"
            elif kind in closing:
                nesting -= 1
                parens -= kind is TokenKind.PAREN_R
            elif kind is TokenKind.COLON and previous is TokenKind.NAME and parens == 0:
                aliases += 1
                if aliases > MAX_ALIASES:
                    return f"the query has more than {MAX_ALIASES} aliases, the limit"
            previous = kind
            token = lexer.advance()
    except GraphQLError:
        return None  # the parser reports the syntax error with its location
    return None
