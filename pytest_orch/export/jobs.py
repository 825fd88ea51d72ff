"""The plan as CI jobs: one job per phase (or per group), ``needs`` from the plan's graph.

Pure: no pytest, no YAML. github.py and gitlab.py render the same ``Export`` in their own words,
so both CI systems run the same jobs with the same commands and hand on the same artifacts.

What travels between jobs (the artifact of job J, packed by ``pytest_orch.export.pack`` into
``.orch/ci/out/J/``): J's reports, its ``.orch/state.db`` and every file the plan's tasks have written
so far (the state's record of them), so a job that needs several others sees all their work. A job
starts by ``pytest --orch-restore`` of the artifacts of the jobs it needs; the final job runs
``pytest --orch-merge`` over every job's artifact.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass

from pytest_orch import dag
from pytest_orch.plan.model import Plan

OUT_DIR = ".orch/ci/out"
"""Where each job packs its artifact: under .orch/, which the dirty-tree check never counts, so
carried-in artifacts stop no task."""
MERGE_JOB = "orch-merge"
DEFAULT_SETUP = 'python -m pip install -e ".[test]"'
EXPORT_MARK = "# Written by pytest-orch (pytest --orch-export"
"""The first line of every exported file: an existing file without it was not written by the export."""


class ExportError(Exception):
    """The plan cannot be cut into jobs this way (the message says why and what to do)."""


@dataclass(frozen=True)
class Job:
    id: str
    title: str
    tasks: tuple[str, ...]
    needs: tuple[str, ...]
    pytest_args: tuple[str, ...]

    @property
    def command(self) -> str:
        return shlex.join(["pytest", *self.pytest_args])

    @property
    def artifact_dir(self) -> str:
        return f"{OUT_DIR}/{self.id}"


@dataclass(frozen=True)
class Export:
    """Everything a renderer needs: the plan's name, the jobs in dependency order and the setup."""

    plan: str
    plan_digest: str
    by: str
    jobs: tuple[Job, ...]
    setup: tuple[str, ...]
    python: str

    @property
    def merge_command(self) -> str:
        return shlex.join(["pytest", "--orch-merge", *(job.artifact_dir for job in self.jobs)])

    def restore_command(self, job: Job) -> str:
        dirs = [f"{OUT_DIR}/{need}" for need in job.needs]
        return shlex.join(["pytest", "--orch-restore", *dirs])

    @staticmethod
    def pack_command(job_id: str) -> str:
        return shlex.join(["python", "-m", "pytest_orch.export.pack", f"{OUT_DIR}/{job_id}"])


