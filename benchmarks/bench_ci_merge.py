"""How long the CI export's own steps take as a plan grows: export, a job's restore, the merge.

For each size, a fresh project (git repo) with PHASES phases of TASKS file_generation tasks each (phase
k>1 depends on phase k-1 when k is even, else on phase 1, so jobs run in parallel branches), exported per
phase for GitHub and run locally by tests/ci_local.py (a copy per job, artifacts carried). Then, timed
apart from the jobs: ``pytest --orch-merge`` of every job's artifact in a fresh copy, ``--orch-restore``
of the merged artifact in another, and the local run after it (every task must be up to date).

    python benchmarks/bench_ci_merge.py                 # 4x25 and 10x50 tasks
    python benchmarks/bench_ci_merge.py --sizes 20x50   # PHASESxTASKS
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from ci_local import env, run_github  # noqa: E402


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=b@example.invalid", "-c", "user.name=b", *args], cwd=cwd, check=True,
                   capture_output=True)


def _project(root: Path, phases: int, tasks: int) -> None:
    (root / "phases").mkdir(parents=True)
    for p in range(1, phases + 1):
        depends = "" if p == 1 else f"depends_on: [{p - 1 if p % 2 == 0 else 1}]\n"
        lines = [f"phase: {p}\n{depends}groups:\n  - id: g\n    tasks:\n"]
        for t in range(1, tasks + 1):
            lines.append(f'      - {{id: "{p}.{t}", type: file_generation, content: "{p}.{t}\\n", '
                         f"target: gen/{p}/{t}.txt}}\n")
        (root / f"phases/p{p:02d}.yaml").write_text("".join(lines))
    (root / "tox.ini").write_text('[pytest]\norch_ci_setup =\n    python -c pass\n')
    (root / ".gitignore").write_text("reports/\n.orch/\n")
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "bench")


def _timed(cwd: Path, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    proc = subprocess.run(["pytest", "-p", "no:cacheprovider", *args], cwd=cwd, env=env(), capture_output=True,
                          text=True, check=False)
    return time.perf_counter() - start, proc


def measure(phases: int, tasks: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-ci-") as tmp:
        base = Path(tmp)
        project = base / "project"
        _project(project, phases, tasks)
        export_s, proc = _timed(project, "--orch-export", "github")
        assert proc.returncode == 0, proc.stderr
        _git(project, "add", "-A")
        _git(project, "commit", "-qm", "export")
        start = time.perf_counter()
        ci = run_github(project / ".github/workflows/phases.yml", project, base / "ci")
        jobs_s = time.perf_counter() - start
        assert set(ci.status.values()) == {"success"}, ci.status
        fresh = base / "fresh"
        shutil.copytree(project, fresh)
        dirs = []
        for name, packed in ci.packed.items():
            if name != "orch-merge":
                shutil.copytree(packed, fresh / ".orch/ci/in" / name)
                dirs.append(f".orch/ci/in/{name}")
        merge_s, proc = _timed(fresh, "--orch-merge", *dirs)
        assert proc.returncode == 0, proc.stderr
        later = base / "later"
        shutil.copytree(project, later)
        shutil.copytree(ci.packed["orch-merge"], later / ".orch/ci/in/merged")
        restore_s, proc = _timed(later, "--orch-restore", ".orch/ci/in/merged")
        assert proc.returncode == 0, proc.stderr
        rerun_s, proc = _timed(later)
        outcomes = {t["outcome"] for t in json.loads((later / "reports/run.json").read_text())["tasks"]}
        return {"phases": phases, "tasks": phases * tasks, "jobs": len(ci.status), "export_s": export_s,
                "jobs_s": jobs_s, "merge_s": merge_s, "restore_s": restore_s, "rerun_s": rerun_s,
                "rerun_all_up_to_date": outcomes == {"up_to_date"}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["4x25", "10x50"], help="PHASESxTASKS")
    args = parser.parse_args()
    print("| phases | tasks | jobs (with merge) | export s | all jobs s | merge s | restore s | "
          "local run after s | all up to date |")
    print("|---|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        phases, tasks = (int(n) for n in size.split("x"))
        row = measure(phases, tasks)
        print(f"| {row['phases']} | {row['tasks']} | {row['jobs']} | {row['export_s']:.2f} | {row['jobs_s']:.1f} | "
              f"{row['merge_s']:.2f} | {row['restore_s']:.2f} | {row['rerun_s']:.2f} | {row['rerun_all_up_to_date']} |")


if __name__ == "__main__":
    main()
