"""Benchmark the -n scheduler on fixed workloads; prints a Markdown table.

    python benchmarks/bench_schedule.py                 # every workload, -n 1 and -n 4
    python benchmarks/bench_schedule.py --only dag01 --workers 4
    python benchmarks/bench_schedule.py --overhead      # also: per-task overhead at -n 0
    python benchmarks/bench_schedule.py --floor         # also: plain pytest-xdist, same commands

For each run it reports the whole-process wall time, the lower bound LB = max(critical path,
total work / workers) from the nominal task durations, the schedule's span (first task start to
last task end, from reports/run.json) over LB, the time from launch to the first task start, and
the number of tasks that started before one of their dependencies had finished (must be 0).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

PYTEST = [sys.executable, "-m", "pytest"]
# bytecode is cached as it is for any user (PYTHONDONTWRITEBYTECODE would recompile every module in
# every worker), under a prefix so the source tree stays clean
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ENV["PYTHONPYCACHEPREFIX"] = os.path.join(tempfile.gettempdir(), "orch-bench-pycache")


def layered_dag(seed: int = 20261121, tasks: int = 120, layers: int = 10) -> dict[str, list[str]]:
    """A seeded random layered DAG: task -> its 1 to 3 dependencies in earlier layers."""
    rng = random.Random(seed)
    per_layer = tasks // layers
    names = [[f"t{layer:02d}_{i:02d}" for i in range(per_layer)] for layer in range(layers)]
    deps: dict[str, list[str]] = {}
    for layer, row in enumerate(names):
        for name in row:
            if layer == 0:
                deps[name] = []
                continue
            # mostly the previous layer, sometimes one further back
            pool = names[layer - 1] * 3 + [n for earlier in names[max(0, layer - 3):layer - 1] for n in earlier]
            deps[name] = sorted(set(rng.sample(pool, rng.randint(1, 3))))
    return deps


def workloads() -> dict[str, tuple[dict[str, list[str]], str, float]]:
    """name -> (dependencies, command, nominal seconds per task)."""
    dag = layered_dag()
    chain = {f"c{i:02d}": ([f"c{i - 1:02d}"] if i else []) for i in range(40)}
    return {
        "dag01": (dag, "sleep 0.1", 0.1),
        "dag05": (dag, "sleep 0.5", 0.5),
        "indep": ({f"i{i:03d}": [] for i in range(200)}, "sleep 0.05", 0.05),
        "chain": (chain, "sleep 0.02", 0.02),
        "true1000": ({f"x{i:04d}": [] for i in range(1000)}, "true", 0.0),
    }


def plan_yaml(deps: dict[str, list[str]], command: str) -> str:
    lines = ["phase: 1", "name: bench", "groups:", "  - id: g", "    tasks:"]
    for name, needs in deps.items():
        lines.append(f'      - {{id: "{name}", type: command, run: "{command}", depends_on: {json.dumps(needs)}}}')
    return "\n".join(lines) + "\n"


def lower_bound(deps: dict[str, list[str]], seconds: float, workers: int) -> float:
    finish: dict[str, float] = {}
    for name in deps:  # written in dependency order
        finish[name] = seconds + max((finish[d] for d in deps[name]), default=0.0)
    return max(max(finish.values(), default=0.0), seconds * len(deps) / max(workers, 1))


def measured_bound(deps: dict[str, list[str]], tasks: dict[str, tuple], workers: int) -> float:
    """LB again, from each task's measured duration: what is left is the scheduler's own cost."""
    took = {k: (v[1] - v[0]) if v[0] is not None and v[1] is not None else 0.0 for k, v in tasks.items()}
    finish: dict[str, float] = {}
    for name in deps:
        finish[name] = took.get(name, 0.0) + max((finish[d] for d in deps[name]), default=0.0)
    return max(max(finish.values(), default=0.0), sum(took.values()) / max(workers, 1)) or float("nan")


def parse_iso(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# The end of a run, timed apart on the controller: when xdist had stopped every worker (its
# NodeManager.teardown_nodes, in sessionfinish, returned), how long pytest-orch's reports took
# (Controller._write_reports, notifications included), and when unconfigure ended (what is left
# is the interpreter's own exit).
END_TIMING_PLUGIN = """
import json, os, time
import pytest
marks = {"down": [], "reports": 0.0}
def timed(func, after):
    def wrapper(*args, **kwargs):
        start = time.time()
        try:
            return func(*args, **kwargs)
        finally:
            after(start, time.time())
    return wrapper