def slug(text: str) -> str:
    """A job id both CI systems accept: letters, digits, ``-`` and ``_``."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "x"


def build_jobs(plan: Plan, graph: dag.Graph, by: str) -> tuple[Job, ...]:
    """One job per phase, or per group plus one for a phase's checkpoints; in dependency order.

    A checkpoint job runs ``pytest --phase N -k "<its ids>"``: a checkpoint named in ``-k`` runs
    without the rest of its phase selected, which the group jobs ran (a failed task is not run twice).
    """
    owner: dict[str, str] = {}
    specs: list[tuple[str, str, list[str], tuple[str, ...]]] = []
    used: set[str] = set()

    def add(raw_id: str, title: str, tasks: list[str], args: tuple[str, ...]) -> None:
        job_id, n = f"orch-{slug(raw_id)}", 2
        while job_id in used or job_id == MERGE_JOB:  # two names that slug alike stay two jobs
            job_id, n = f"orch-{slug(raw_id)}-{n}", n + 1
        used.add(job_id)
        owner.update(dict.fromkeys(tasks, job_id))
        specs.append((job_id, title, tasks, args))

    for phase in plan.phases:
        named = phase.name and phase.name not in (str(phase.id), f"Phase {phase.id}")  # not the default name
        label = f"phase {phase.id}" + (f": {phase.name}" if named else "")
        if by == "phase":
            add(f"phase-{phase.id}", label, [t.id for t in phase.all_tasks], ("--phase", phase.id))
            continue
        for group in phase.groups:
            if group.tasks:
                add(f"{phase.id}-{group.id}", f"{label} / {group.name or group.id}", [t.id for t in group.tasks],
                    ("--phase", phase.id, "--group", f"{phase.id}.{group.id}"))
        if phase.checkpoints:
            ids = [t.id for t in phase.checkpoints]
            add(f"{phase.id}-checkpoints", f"{label} / checkpoints", ids, ("--phase", phase.id, *_only(ids)))
    needs: dict[str, set[str]] = {}
    why: dict[tuple[str, str], tuple[str, str]] = {}
    # a phase or group dependency is one barrier: look up the jobs holding its tasks once, not per task
    barrier_jobs: dict[str, set[str]] = {}
    for job_id, _, tasks, _ in specs:
        needs[job_id] = set()
        for task in tasks:
            for pre in sorted(graph.compact_prerequisites(task)):
                if dag.is_barrier(pre):
                    if pre not in barrier_jobs:
                        barrier_jobs[pre] = {owner[t] for t in graph.barriers.get(pre, ())}
                    holders, shown = barrier_jobs[pre], dag.barrier_name(pre)
                else:
                    holders, shown = {owner[pre]}, pre
                for holder in holders - {job_id}:
                    needs[job_id].add(holder)
                    why.setdefault((job_id, holder), (task, shown))
    order = _job_order(needs, why)
    by_id = {spec[0]: spec for spec in specs}
    return tuple(Job(job_id, by_id[job_id][1], tuple(by_id[job_id][2]),
                     tuple(sorted(needs[job_id], key=order.index)), by_id[job_id][3]) for job_id in order)


def _only(ids: list[str]) -> tuple[str, ...]:
    """``-k`` naming exactly these ids when -k's grammar can hold them; else the phase's up-to-date
    tasks simply stay up to date (a failed one would run again in the checkpoint job)."""
    if all(re.fullmatch(r"[\w.:/+-]+", i) and i not in ("and", "or", "not") for i in ids):
        return ("-k", " or ".join(ids))
    return ()


def _job_order(needs: dict[str, set[str]], why: dict[tuple[str, str], tuple[str, str]]) -> list[str]:
    """The jobs in dependency order, or an ExportError naming a cycle between jobs and its tasks."""
    graph = dag.Graph(nodes=list(needs), requires={job: set(pre) for job, pre in needs.items()})
    cycle = dag.find_cycle(graph)
    if cycle:
        steps = []
        for first, then in zip(cycle, cycle[1:], strict=False):
            edge = why.get((then, first))  # find_cycle lists it in dependency order: ``then`` needs ``first``
            if edge:
                steps.append(f"task {edge[0]} needs {edge[1]}")
        raise ExportError(f"jobs {' -> '.join(cycle)} need each other ({'; '.join(steps)}): "
                          "no CI can order them; export with --orch-export-by group, or change the plan")
    placed: list[str] = []
    remaining = list(needs)
    while remaining:  # plan order among jobs that are ready, so the file reads like the plan
        ready = next(job for job in remaining if needs[job] <= set(placed))
        placed.append(ready)
        remaining.remove(ready)
    return placed


def unordered_writes(jobs: tuple[Job, ...], writes_of: Callable[[str], list[str] | None]) -> list[str]:
    """Files that tasks of two jobs write when neither job needs the other, one line each.

    Their jobs run apart, each on its own copy: the merge cannot keep both changes and refuses. Said
    at export, from what the handlers declare (``writes``); a handler that declares nothing is not seen.
    """
    before: dict[str, set[str]] = {}
    for job in jobs:  # dependency order: a job's needs are known before it
        before[job.id] = set(job.needs).union(*(before[need] for need in job.needs))
    writers: dict[str, list[tuple[str, str]]] = {}
    for job in jobs:
        for task in job.tasks:
            for path in writes_of(task) or ():
                writers.setdefault(path, []).append((job.id, task))
    lines = []
    for path, found in sorted(writers.items()):
        pair = next(((a, b) for i, a in enumerate(found) for b in found[i + 1:]
                     if a[0] != b[0] and a[0] not in before[b[0]] and b[0] not in before[a[0]]), None)
        if pair:
            (job_a, task_a), (job_b, task_b) = pair
            lines.append(f"{path}: written by task {task_a} (job {job_a}) and task {task_b} (job {job_b}), which do "
                         "not need each other: --orch-merge will refuse their changes; make one task depend on the "
                         "other, or export them into one job")
    return lines
