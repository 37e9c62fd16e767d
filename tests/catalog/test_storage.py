"""Canonical storage paths: one spelling per place, so overlap checks cannot be dodged by spelling."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from catalog.errors import InvalidArgument
from catalog.storage import ancestors, canonical, overlaps, uri, within


@pytest.mark.parametrize("given, expected", [
    ("/data/lake/t", "/data/lake/t"),
    ("/data/lake/t/", "/data/lake/t"),
    ("/data//lake/./t/../t", "/data/lake/t"),
    ("file:///data/lake/t/", "/data/lake/t"),
    ("file://localhost/data/lake/t", "/data/lake/t"),
    ("file:/data/lake/t", "/data/lake/t"),
    ("file:///data/my%20lake", "/data/my lake"),
    ("s3://bucket/lake/", "s3://bucket/lake"),
    ("S3A://Bucket/lake//t/./", "s3://bucket/lake/t"),
    ("s3n://bucket/a/../lake", "s3://bucket/lake"),
    ("s3://bucket", "s3://bucket"),
    ("gs://bucket/lake", "gs://bucket/lake"),
    ("wasbs://box@acct.blob.core.windows.net/lake", "abfss://box@acct.dfs.core.windows.net/lake"),
    ("abfs://box@acct.dfs.core.windows.net/lake/", "abfss://box@acct.dfs.core.windows.net/lake"),
])
def test_one_spelling_per_place(given: str, expected: str) -> None:
    assert canonical(given) == expected


@pytest.mark.parametrize("given, why", [
    ("../x", "is relative"), ("x/y", "is relative"), ("./x", "is relative"), ("~/x", "is relative"), ("file:x", "is relative"),
    ("", "is empty"), ("   ", "is empty"), ("file://otherhost/x", "names host"), ("http://example.com/x", "scheme 'http'"),
    ("hdfs://nn/x", "scheme 'hdfs'"), ("s3:///key", "names no bucket"), ("s3://user:pw@bucket/x", "credentials"),
    ("s3://bucket/a%2F..%2Fb", "contains '%'"), ("/data/a%2e%2e", "contains '%'"), ("file:///a%252e", "contains '%'"),
    ("/data/a\\b", "backslash"), ("/data/a\x00b", "NUL"), ("s3://bucket/x?versionId=1", "query"),
    ("abfss://acct.dfs.core.windows.net/x", "container@account"),
])
def test_refusals_name_the_path_and_why(given: str, why: str) -> None:
    with pytest.raises(InvalidArgument, match=why) as refused:
        canonical(given)
    assert refused.value.details["path"] == given.strip() or not given.strip()


def test_symlinks_are_judged_by_where_they_point(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "link")
    assert canonical(str(tmp_path / "link" / "t")) == str((tmp_path / "real" / "t").resolve())
    assert canonical(f"file://{tmp_path}/link/") == str((tmp_path / "real").resolve())


def test_overlap_is_by_whole_segments() -> None:
    assert overlaps("/lake", "/lake/t") and overlaps("/lake/t", "/lake") and overlaps("/lake", "/lake")
    assert not overlaps("/lake", "/lakehouse") and not overlaps("s3://b/lake", "/lake")
    assert within("/anything", "/") and within("s3://b/x", "s3://b") and not within("s3://b2/x", "s3://b")
    assert overlaps(canonical("s3a://bucket/lake"), canonical("s3://bucket/lake/t"))
    assert ancestors("/a/b/c") == ["/", "/a", "/a/b"] and ancestors("/") == [] and ancestors("s3://b") == []
    assert uri("/a b") == "file:///a%20b" and canonical(uri("/a b")) == "/a b" and uri("s3://b/x") == "s3://b/x"
