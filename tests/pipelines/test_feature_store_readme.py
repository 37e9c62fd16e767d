"""The README's feature store example runs as written."""

from __future__ import annotations

import re
from pathlib import Path


def test_readme_feature_store_example_runs(capsys) -> None:
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = text.split("## Feature store", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    exec(compile(code, "README.md#feature-store", "exec"), {})
    out = capsys.readouterr().out
    assert "[{'table': 'main.ml.user_features', 'version': 2}]" in out
    assert "[{'user_id': 1, 'orders_30d': 5}, {'user_id': 2, 'orders_30d': 4}]" in out
