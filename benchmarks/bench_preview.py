"""How long the plan preview takes at scale, against plain pytest collecting as many tests.

    python benchmarks/bench_preview.py [--tasks 5000] [--repeat 3]

Makes a plan of N `true` commands in 10 phases of 10 groups (each phase depending on the one
before it, each task on the one before it in its group, as a roadmap does), and a plain test file
with one test parametrized N times. Times, as whole processes (the best of --repeat runs, wall and
CPU time each):

- `pytest --collect-only` on the plan: pytest's tree plus pytest-orch's preview table;
- `pytest --collect-only -q` on the plan: one node id per task;
- `pytest --collect-only` and `pytest --collect-only -q` on the plain test file: the floor any pytest
  item costs to collect, with pytest's tree and with one node id per test.

Target: each plan timing within 2 x the plain collection of the same kind (and the tree-and-preview
timing also within 2 x the plain -q one, the stricter reading).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_rerun import write_plan  # the same roadmap-shaped plan as the rerun benchmark


def write_plain(root: Path, tests: int) -> None:
    (root / "test_plain.py").write_text(
        "import pytest\n\n\n"
        f"@pytest.mark.parametrize('i', range({tests}))\n"
        "def test_plain(i):\n    pass\n")


def timed(cmd: list[str], cwd: Path) -> tuple[float, float, str]:
    """Wall seconds and CPU seconds (user + system) of one process, and its output.

    The CPU time is the steadier figure on a shared machine: other processes' load stretches
    the wall time, not the work done.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu, proc.stdout


def best(cmd: list[str], cwd: Path, repeat: int) -> tuple[tuple[float, float], str]:
    """The fastest of ``repeat`` runs, wall and CPU: what the work costs, with the least of other
    processes' interference on a shared machine (timeit's reasoning)."""
    runs = [timed(cmd, cwd) for _ in range(repeat)]
    return (min(w for w, _, _ in runs), min(c for _, c, _ in runs)), runs[-1][2]


def show(label: str, figure: tuple[float, float], *against: tuple[str, tuple[float, float]]) -> None:
    ratios = "".join(f"  {figure[1] / base[1]:.2f} x {name} (wall {figure[0] / base[0]:.2f} x)"
                     for name, base in against)
    print(f"{label:<44} wall {figure[0]:5.2f} s  cpu {figure[1]:5.2f} s{ratios}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    pytest = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only"]
    with tempfile.TemporaryDirectory(prefix="orch-bench-preview-") as tmp:
        root = Path(tmp)
        (root / "plan").mkdir()
        (root / "plain").mkdir()
        for sub in ("plan", "plain"):
            (root / sub / "pytest.ini").write_text("[pytest]\n")
        write_plan(root / "plan", args.tasks)
        write_plain(root / "plain", args.tasks)
        plain, out = best(pytest + ["-q"], root / "plain", args.repeat)
        assert f"{args.tasks} tests collected" in out, out[-500:]
        plain_tree, out = best(pytest, root / "plain", args.repeat)
        assert f"{args.tasks} tests collected" in out, out[-500:]
        preview, out = best(pytest, root / "plan", args.repeat)
        assert "critical path" in out, out[-500:]
        quiet, out = best(pytest + ["-q"], root / "plan", args.repeat)
        assert f"{args.tasks} tests collected" in out, out[-500:]
    print(f"tasks: {args.tasks} (best of {args.repeat} runs each, whole processes)")
    show("plain pytest --collect-only", plain_tree)
    show("plain pytest --collect-only -q", plain)
    show("plan --collect-only (tree and preview)", preview, ("plain tree", plain_tree), ("plain -q", plain))
    show("plan --collect-only -q", quiet, ("plain -q", plain))
    print("target: within 2.00 x plain")


if __name__ == "__main__":
    main()
