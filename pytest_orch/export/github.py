"""``--orch-export github``: the plan's jobs as a GitHub Actions workflow."""

from __future__ import annotations

from typing import Any

from pytest_orch.export.jobs import MERGE_JOB, OUT_DIR, Export, Job
from pytest_orch.export.yamltext import dump, header

CHECKOUT = "actions/checkout@v4"
SETUP_PYTHON = "actions/setup-python@v5"
DOWNLOAD = "actions/download-artifact@v4"
UPLOAD = "actions/upload-artifact@v4"


def path_for(plan_slug: str) -> str:
    return f".github/workflows/{plan_slug}.yml"


def _prepare(export: Export) -> list[dict[str, Any]]:
    return [
        {"uses": CHECKOUT},
        {"uses": SETUP_PYTHON, "with": {"python-version": export.python}},
        {"name": "Set up (orch_ci_setup)", "run": "\n".join(export.setup)},
    ]


def _download(job_ids: tuple[str, ...], export: Export, *, optional: bool = False) -> list[dict[str, Any]]:
    jobs = {job.id: job for job in export.jobs}
    steps: list[dict[str, Any]] = []
    for job_id in job_ids:
        step: dict[str, Any] = {"name": f"Get what {job_id} did", "uses": DOWNLOAD}
        if optional:  # a job that never ran has no artifact: the merge reports its tasks as not run
            step["continue-on-error"] = True
        step["with"] = {"name": job_id, "path": jobs[job_id].artifact_dir}
        steps.append(step)
    return steps


def _pack(job_id: str, artifact_dir: str, export: Export) -> list[dict[str, Any]]:
    return [
        {"name": "Pack the state, reports and changed files", "if": "always()", "run": export.pack_command(job_id)},
        {"uses": UPLOAD, "if": "always()",
         "with": {"name": job_id, "path": artifact_dir, "include-hidden-files": True, "if-no-files-found": "warn",
                  "overwrite": True}},  # a job run again replaces its artifact
    ]


def _job(job: Job, export: Export) -> dict[str, Any]:
    steps = _prepare(export) + _download(job.needs, export)
    if job.needs:
        steps.append({"name": "Carry in the state and files of the jobs it needs", "run": export.restore_command(job)})
    steps.append({"name": job.title, "run": job.command})
    body: dict[str, Any] = {"name": job.title, "runs-on": "ubuntu-latest"}
    if job.needs:
        body["needs"] = list(job.needs)
    body["steps"] = steps + _pack(job.id, job.artifact_dir, export)
    return body


def render(export: Export, path: str) -> str:
    jobs: dict[str, Any] = {job.id: _job(job, export) for job in export.jobs}
    merge_dir = f"{OUT_DIR}/{MERGE_JOB}"
    jobs[MERGE_JOB] = {
        "name": "merge the jobs' reports and state",
        "runs-on": "ubuntu-latest",
        "needs": [job.id for job in export.jobs],
        "if": "always()",  # the reports say which jobs failed or never ran
        "steps": _prepare(export) + _download(tuple(job.id for job in export.jobs), export, optional=True)
        + [{"name": "Merge", "run": export.merge_command}] + _pack(MERGE_JOB, merge_dir, export),
    }
    document = {
        "name": f"pytest-orch plan {export.plan}",
        "on": {"push": None, "workflow_dispatch": None},
        "permissions": {"contents": "read"},
        "jobs": jobs,
    }
    usage = ("The merged reports, state and files are the artifact orch-merge; pytest --orch-restore DIR\n"
             "in a checkout brings what CI did into it, so a later local run finds those tasks up to date.")
    return header(export, "github", usage) + dump(document)
