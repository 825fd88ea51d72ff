"""``--orch-export gitlab``: the plan's jobs as a file to include from .gitlab-ci.yml.

Each job lists the jobs it needs with ``artifacts: true``, so GitLab unpacks their artifacts at the
same path (``.orch/ci/out/<job>/``) before the job starts; no stage is named, so the jobs run in
the default ``test`` stage as soon as their needs are met.
"""

from __future__ import annotations

import shlex
from typing import Any

from pytest_orch.export.jobs import MERGE_JOB, OUT_DIR, Export
from pytest_orch.export.yamltext import dump, header


def path_for(plan_slug: str) -> str:
    return f".gitlab/ci/{plan_slug}.yml"


def _script(setup: tuple[str, ...], commands: list[str], pack: str) -> list[str]:
    # GitLab stops a script at its first failing line: keep the status, pack, then fail with it
    *before, last = commands
    return [*setup, *before, f"{last} || status=$?", pack, 'exit "${status:-0}"']


def _artifacts(artifact_dir: str, junit: bool = False) -> dict[str, Any]:
    artifacts: dict[str, Any] = {"when": "always", "paths": [f"{artifact_dir}/"], "expire_in": "1 week"}
    if junit:
        artifacts["reports"] = {"junit": "reports/junit.xml"}
    return artifacts


def render(export: Export, path: str) -> str:
    image = f"python:{export.python}"
    document: dict[str, Any] = {}
    for job in export.jobs:
        commands = ([export.restore_command(job)] if job.needs else []) + [job.command]
        document[job.id] = {
            "image": image,
            "needs": [{"job": need, "artifacts": True} for need in job.needs],
            "script": _script(export.setup, commands, export.pack_command(job.id)),
            "artifacts": _artifacts(job.artifact_dir),
        }
    merge_dir = f"{OUT_DIR}/{MERGE_JOB}"
    document[MERGE_JOB] = {
        "image": image,
        "needs": [{"job": job.id, "artifacts": True} for job in export.jobs],
        "when": "always",  # the merged reports say which jobs failed or never ran
        "script": _script(export.setup, [export.merge_command], export.pack_command(MERGE_JOB)),
        "artifacts": _artifacts(merge_dir, junit=True),
    }
    usage = (f"Include it from .gitlab-ci.yml:  include: [{{local: {shlex.quote(path)}}}]\n"
             "The merged reports, state and files are orch-merge's artifact; pytest --orch-restore DIR\n"
             "in a checkout brings what CI did into it, so a later local run finds those tasks up to date.")
    return header(export, "gitlab", usage) + dump(document)
