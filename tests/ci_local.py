"""Run an exported GitHub workflow or GitLab include locally, as the CI would: a fresh copy of the
project for each job, in dependency order, artifacts carried from job to job.

Only the steps the export writes are understood; an unknown step fails the test rather than being
skipped. ``checkout`` is the copy, ``setup-python`` the venv the tests run in (first on PATH).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class CiRun:
    workspaces: dict[str, Path] = field(default_factory=dict)
    artifacts: dict[str, Path] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)  # success, failure, skipped
    commands: dict[str, list[str]] = field(default_factory=dict)
    packed: dict[str, Path] = field(default_factory=dict)
    """Each job's packed folder (orch-job.json, reports/, state/, files/) as a person downloads it."""


def env() -> dict[str, str]:
    """The environment of a job: this venv's pytest and python first; nothing of the outer pytest's."""
    bin_dir = str(Path(sys.executable).parent)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    clean["PATH"] = bin_dir + os.pathsep + clean.get("PATH", "")
    clean["CI"] = "true"
    return clean


def _order(needs: dict[str, list[str]]) -> list[str]:
    done: list[str] = []
    while len(done) < len(needs):
        ready = next(job for job in needs if job not in done and all(n in done for n in needs[job]))
        done.append(ready)
    return done


def _bash(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-e", "-c", script], cwd=cwd, env=env(), capture_output=True, text=True,
                          timeout=600, check=False)


def run_github(workflow_file: Path, project: Path, work: Path) -> CiRun:
    workflow: dict[str, Any] = yaml.safe_load(workflow_file.read_text())
    jobs = workflow["jobs"]
    run = CiRun()
    store = work / "artifact-store"
    for job_id in _order({j: list(body.get("needs", [])) for j, body in jobs.items()}):
        body = jobs[job_id]
        if any(run.status[n] != "success" for n in body.get("needs", [])) and body.get("if") != "always()":
            run.status[job_id] = "skipped"
            continue
        ws = run.workspaces[job_id] = work / job_id
        failed = False
        run.commands[job_id] = []
        for step in body["steps"]:
            if failed and step.get("if") != "always()":
                continue
            uses = step.get("uses", "")
            if uses.startswith("actions/checkout@"):
                shutil.copytree(project, ws, symlinks=True)
            elif uses.startswith("actions/setup-python@"):
                assert step["with"]["python-version"]
            elif uses.startswith("actions/download-artifact@"):
                source = run.artifacts.get(step["with"]["name"])
                if source is None:
                    failed = failed or not step.get("continue-on-error", False)
                    continue
                shutil.copytree(source, ws / step["with"]["path"])
            elif uses.startswith("actions/upload-artifact@"):
                path = ws / step["with"]["path"]
                if path.exists():
                    target = store / step["with"]["name"]
                    shutil.copytree(path, target)
                    run.artifacts[step["with"]["name"]] = run.packed[step["with"]["name"]] = target
            elif "run" in step:
                run.commands[job_id].append(step["run"])
                proc = _bash(step["run"], ws)
                if proc.returncode != 0:
                    failed = True
            else:
                raise AssertionError(f"{job_id}: a step the local runner does not know: {step}")
        run.status[job_id] = "failure" if failed else "success"
    return run


def run_gitlab(include_file: Path, project: Path, work: Path) -> CiRun:
    document: dict[str, Any] = yaml.safe_load(include_file.read_text())
    jobs = {name: body for name, body in document.items() if isinstance(body, dict) and "script" in body}
    run = CiRun()
    store = work / "artifact-store"
    needs = {j: [n["job"] for n in body.get("needs", [])] for j, body in jobs.items()}
    for job_id in _order(needs):
        body = jobs[job_id]
        if any(run.status[n] != "success" for n in needs[job_id]) and body.get("when") != "always":
            run.status[job_id] = "skipped"
            continue
        ws = run.workspaces[job_id] = work / job_id
        shutil.copytree(project, ws, symlinks=True)
        for need in body.get("needs", []):
            if need.get("artifacts") and need["job"] in run.artifacts:
                # GitLab unpacks a needed job's artifacts at the paths they were taken from
                shutil.copytree(run.artifacts[need["job"]], ws, dirs_exist_ok=True)
        run.commands[job_id] = list(body["script"])
        proc = _bash("\n".join(body["script"]), ws)
        run.status[job_id] = "success" if proc.returncode == 0 else "failure"
        if proc.returncode == 0 or body["artifacts"].get("when") == "always":
            target = store / job_id
            for path in body["artifacts"]["paths"]:
                if (ws / path).exists():
                    shutil.copytree(ws / path, target / path)
                    run.packed[job_id] = target / path
            run.artifacts[job_id] = target
    return run
