"""What every route shares: bounded body reading and body-shape checks (errors: api/errors.py).

A body is read as a stream and refused (413) as soon as it passes the route's limit, before it is
buffered whole; gzip bodies are bounded after decompression too. JSON must be UTF-8, an object, and
at most MAX_NESTING levels deep. `check` compares a body with a route's declared shape and names the
first field that does not fit, so no handler ever sees `[1]` where it expects an object.
"""

from __future__ import annotations

import json
import os
import zlib
from typing import Any

from starlette.requests import Request

from api.errors import TooLarge
from catalog.errors import InvalidArgument

MB = 1 << 20
MAX_BODY = int(os.environ.get("CAIRN_API_MAX_BODY", 16 * MB))  # REST and OpenLineage
MAX_GRAPHQL_BODY = int(os.environ.get("CAIRN_API_MAX_GRAPHQL_BODY", 1 * MB))
MAX_NESTING = 64  # JSON levels; real bodies use fewer than ten
PARSE_OFF_LOOP = 64 * 1024  # bodies larger than this are decoded on a thread, not on the event loop


def _too_large(limit: int, what: str = "the body") -> TooLarge:
    return TooLarge(f"{what} is larger than the limit of {limit:,} bytes")


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, read chunk by chunk; TooLarge as soon as it passes `limit` (or the declared
    Content-Length does), so an oversized body is never held whole."""
    return await receive_body(request.receive, request.headers.get("content-length", ""), limit)


class Disconnected(Exception):
    """The client went away before its body was read: there is no one to answer."""


async def receive_body(receive: Any, declared: str, limit: int) -> bytes:
    """`read_body` on a bare ASGI `receive` (`declared`: the Content-Length header, or "")."""
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def gunzip(raw: bytes, limit: int) -> bytes:
    """A gzip body, decompressed to at most `limit` bytes (a small bomb must not become gigabytes)."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise InvalidArgument(f"the body is not gzip: {exc}") from None
    if len(out) > limit or d.unconsumed_tail:
        raise _too_large(limit, "the decompressed body")
    if not d.eof:
        raise InvalidArgument("the body is not gzip: it is truncated")
    return out


def check_content_type(request: Request) -> None:
    """JSON, or no Content-Type at all (some clients send none)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind and kind != "application/json" and not kind.endswith("+json"):
        raise InvalidArgument(f"Content-Type {kind!r} is not accepted; send application/json")


def decode_json(raw: bytes) -> Any:
    """The JSON value of a body: UTF-8, nested at most MAX_NESTING levels; InvalidArgument otherwise."""
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_not_json)
    except UnicodeDecodeError as exc:
        raise InvalidArgument(f"the body is not UTF-8: invalid byte at position {exc.start}") from None
    except RecursionError:
        raise InvalidArgument(f"the body is nested deeper than the limit of {MAX_NESTING} levels") from None
    except ValueError as exc:
        raise InvalidArgument(f"the body is not JSON: {exc}") from None
    if _nesting(value) > MAX_NESTING:
        raise InvalidArgument(f"the body is nested deeper than the limit of {MAX_NESTING} levels")
    return value


def _not_json(word: str) -> Any:
    raise ValueError(f"{word} is not JSON")  # Python's parser takes NaN and Infinity; JSON does not


def _nesting(value: Any) -> int:
    """How deep containers nest (iterative: a deep value cannot exhaust the stack); stops past the limit."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        if d > MAX_NESTING:
            return d
        deepest = max(deepest, d)
        children = v.values() if isinstance(v, dict) else v if isinstance(v, list) else ()
        stack.extend((c, d + 1) for c in children if isinstance(c, (dict, list)))
    return deepest if isinstance(value, (dict, list)) else 0


async def json_body(request: Request, limit: int, gzip_ok: bool = False) -> Any:
    """Read, bound and decode a request's JSON body (`{}` when empty); large bodies decode on a thread."""
    import anyio.to_thread

    check_content_type(request)
    raw = await read_body(request, limit)
    if gzip_ok and request.headers.get("content-encoding", "").lower() == "gzip":
        raw = gunzip(raw, limit) if len(raw) <= PARSE_OFF_LOOP else await anyio.to_thread.run_sync(gunzip, raw, limit)
    if not raw:
        return {}
    if len(raw) <= PARSE_OFF_LOOP:
        return decode_json(raw)
    return await anyio.to_thread.run_sync(decode_json, raw)


# Body shapes ------------------------------------------------------------------------------------
# A shape is a type (str, int, bool, dict, list), a tuple of them, a dict of field -> shape (an
# object; fields not named are left alone, as UC clients send more than Cairn reads), or a list
# holding one shape (every item has it). Every field may be absent or null.
Shape = Any
_NAMES = {str: "a string", int: "an integer", bool: "a boolean", dict: "an object", list: "an array", float: "a number"}


def check(value: Any, shape: Shape, where: str = "the body") -> Any:
    """`value` if it has `shape`; InvalidArgument naming the first field that does not."""
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            raise InvalidArgument(f"{where} must be a JSON object")
        for key, sub in shape.items():
            if value.get(key) is not None:
                check(value[key], sub, key if where == "the body" else f"{where}.{key}")
        return value
    if isinstance(shape, list):
        if not isinstance(value, list):
            raise InvalidArgument(f"{where} must be an array")
        for i, item in enumerate(value):
            check(item, shape[0], f"{where}[{i}]")
        return value
    kinds = shape if isinstance(shape, tuple) else (shape,)
    # bool is an int in Python, never in JSON: true is not a version number.
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise InvalidArgument(f"{where} must be {' or '.join(_NAMES.get(k, k.__name__) for k in kinds)}")
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
        raise InvalidArgument(f"{where} is out of range: a 64-bit integer is expected")
    return value
