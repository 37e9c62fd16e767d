"""`make bench`'s runner: each benchmark's JSON on stdout, progress and failures on stderr."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_runner_reports_progress_and_keeps_stdout_json(tmp_path: Path) -> None:
    shutil.copy(ROOT / "benchmarks" / "run_all.py", tmp_path / "run_all.py")
    (tmp_path / "a_fast.py").write_text("import json, sys\nprint(json.dumps({'bench': 'a', 'args': sys.argv[1:]}))\n")
    (tmp_path / "b_broken.py").write_text("raise SystemExit('b cannot run here')\n")
    (tmp_path / "c_fast.py").write_text("import json\nprint(json.dumps({'bench': 'c'}))\n")
    res = subprocess.run([sys.executable, str(tmp_path / "run_all.py"), "--quick"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 1  # one benchmark failed
    assert [json.loads(line) for line in res.stdout.splitlines()] == [{"bench": "a", "args": ["--quick"]}, {"bench": "c"}]
    assert "a_fast.py: done in" in res.stderr and "b_broken.py failed" in res.stderr and "b cannot run here" in res.stderr
    assert "3/3" in res.stderr and "failed: b_broken.py" in res.stderr  # the bar's last state, then the summary
