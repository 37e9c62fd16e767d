"""Storage paths: one canonical spelling for every location, and whether two of them overlap.

Pure functions (the only I/O is resolving symlinks of local paths). A location is either an
absolute local path (given as `/abs/path` or `file:///abs/path`) or an object-store URI
(`s3://bucket/prefix`). Local paths are canonical once `..`, `.`, repeated slashes and symlinks are
resolved and the trailing slash is gone; URIs once the scheme is lower-case and `.`/`..` segments
and trailing slashes are gone. Relative paths are refused: what they mean depends on the working
directory of whichever process reads them.

>>> canonical("file:///data/lake/../lake/orders/")
'/data/lake/orders'
>>> canonical("S3A://Bucket/raw//events/")
's3://bucket/raw/events'
>>> overlaps("/data/lake", "/data/lake/orders"), overlaps("/data/lake", "/data/lakehouse")
(True, False)
>>> ancestors("s3://b/x/y")
['s3://b', 's3://b/x']
"""

from __future__ import annotations

import os
import posixpath
import re
from urllib.parse import unquote, urlsplit

from catalog.errors import InvalidArgument

# Object stores Cairn accepts as external storage; `file` is local.
OBJECT_STORE_SCHEMES = frozenset({"s3", "s3a", "s3n", "gs", "abfs", "abfss", "wasb", "wasbs", "r2", "oss"})
# Spellings of one store: canonical URIs use one scheme (and Azure's DFS host) so two spellings of
# the same files can never pass for two places that do not overlap.
_SCHEME_ALIASES = {"s3a": "s3", "s3n": "s3", "abfs": "abfss", "wasb": "abfss", "wasbs": "abfss"}
_AZURE = frozenset({"abfss"})
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
MAX_LENGTH = 2000


def _refuse(path: object, why: str) -> InvalidArgument:
    return InvalidArgument(
        f"storage location {path!r} {why}; give an absolute path (/data/lake/t), a file:/// URI or an object-store URI (s3://bucket/prefix)",
        path=str(path),
    )


def canonical(path: str) -> str:
    """The canonical spelling of a storage location, or InvalidArgument naming it.

    Local paths come back as plain absolute paths with symlinks resolved (what Delta readers are
    handed); object-store URIs as `scheme://bucket/key`.
    """
    if not isinstance(path, str) or not path.strip():
        raise _refuse(path, "is empty")
    text = path.strip()
    if len(text) > MAX_LENGTH:
        raise _refuse(text[:80] + "...", f"is longer than {MAX_LENGTH} characters")
    if "\x00" in text or "\\" in text:
        raise _refuse(text, "contains a NUL character or a backslash")
    m = _SCHEME.match(text)
    if m is None:
        if not text.startswith("/"):
            raise _refuse(text, "is relative")
        return _local(_no_percent(text, text))
    scheme = m[1].lower()
    parts = urlsplit(text)
    if parts.query or parts.fragment:
        raise _refuse(text, "has a query or fragment")
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise _refuse(text, f"names host {parts.netloc!r}; file URIs must be local")
        local = _no_percent(unquote(parts.path), text)
        if not local.startswith("/"):
            raise _refuse(text, "is relative")
        return _local(local)
    if scheme not in OBJECT_STORE_SCHEMES:
        raise _refuse(text, f"has scheme {scheme!r}, not one of file, {', '.join(sorted(OBJECT_STORE_SCHEMES))}")
    scheme = _SCHEME_ALIASES.get(scheme, scheme)
    host = parts.netloc.lower()
    if scheme in _AZURE:  # container@account.dfs.core.windows.net; blob and dfs hosts reach the same files
        host = host.replace(".blob.core.windows.net", ".dfs.core.windows.net")
        if host.count("@") != 1 or not all(host.split("@")):
            raise _refuse(text, "names no container@account")
    elif not host or "@" in host or ":" in host:
        raise _refuse(text, "names no bucket (or carries credentials or a port in it)")
    # Keys are taken literally: a percent sign could be decoded by one reader and not another.
    key = _no_percent(parts.path, text)
    key = posixpath.normpath("/" + key.lstrip("/")) if key.strip("/") else ""
    key = "" if key == "/" else key
    return f"{scheme}://{host}{key}"


def _no_percent(path: str, text: str) -> str:
    if "%" in path:
        raise _refuse(text, "contains '%' (give the path unencoded, or one percent-encoding in a file URI)")
    return path


def _local(path: str) -> str:
    # realpath resolves `..` and every symlink of the part that exists; a symlink planted inside an
    # allowed folder that points elsewhere is judged by where it points.
    return os.path.realpath(posixpath.normpath(path))


def within(child: str, parent: str) -> bool:
    """Whether canonical location `child` is `parent` or lies below it."""
    if child == parent:
        return True
    prefix = parent if parent.endswith("/") else parent + "/"
    return child.startswith(prefix)


def overlaps(a: str, b: str) -> bool:
    """Whether two canonical locations share any file: one is the other or lies inside it."""
    return within(a, b) or within(b, a)


def ancestors(path: str) -> list[str]:
    """Every canonical location strictly above `path`, shortest first (a bucket is the top of a URI)."""
    if "://" in path:
        scheme, rest = path.split("://", 1)
        bucket, _, key = rest.partition("/")
        top = f"{scheme}://{bucket}"
        segments = [s for s in key.split("/") if s]
        out, cur = [top], top
    else:
        segments = [s for s in path.split("/") if s]
        out, cur = ["/"], ""
    if not segments:
        return []
    for seg in segments[:-1]:
        cur = f"{cur}/{seg}"
        out.append(cur)
    return out


def uri(location: str) -> str:
    """A canonical location as a URI (local paths as file:///...), as Unity Catalog shows them."""
    if location.startswith("/"):
        from pathlib import PurePosixPath

        return PurePosixPath(location).as_uri()
    return location