@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session):
    config = session.config
    manager = getattr(config.pluginmanager.getplugin("dsession"), "nodemanager", None)
    if manager is not None:
        manager.teardown_nodes = timed(manager.teardown_nodes, lambda s, e: marks["down"].append(e))
    controller = config.pluginmanager.getplugin("orch-controller")
    controller._write_reports = timed(controller._write_reports, lambda s, e: marks.update(reports=e - s))
@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    if not hasattr(config, "workerinput"):
        marks["unconfigured"] = time.time()
        with open(os.path.join(str(config.rootpath), "end-timing.json"), "w") as out:
            json.dump(marks, out)
"""


def run_plan(deps: dict[str, list[str]], command: str, workers: int, env: dict[str, str] | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="orch-bench-") as tmp:
        root = Path(tmp)
        (root / "phases").mkdir()
        (root / "phases" / "bench.yaml").write_text(plan_yaml(deps, command))
        (root / "pytest.ini").write_text("[pytest]\n")
        (root / "orch_bench_timing.py").write_text(END_TIMING_PLUGIN)
        args = PYTEST + ["-q", "-p", "no:cacheprovider", "--force", "-p", "orch_bench_timing"]
        args += ["-n", str(workers)] if workers else ["-p", "no:xdist"]
        launch = time.time()
        t0 = time.perf_counter()
        proc = subprocess.run(args, cwd=root, capture_output=True, text=True,
                              env={**ENV, "PYTHONPATH": str(root), **(env or {})})
        wall = time.perf_counter() - t0
        exited = launch + wall
        run = json.loads((root / "reports" / "run.json").read_text())
        end = json.loads((root / "end-timing.json").read_text())
    tasks = {t["id"]: t for t in run["tasks"]}
    starts = {k: parse_iso(t["started"]) for k, t in tasks.items() if t["started"]}
    ends = {k: parse_iso(t["finished"]) for k, t in tasks.items() if t["finished"]}
    violations = sum(1 for k, needs in deps.items() for d in needs
                     if k in starts and d in ends and starts[k] < ends[d])
    outcomes: dict[str, int] = {}
    for t in tasks.values():
        outcomes[t["outcome"]] = outcomes.get(t["outcome"], 0) + 1
    last = max(ends.values()) if ends else launch
    return {
        "wall": wall, "exit": proc.returncode, "outcomes": outcomes, "violations": violations,
        # last task's end -> every worker stopped; the reports; unconfigured -> the process has exited
        "down": max(end["down"]) - last if end["down"] else 0.0,
        "reports": end["reports"],
        "exited": exited - end["unconfigured"],
        "span": max(ends.values()) - min(starts.values()) if starts else 0.0,
        "first": min(starts.values()) - launch if starts else float("nan"),
        "tail": proc.stdout[-2000:] + proc.stderr[-2000:],
        "tasks": {k: (starts.get(k), ends.get(k), t["worker"]) for k, t in tasks.items()},
    }


def plain_overhead(count: int) -> float:
    """Wall time of a plain pytest file with ``count`` tests, each running ``true``."""
    with tempfile.TemporaryDirectory(prefix="orch-bench-plain-") as tmp:
        root = Path(tmp)
        (root / "pytest.ini").write_text("[pytest]\n")
        (root / "test_plain.py").write_text(
            "import subprocess, pytest\n"
            f"@pytest.mark.parametrize('i', range({count}))\n"
            "def test_true(i):\n    subprocess.run(['true'], check=True)\n")
        t0 = time.perf_counter()
        subprocess.run(PYTEST + ["-q", "-p", "no:cacheprovider", "-p", "no:xdist"], cwd=root,
                       capture_output=True, check=True, env=ENV)
        return time.perf_counter() - t0


# A conftest that records each plain test's setup start and teardown end, as run.json does for tasks.
FLOOR_CONFTEST = """
import json, time
intervals = {}
def pytest_runtest_logreport(report):
    start, stop = intervals.get(report.nodeid, (None, None))
    if report.when == "setup":
        start = report.start
    if report.when == "teardown":
        stop = report.stop
    intervals[report.nodeid] = (start, stop)
