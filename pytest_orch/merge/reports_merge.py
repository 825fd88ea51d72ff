"""One set of reports from several CI jobs' run.json and junit.xml: one result per task, one outcome.

Each job's tasks come back as ``TaskResult``s, so the merged junit.xml, run.json, timeline.svg and
index.html are written by the same writers as a local run's. A task reported by several jobs (a
checkpoint job reruns its phase, finding the group jobs' tasks up to date) keeps the report of the
job that ran it. A task of the plan that no job reported is skipped: its job never ran.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pytest_orch.fileio import atomic_write
from pytest_orch.merge.inputs import Case, JobInput
from pytest_orch.outcomes import RunOutcome, Status
from pytest_orch.plan.digest import plan_digest
from pytest_orch.plan.model import Plan
from pytest_orch.reports.junit import default_classname
from pytest_orch.reports.run_json import SCHEMA, iso, task_entry
from pytest_orch.results import TaskResult

NOT_REPORTED = "not run in CI: no job reported it (its job did not run, or failed before it)"
# which of two reports of one task the merge keeps: the job that ran it, then the newest
_RANK = {Status.PASSED: 3, Status.FAILED: 3, Status.UP_TO_DATE: 2, Status.SKIPPED: 1}


@dataclass(frozen=True)
class MergedRun:
    results: list[TaskResult]
    outcome: RunOutcome
    started: float
    finished: float
    git_clean: bool | None
    jobs: list[dict[str, Any]]


def _time(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def classname(plan: Plan, result: TaskResult) -> str:
    """As the controller names a testcase: ``<plan>.<phase>.<group>`` for a task."""
    if result.task_id is None:
        return default_classname(result.nodeid)
    task = plan.tasks[result.task_id]
    return f"{plan.name}.{task.phase}.{task.group}"


def _result(entry: Mapping[str, Any], job: JobInput, plan: Plan) -> TaskResult:
    task_id = entry["id"] if entry.get("type") != "pytest" and entry["id"] in plan.tasks else None
    result = TaskResult(nodeid=entry.get("nodeid") or entry["id"], task_id=task_id,
                        status=Status.from_wire(entry["outcome"]), attempts=int(entry.get("attempts") or 1),
                        started=_time(entry.get("started")), finished=_time(entry.get("finished")),
                        worker=f"{job.job}:{entry['worker']}" if entry.get("worker") else job.job,
                        message=entry.get("message") or "", reason=entry.get("reason") or "",
                        changed=list(entry.get("changed") or []), diff=entry.get("diff") or "")
    name = task_id or result.nodeid.split("::")[-1]
    case = job.cases.get((classname(plan, result), name), Case())
    result.output, result.stderr = case.output, case.stderr
    result.failure_text, result.error = case.failure_text, case.error
    result.earlier_failures = list(case.earlier_failures)
    if result.started is not None and result.finished is not None:
        result.spans = [(result.started, result.finished, result.status)]
    return result


def merge_results(jobs: Iterable[JobInput], plan: Plan, nodeid_of: Mapping[str, str],
                  in_scope: Iterable[str]) -> MergedRun:
    """The merged results in plan order, and the run's outcome computed from every job."""
    chosen: dict[str, TaskResult] = {}
    outcomes: list[str] = []
    started: list[float] = []
    finished: list[float] = []
    clean: list[bool | None] = []
    summary = []
    for job in jobs:
        if job.run is None:
            summary.append({"job": job.job, "outcome": None, "run_id": None})
            continue
        run = job.run
        outcomes.append(run.get("outcome", "interrupted"))
        started += [t for t in [_time(run.get("started"))] if t is not None]
        finished += [t for t in [_time(run.get("finished"))] if t is not None]
        clean.append(run.get("git_clean"))
        summary.append({"job": job.job, "outcome": run.get("outcome"), "run_id": run.get("run_id")})
        for entry in run["tasks"]:
            result = _result(entry, job, plan)
            key = result.task_id or result.nodeid
            known = chosen.get(key)
            if known is None or (_RANK[result.status], result.finished or 0) > (_RANK[known.status],
                                                                                  known.finished or 0):
                chosen[key] = result
    unreported = [task_id for task_id in in_scope if task_id not in chosen]
    for task_id in unreported:
        chosen[task_id] = TaskResult(nodeid=nodeid_of[task_id], task_id=task_id, status=Status.SKIPPED,
                                         message=NOT_REPORTED)
    order = {task_id: i for i, task_id in enumerate(plan.tasks)}
    results = sorted(chosen.values(), key=lambda r: (r.task_id is None, order.get(r.task_id or "", 0), r.nodeid))
    begin = min(started) if started else 0.0
    outcome = run_outcome(results, plan, outcomes, unreported)
    git_clean = None if None in clean or not clean else all(clean)
    return MergedRun(results, outcome, begin, max(finished) if finished else begin, git_clean, summary)


def run_outcome(results: list[TaskResult], plan: Plan, job_outcomes: list[str], unreported: list[str]) -> RunOutcome:
    """As a single run decides it: interrupted, failed (a critical task or a test), blocked, passed.

    Each job decided ``blocked`` for its own tasks (it knew why each was not run); a critical task
    that no job reported could not run either.
    """
    if RunOutcome.INTERRUPTED.value in job_outcomes:
        return RunOutcome.INTERRUPTED

    def critical(result: TaskResult) -> bool:
        return result.task_id is None or plan.tasks[result.task_id].critical

    if any(r.status is Status.FAILED and critical(r) for r in results):
        return RunOutcome.FAILED
    if RunOutcome.FAILED.value in job_outcomes:  # a failure run.json does not show (a session error)
        return RunOutcome.FAILED
    if RunOutcome.BLOCKED.value in job_outcomes or any(plan.tasks[t].critical for t in unreported):
        return RunOutcome.BLOCKED
    return RunOutcome.PASSED


def write_run_json(path: Path, merged: MergedRun, plan: Plan, run_id: str) -> None:
    """run.json as a run writes it (the same fields), plus the jobs it was merged from."""
    document = {
        "schema": SCHEMA,
        "run_id": run_id,
        "started": iso(merged.started),
        "finished": iso(merged.finished),
        "outcome": merged.outcome.value,
        "git_clean": merged.git_clean,
        "dry_run": False,
        "plan": plan.name,
        "plan_digest": plan_digest(plan),
        "merged_from": merged.jobs,
        "tasks": [task_entry(r, plan) for r in merged.results],
    }
    atomic_write(path, json.dumps(document, indent=2) + "\n")
