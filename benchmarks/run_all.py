"""Run every benchmark at its quick size (what `make bench` does), with a progress bar on stderr
and each benchmark's JSON on stdout as it finishes. Extra arguments go to every benchmark."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def main(argv: list[str]) -> int:
    scripts = sorted(p for p in Path(__file__).parent.glob("*.py") if p.name != Path(__file__).name)
    args = argv or ["--quick"]
    failed = []
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True)) as progress:
        task = progress.add_task("benchmarks", total=len(scripts))
        for script in scripts:
            progress.update(task, description=f"benchmarks: {script.name}")
            start = time.perf_counter()
            run = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True)
            sys.stdout.write(run.stdout)
            sys.stdout.flush()
            if run.returncode != 0:
                failed.append(script.name)
                progress.console.print(f"[red]{script.name} failed[/red] ({run.returncode}):\n{run.stderr[-2000:]}")
            else:
                progress.console.print(f"{script.name}: done in {time.perf_counter() - start:.1f} s")
            progress.advance(task)
    if failed:
        Console(stderr=True).print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
