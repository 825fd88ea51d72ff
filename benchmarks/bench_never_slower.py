"""Is -n ever slower than no -n? Whole processes on the demo plan and a handler-heavy plan.

    python benchmarks/bench_never_slower.py              # 5 interleaved rounds of -n 0, -n 2, -n 4
    python benchmarks/bench_never_slower.py --rounds 9 --plans handlers

Each plan runs in a scratch git repository: once to warm up (it leaves the durations a rerun
estimates from, as any rerun of a roadmap has), then in rounds, each round running every -n
setting once with --force (so every task runs) and the manual steps confirmed. The table gives
the median wall time of each setting and its ratio to the median without -n (target: <= 1.02).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ENV["PYTHONPYCACHEPREFIX"] = os.path.join(tempfile.gettempdir(), "orch-bench-pycache")
ENV["PATH"] = os.path.dirname(sys.executable) + os.pathsep + ENV.get("PATH", "")  # the plans run python3


def handler_heavy_plan(root: Path, phases: int = 4) -> None:
    """64 tasks: config edits of three files, generated files, a 0.1 s command and a checkpoint per phase."""
    (root / "package.json").write_text('{\n  "name": "app",\n  "jest": {"collectCoverageFrom": ["src/**/*.ts"]}\n}\n')
    (root / "ci.yml").write_text("name: ci\njobs:\n  test:\n    runs-on: ubuntu-latest\n")
    (root / "pyproject.toml").write_text("[tool.coverage.report]\nfail_under = 60\n")
    (root / "phases").mkdir()
    for p in range(1, phases + 1):
        edits = []
        for i in range(8):
            file, key = [("package.json", f"jest.coverageThreshold.p{p}.k{i}"), ("ci.yml", f"jobs.p{p}.k{i}"),
                         ("pyproject.toml", f"tool.orch.p{p}.k{i}")][i % 3]
            edits.append(f'      - {{id: "{p}.c{i}", type: config_edit, file: {file}, set: {{{key}: {i}}}}}')
        gens = [f'      - {{id: "{p}.g{i}", type: file_generation, target: docs/p{p}/f{i}.md, '
                f'content: "# {p}.{i} {{{{ APP }}}}\\n"}}' for i in range(6)]
        depends = f"depends_on: [{p - 1}]\n" if p > 1 else ""
        (root / "phases" / f"p{p}.yaml").write_text(
            f"phase: {p}\n{depends}vars: {{APP: app}}\ngroups:\n"
            "  - id: cfg\n    execution: sequential\n    tasks:\n" + "\n".join(edits) + "\n"
            "  - id: gen\n    tasks:\n" + "\n".join(gens) + "\n"
            f'  - id: cmd\n    tasks:\n      - {{id: "{p}.x", type: command, run: "sleep 0.1"}}\n'
            f'checkpoints:\n  - {{id: "{p}.check", type: command, run: "python3 -c pass"}}\n')


def demo_plan(root: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".orch", "node_modules", "reports")
    shutil.copytree(REPO / "examples" / "webapp", root, ignore=ignore, dirs_exist_ok=True)
    shutil.copytree(REPO / "phases", root / "phases", ignore=ignore)


PLANS = {"demo": (demo_plan, ["--confirm", "3.5"]), "handlers": (handler_heavy_plan, [])}


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def run(root: Path, workers: int, extra: list[str]) -> tuple[float, float]:
    """Wall time and CPU time (the process and its children: workers, commands) of one run."""
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--force", *extra]
    args += ["-n", str(workers)] if workers else []
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=root, capture_output=True, text=True, env=ENV)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-3000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--plans", nargs="*", default=list(PLANS))
    parser.add_argument("--workers", type=int, nargs="*", default=[0, 2, 4])
    options = parser.parse_args()
    print(f"{date.today()} {os.cpu_count()} cores, Python {sys.version.split()[0]}; median of {options.rounds}")
    # CPU time too: on a shared machine single walls scatter by more than the 2 % the target allows
    print("\n| plan | -n | median wall s | runs | / no -n | median CPU s | CPU / no -n |")
    print("|---|---|---|---|---|---|---|")
    for name in options.plans:
        make, extra = PLANS[name]
        with tempfile.TemporaryDirectory(prefix=f"orch-never-{name}-") as tmp:
            root = Path(tmp)
            make(root)
            (root / ".gitignore").write_text(".orch/\nreports/\n")
            for args in (["init", "-q"], ["config", "user.email", "b@example.invalid"],
                         ["config", "user.name", "bench"], ["add", "-A"], ["commit", "-qm", "start"]):
                git(root, *args)
            run(root, 0, extra)  # warm-up: the durations a rerun estimates from
            walls: dict[int, list[float]] = {w: [] for w in options.workers}
            cpus: dict[int, list[float]] = {w: [] for w in options.workers}
            for _ in range(options.rounds):
                for workers in options.workers:
                    wall, cpu = run(root, workers, extra)
                    walls[workers].append(wall)
                    cpus[workers].append(cpu)
            base = statistics.median(walls[options.workers[0]])
            base_cpu = statistics.median(cpus[options.workers[0]])
            for workers in options.workers:
                median = statistics.median(walls[workers])
                cpu = statistics.median(cpus[workers])
                runs = ", ".join(f"{w:.2f}" for w in walls[workers])
                print(f"| {name} | {workers} | {median:.2f} | {runs} | {median / base:.3f} | {cpu:.2f} | "
                      f"{cpu / base_cpu:.3f} |", flush=True)


if __name__ == "__main__":
    main()
