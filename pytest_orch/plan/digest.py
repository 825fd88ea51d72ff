"""The plan's version: one digest of everything that decides what runs and in what order.

CI jobs each write it into run.json; ``--orch-merge`` refuses reports whose digests differ, since
their tasks are not the same tasks.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pytest_orch.fingerprint import canonical_json
from pytest_orch.plan.model import Plan, Task


def _task(task: Task) -> list[Any]:
    # the definition leaves out what does not change a task's work; a plan's version needs those too
    return [task.id, task.name, task.type, list(task.depends_on), task.critical, task.on_failure, task.retries,
            list(task.tags), dict(task.definition)]


def plan_digest(plan: Plan) -> str:
    """A short sha256 of the plan's phases, groups and resolved task definitions, in file order."""
    body = [
        [phase.id, list(phase.depends_on),
         [[g.id, g.execution, g.max_parallel, list(g.depends_on), [_task(t) for t in g.tasks]]
          for g in phase.groups],
         [_task(t) for t in phase.checkpoints]]
        for phase in plan.phases
    ]
    return hashlib.sha256(canonical_json([plan.name, body]).encode()).hexdigest()[:16]
