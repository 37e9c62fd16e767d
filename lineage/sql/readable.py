"""Parse errors in the user's words: no sqlglot class or token reprs."""

from __future__ import annotations

import re

_CLASS = re.compile(r"<class 'sqlglot\.expressions\.(\w+)'>")
_TOKEN = re.compile(r"<Token token_type: TokenType\.\w+, text: (.*?), line: \d+, col: \d+, start: \d+, end: \d+, comments: \[.*?\]>")


def readable(description: str, near: str | None = None) -> str:
    """A sqlglot parse error in the user's words: no `<class 'sqlglot.expressions.Mul'>` or `<Token ...>`.

    >>> readable("Required keyword: 'expression' missing for <class 'sqlglot.expressions.Mul'>", "*")
    "incomplete statement near '*': the * operator is missing its right side"
    >>> readable("required keyword: 'expression' missing for")
    'incomplete statement: an operator or function is missing its expression'
    >>> readable("Expected table name but got None")
    'expected a table name'
    """
    m = re.match(r"Required keyword: '(\w+)' missing for(?: <class 'sqlglot\.expressions\.(\w+)'>)?", description, re.IGNORECASE)
    where = f" near '{near}'" if near else ""
    if m:
        ops = {"Mul": "*", "Div": "/", "Add": "+", "Sub": "-", "EQ": "=", "NEQ": "<>", "GT": ">", "LT": "<", "GTE": ">=", "LTE": "<=",
               "And": "AND", "Or": "OR", "Mod": "%"}
        node = m.group(2)
        if node in ops:
            what = f"the {ops[node]} operator is missing its right side"
        else:
            what = f"{'a ' + node.upper() if node else 'an operator or function'} is missing its {m.group(1)}"
        return f"incomplete statement{where}: {what}"
    text = _TOKEN.sub(lambda t: t.group(1), _CLASS.sub(lambda c: c.group(1).upper(), description))
    text = re.sub(r"^Expected (.*?) but got None\.?$", r"expected a \1", text)
    text = text.replace("Invalid expression / Unexpected token", "unexpected token" + where)
    return text[:1].lower() + text[1:]