def pytest_sessionfinish(session):
    if not hasattr(session.config, "workerinput"):
        with open("intervals.json", "w") as f:
            json.dump(intervals, f)
"""


def run_plain(count: int, command: str, workers: int) -> dict:
    """The floor: ``count`` plain pytest tests running ``command``, on plain pytest-xdist.

    No plan, no dependencies, xdist's own load scheduling: what any pytest item running the same
    subprocess costs, start-up and shutdown included.
    """
    with tempfile.TemporaryDirectory(prefix="orch-bench-floor-") as tmp:
        root = Path(tmp)
        (root / "pytest.ini").write_text("[pytest]\n")
        (root / "conftest.py").write_text(FLOOR_CONFTEST)
        (root / "test_floor.py").write_text(
            "import subprocess, pytest\n"
            f"@pytest.mark.parametrize('i', range({count}))\n"
            f"def test_command(i):\n    subprocess.run({command.split()!r}, check=True)\n")
        launch = time.time()
        t0 = time.perf_counter()
        proc = subprocess.run(PYTEST + ["-q", "-p", "no:cacheprovider", "-n", str(workers)], cwd=root,
                              capture_output=True, text=True, env=ENV)
        wall = time.perf_counter() - t0
        intervals = json.loads((root / "intervals.json").read_text())
    starts = [s for s, _ in intervals.values() if s is not None]
    ends = [e for _, e in intervals.values() if e is not None]
    return {"wall": wall, "exit": proc.returncode, "span": max(ends) - min(starts),
            "first": min(starts) - launch, "tail": proc.stdout[-2000:] + proc.stderr[-2000:]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", help="workload names (default: all)")
    parser.add_argument("--workers", type=int, action="append", help="-n values (default: 1 and 4)")
    parser.add_argument("--overhead", action="store_true", help="also measure per-task overhead at -n 0")
    parser.add_argument("--floor", action="store_true",
                        help="also run each workload's commands as plain pytest tests on plain xdist")
    parser.add_argument("--no-prefetch", action="store_true", help="set ORCH_PREFETCH=0 (compare)")
    parser.add_argument("--no-early-start", action="store_true", help="set ORCH_EARLY_START=0 (compare)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per row; each figure is their median")
    options = parser.parse_args()
    env = {"ORCH_PREFETCH": "0"} if options.no_prefetch else {}
    if options.no_early_start:
        env["ORCH_EARLY_START"] = "0"
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, {datetime.now().date().isoformat()}")
    print()
    print(f"median of {options.repeat} runs per row; the floor rows alternate with pytest-orch's")
    print()
    print("| workload | -n | tasks | wall s | LB s | wall/LB | span s | span/LB | span/LBm | launch->first s "
          "| last->workers down s | reports s | exit s | dep. violations | outcomes |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    failed = False
    run_plan({"warm": []}, "true", 2, env)  # fills the bytecode cache
    for name, (deps, command, seconds) in workloads().items():
        if options.only and name not in options.only:
            continue
        for workers in options.workers or [1, 4]:
            lb = lower_bound(deps, seconds, workers)
            work_lb = seconds * len(deps) / max(workers, 1)
            with_floor = options.floor and workers > 0 and seconds > 0 and abs(lb - work_lb) < 1e-9
            runs, plains = [], []
            for _ in range(max(options.repeat, 1)):  # interleaved: both see the same machine
                runs.append(run_plan(deps, command, workers, env))
                if with_floor:
                    plains.append(run_plain(len(deps), command, workers))
            r = {key: statistics.median(x[key] for x in runs)
                 for key in ("wall", "span", "first", "down", "reports", "exited")}
            r["lbm"] = statistics.median(x["span"] / measured_bound(deps, x["tasks"], workers) for x in runs)
            violations = sum(x["violations"] for x in runs)
            def ratio(x: float, lb: float = lb) -> str:
                return f"{x / lb:.3f}" if lb > 0 else "-"
            outcomes = ", ".join(f"{k} {v}" for k, v in sorted(runs[-1]["outcomes"].items()))
            print(f"| {name} | {workers} | {len(deps)} | {r['wall']:.2f} | {lb:.2f} | {ratio(r['wall'])} | "
                  f"{r['span']:.2f} | {ratio(r['span'])} | {r['lbm']:.3f} | {r['first']:.2f} | "
                  f"{r['down']:.2f} | {r['reports']:.2f} | {r['exited']:.2f} | {violations} | {outcomes} |",
                  flush=True)
            bad = [x for x in runs if x["violations"] or x["exit"] != 0]
            if bad:
                failed = True
                print(bad[0]["tail"], file=sys.stderr)
            if with_floor:
                # only where the bound is the work, not a dependency path: plain xdist keeps no order
                plain = {key: statistics.median(x[key] for x in plains) for key in ("wall", "span", "first")}
                plain["exit"] = max(x["exit"] for x in plains)
                plain["tail"] = plains[-1]["tail"]
                print(f"| {name}, floor | {workers} | {len(deps)} | {plain['wall']:.2f} | {work_lb:.2f} | "
                      f"{plain['wall'] / work_lb:.3f} | {plain['span']:.2f} | {plain['span'] / work_lb:.3f} | - | "
                      f"{plain['first']:.2f} | - | - | - | - | exit {plain['exit']} |", flush=True)
                # with early start the first tasks run before any worker is up, which lengthens the span:
                # launch to the last task's end compares the two runs whatever the start
                print(f"| {name}: span / floor's; launch->last end / floor's | {workers} | | | | | | "
                      f"{r['span'] / plain['span']:.3f} | | "
                      f"{(r['first'] + r['span']) / (plain['first'] + plain['span']):.3f} | | | | | |", flush=True)
                if plain["exit"] != 0:
                    print(plain["tail"], file=sys.stderr)
    if options.overhead:
        one = {"x0": []}
        many = workloads()["true1000"][0]
        # each of the four processes --repeat times, interleaved, the best of each (as timeit): on a machine
        # shared with other work a single run moved the ratio by 0.5 either way, and load only ever adds
        walls: dict[str, list[float]] = {"orch many": [], "orch one": [], "plain many": [], "plain one": []}
        for _ in range(max(1, options.repeat)):
            walls["orch many"].append(run_plan(many, "true", 0)["wall"])
            walls["orch one"].append(run_plan(one, "true", 0)["wall"])
            walls["plain many"].append(plain_overhead(len(many)))
            walls["plain one"].append(plain_overhead(1))
        best = {k: min(v) for k, v in walls.items()}
        orch = (best["orch many"] - best["orch one"]) / (len(many) - 1)
        plain = (best["plain many"] - best["plain one"]) / (len(many) - 1)
        print()
        print(f"per-task overhead at -n 0 ('true', best of {max(1, options.repeat)}): pytest-orch "
              f"{orch * 1000:.2f} ms, plain pytest test running the same command {plain * 1000:.2f} ms, "
              f"ratio {orch / plain:.2f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
