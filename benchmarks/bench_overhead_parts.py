"""Where a task's time goes at -n 0: CPU time per part, per task, for 1000 `true` commands.

    python benchmarks/bench_overhead_parts.py            # 3 runs, medians
    python benchmarks/bench_overhead_parts.py --runs 5 --tasks 2000

`bench_schedule.py --overhead` times whole processes, which other work on the machine stretches.
This one measures the CPU time of pytest's own thread (``time.thread_time``: time spent waiting
for a core is not counted) inside each part, through a conftest that wraps the functions named
below, and the same for a plain pytest file whose tests run ``subprocess.run(["true"])``. The
parts nest (the fingerprint is part of the decision, the spawn part of the handler); the wrapping
itself adds a little to each.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_schedule import ENV, PYTEST, plan_yaml  # the same plan and environment as its --overhead

# (label, module, owner attribute or "", function); the label's indent shows what it is part of
PARTS = [
    ("TaskItem.runtest: the handler and its wrapping", "pytest_orch.collect", "TaskItem", "runtest"),
    ("  command handler", "pytest_orch.handlers.command", "CommandHandler", "run"),
    ("    spawn (subprocess.Popen)", "subprocess", "Popen", "__init__"),
    ("    wait for the exit, read the output", "pytest_orch.handlers.command", "", "_wait_capturing"),
    ("    watchdog registration", "pytest_orch.handlers.group_watchdog", "GroupWatchdog", "_send"),
    ("decide (up to date or not)", "pytest_orch.controller", "Controller", "decide"),
    ("  fingerprint", "pytest_orch.history", "History", "fingerprint"),
    ("state: the task_start event", "pytest_orch.history", "History", "task_started"),
    ("state: the result's commit", "pytest_orch.history", "History", "task_ended"),
    ("pytest-dependency: dependencies marked done", "pytest_orch.compat", "", "mark_dependencies_done"),
    ("reports (after the loop)", "pytest_orch.controller", "Controller", "_write_reports"),
]
PLAIN_PARTS = [part for part in PARTS if part[0].strip().startswith("spawn")]

CONFTEST = """
import importlib, json, os, time
import pytest
PARTS = {parts!r}
spent = {{}}
def _wrap(label, module, owner, name):
    try:
        target = importlib.import_module(module)
    except ImportError:
        return
    target = getattr(target, owner) if owner else target
    original = getattr(target, name, None)
    if original is None:
        return
    def timed(*args, **kwargs):
        start = time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            spent[label] = spent.get(label, 0.0) + time.thread_time() - start
    setattr(target, name, timed)
for part in PARTS:
    _wrap(*part)
@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session):
    start = time.thread_time()
    try:
        return (yield)
    finally:
        spent["run loop, all"] = time.thread_time() - start
def pytest_unconfigure(config):
    with open("parts.json", "w") as f:
        json.dump(spent, f)
"""


def measure(tasks: int, plain: bool) -> dict[str, float]:
    """One whole run; CPU seconds per part, per task."""
    with tempfile.TemporaryDirectory(prefix="orch-bench-parts-") as tmp:
        root = Path(tmp)
        (root / "pytest.ini").write_text("[pytest]\n")
        (root / "conftest.py").write_text(CONFTEST.format(parts=PLAIN_PARTS if plain else PARTS))
        args = PYTEST + ["-q", "-p", "no:cacheprovider", "-p", "no:xdist"]
        if plain:
            (root / "test_plain.py").write_text(
                "import subprocess, pytest\n"
                f"@pytest.mark.parametrize('i', range({tasks}))\n"
                "def test_true(i):\n    subprocess.run(['true'], check=True)\n")
        else:
            (root / "phases").mkdir()
            (root / "phases" / "bench.yaml").write_text(
                plan_yaml({f"x{i:04d}": [] for i in range(tasks)}, "true"))
            args.append("--force")
        proc = subprocess.run(args, cwd=root, capture_output=True, text=True, env=ENV)
        if proc.returncode != 0:
            sys.exit(proc.stdout[-2000:] + proc.stderr[-2000:])
        return {k: v / tasks for k, v in json.loads((root / "parts.json").read_text()).items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    orch: list[dict[str, float]] = []
    plain: list[dict[str, float]] = []
    for _ in range(options.runs):  # interleaved: a burst of load hits both
        orch.append(measure(options.tasks, plain=False))
        plain.append(measure(options.tasks, plain=True))

    def median(runs: list[dict[str, float]], label: str) -> str:
        values = [r[label] for r in runs if label in r]
        return f"{statistics.median(values) * 1000:.3f}" if values else "-"

    print(f"{options.tasks} tasks, median of {options.runs} runs, CPU ms per task (pytest's thread)")
    print()
    print("| part | pytest-orch | plain pytest test |")
    print("|---|---|---|")
    print(f"| run loop, all | {median(orch, 'run loop, all')} | {median(plain, 'run loop, all')} |")
    for label, *_ in PARTS:
        shown = label.replace("  ", "&nbsp;&nbsp;")
        other = median(plain, label) if any(part[0] == label for part in PLAIN_PARTS) else ""
        print(f"| {shown} | {median(orch, label)} | {other} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
