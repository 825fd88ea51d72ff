"""How long a rerun takes when every task is up to date, against --collect-only of the same plan.

    python benchmarks/bench_rerun.py [--tasks 1000] [--repeat 3]

Makes a plan of N `true` commands (in 10 phases of 10 groups, each task depending on the one
before it in its group), runs it once so every task has passed, then times, as whole processes,
`pytest --collect-only -q` and a full rerun in which every task is up to date. The target is a
rerun at most twice as long as the preview.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def write_plan(root: Path, tasks: int) -> None:
    phases = root / "phases"
    phases.mkdir(parents=True)
    per_group = max(1, tasks // 100)
    n = 0
    for p in range(10):
        lines = [f"phase: {p}", f"depends_on: [{p - 1}]" if p else "", "groups:"]
        for g in range(10):
            lines += [f"  - id: g{g}", "    tasks:"]
            for i in range(per_group):
                dep = f', depends_on: ["t{p}.{g}.{i - 1}"]' if i else ""
                lines.append(f'      - {{id: "t{p}.{g}.{i}", type: command, run: "true"{dep}}}')
                n += 1
        (phases / f"p{p:02d}.yaml").write_text("\n".join(lines) + "\n")


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-3000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    with tempfile.TemporaryDirectory(prefix="orch-bench-rerun-") as tmp:
        root = Path(tmp)
        (root / "pytest.ini").write_text("[pytest]\n")
        write_plan(root, args.tasks)
        first = timed(pytest, root)
        collect = [timed(pytest + ["--collect-only"], root) for _ in range(args.repeat)]
        rerun = [timed(pytest, root) for _ in range(args.repeat)]
    c, r = statistics.median(collect), statistics.median(rerun)
    print(f"tasks: {args.tasks}  first run: {first:.2f} s")
    print(f"--collect-only: {c:.2f} s (median of {args.repeat})")
    print(f"up-to-date rerun: {r:.2f} s (median of {args.repeat})")
    print(f"rerun / collect-only: {r / c:.2f} (target <= 2.0)")


if __name__ == "__main__":
    main()
