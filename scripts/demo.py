#!/usr/bin/env python3
"""Run the demo plan in phases/ against a scratch copy of examples/webapp.

    python scripts/demo.py            # fresh copy in build/demo/webapp, then four pytest runs
    python scripts/demo.py --keep     # reuse the scratch copy and its .orch/ state
    python scripts/demo.py -n 4       # run the tasks on four pytest-xdist workers

The committed example is never touched: the plan runs in build/demo/webapp (git-ignored),
which gets its own copy of phases/ and its own git repository, committed clean, so that
pytest-orch's dirty-tree check is satisfied. Reports go to the repository's reports/ folder.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "webapp"
PLAN = REPO / "phases"
SCRATCH = REPO / "build" / "demo" / "webapp"
REPORTS = REPO / "reports"
# the plan's manual step; the run that stops at it says so, and run.json confirms the id
MANUAL_STEP = "3.5"
COPY_IGNORE = shutil.ignore_patterns(
    "__pycache__", "*.pyc", ".pytest_cache", ".orch", "node_modules", "coverage", "reports"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="reuse an existing scratch copy and its state")
    parser.add_argument("-n", dest="workers", metavar="N", type=int, help="pass -n N (pytest-xdist) to the runs")
    args = parser.parse_args(argv)

    fresh = prepare(keep=args.keep)
    # one token each: pytest finds its rootdir before it knows these options, and would take
    # a separate existing path (the report folder) for a test path and root itself there
    common = [f"--orch-report={REPORTS}"]
    parallel = ["-n", str(args.workers)] if args.workers is not None else []

    step("Preview the plan: phases, groups, tasks and their dependencies; nothing runs")
    pytest(["--collect-only", *common], expect=0)

    step("Phase 1 only: the baseline checks")
    pytest(["--phase", "1", *common, *parallel], expect=0 if fresh else None)

    step(
        "The rest of the plan. Phase 1 is up to date. The manual step is not confirmed,\n"
        "so it is skipped and the runbook that depends on it does not run: exit status 1."
    )
    pytest([*common, *parallel], expect=1 if fresh else None)
    manual = unconfirmed_manual_steps() or [MANUAL_STEP]

    step(
        f"Confirm the manual step ({', '.join(manual)}) to finish the plan;\n"
        "tasks done by the earlier runs are up to date and are not run again."
    )
    final = pytest(["--confirm", ",".join(manual), *common, *parallel], expect=0)

    rel_scratch = SCRATCH.relative_to(REPO)
    print()
    print("=" * 78)
    print(f"Demo {'finished' if final == 0 else f'FAILED: the last run exited {final}'}.")
    print(f"  JUnit XML:        {REPORTS / 'junit.xml'}")
    print(f"  Run record:       {REPORTS / 'run.json'}")
    print(f"  Edited project:   {SCRATCH}   (git diff there shows what the plan changed)")
    activate = Path(sys.executable).parent / "activate"
    print("More by hand (the plan's commands run python3: activate the environment first):")
    print(f"  . {activate} && cd {rel_scratch}")
    print("  git diff                         # what the plan changed")
    print("  pytest --orch-status             # every task's last outcome, up to date or stale")
    print("  pytest --phase 2 --force -n 2    # phase 2 again, on two workers")
    print("  pytest -m ci -v                  # the tasks tagged ci; -v says why each one ran")
    print("  git stash -u -q && pytest --dry-run --force; git stash pop -q")
    print("      (the whole plan as diffs against the original files; nothing is written)")
    return 0 if final == 0 else 1


def prepare(keep: bool) -> bool:
    """Make the scratch copy: the example plus the plan, in a fresh git repository, committed.

    Return False when --keep reuses an existing copy, whose state may differ from a fresh one.
    """
    if keep and SCRATCH.exists():
        print(f"Reusing {SCRATCH} (--keep): its .orch/ state decides what is up to date.")
        return False
    if SCRATCH.exists():
        shutil.rmtree(SCRATCH)
    SCRATCH.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(EXAMPLE, SCRATCH, ignore=COPY_IGNORE)
    shutil.copytree(PLAN, SCRATCH / "phases", ignore=COPY_IGNORE)
    print(f"Copied {EXAMPLE.relative_to(REPO)} and {PLAN.relative_to(REPO)}/ to {SCRATCH.relative_to(REPO)}")
    git("init", "-q")
    git("config", "user.name", "pytest-orch demo")
    git("config", "user.email", "demo@example.invalid")
    git("config", "commit.gpgsign", "false")
    git("add", "-A")
    git("commit", "-q", "-m", "Example project before the roadmap")
    print("Committed it to a new git repository, so the work tree starts clean.")
    return True


def git(*args: str) -> None:
    subprocess.run(["git", *args], cwd=SCRATCH, check=True)


def step(title: str) -> None:
    print()
    print("=" * 78)
    print(title)
    print("=" * 78)


def pytest(args: list[str], expect: int | None) -> int:
    """Run pytest in the scratch copy, echoing the command first; return its exit status."""
    command = [sys.executable, "-m", "pytest", *args]
    print(f"$ cd {SCRATCH.relative_to(REPO)} && {shlex.join(command)}", flush=True)
    # the plan's commands run python3: the one of this environment, as after activating it
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    status = subprocess.run(command, cwd=SCRATCH, env=env).returncode
    note = "" if expect is None else " (as expected)" if status == expect else f" (expected {expect})"
    print(f"-> exit status {status}{note}", flush=True)
    return status


def unconfirmed_manual_steps() -> list[str]:
    """Return the manual tasks that the last run skipped, according to run.json."""
    try:
        record = json.loads((REPORTS / "run.json").read_text(encoding="utf-8"))
        return [
            t["id"] for t in record.get("tasks", []) if t.get("type") == "manual" and t.get("outcome") == "skipped"
        ]
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return []


if __name__ == "__main__":
    sys.exit(main())
