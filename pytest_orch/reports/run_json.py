"""reports/run.json: the run and every task, as the contract lists them."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pytest_orch.fileio import atomic_write
from pytest_orch.plan.digest import plan_digest
from pytest_orch.plan.model import Plan
from pytest_orch.results import TaskResult

SCHEMA = 1


def iso(timestamp: float | None) -> str | None:
    """ISO 8601 in UTC with milliseconds, or None."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def task_entry(result: TaskResult, plan: Plan) -> dict[str, Any]:
    task = plan.tasks[result.task_id] if result.task_id else None
    return {
        "id": result.task_id or result.nodeid,
        "nodeid": result.nodeid,
        "phase": task.phase if task else None,
        "group": task.group if task else None,
        "name": task.name if task else result.nodeid.split("::")[-1],
        "type": task.type if task else "pytest",
        "outcome": result.status.value,
        "attempts": result.attempts,
        "duration": round(result.duration, 6),
        "started": iso(result.started),
        "finished": iso(result.finished),
        "worker": result.worker,
        "changed": result.changed,
        "message": result.message,
        "reason": result.reason,
        "diff": result.diff,
        "critical": task.critical if task else True,
        **({"calls": result.calls} if result.calls else {}),
    }


def write_run_json(path: Path, *, run_id: str, started: float, finished: float, outcome: str,
                   git_clean: bool | None, dry_run: bool, results: Iterable[TaskResult], plan: Plan) -> None:
    document = {
        "schema": SCHEMA,
        "run_id": run_id,
        "started": iso(started),
        "finished": iso(finished),
        "outcome": outcome,
        "git_clean": git_clean,
        "dry_run": dry_run,
        "plan": plan.name,
        "plan_digest": plan_digest(plan),  # --orch-merge joins only reports of the same plan version
        "tasks": [task_entry(r, plan) for r in results],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(document, indent=2) + "\n")
