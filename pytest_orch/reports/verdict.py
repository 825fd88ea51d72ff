"""The run's outcome with its real cause: failed by a task, blocked by a manual step or a dependency, passed.

Derived from typed inputs (each result's status, the coordinator's decisions with their ``NotRun``
reason and the task at their root), never from the words of a message.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pytest_orch.outcomes import NotRun
from pytest_orch.plan.model import Plan
from pytest_orch.results import TaskResult


def word(value: object) -> str:
    """An outcome as its string: today's plain strings and outcome enums alike (their ``value``)."""
    return str(getattr(value, "value", value))


class Cause(enum.Enum):
    NONE = "none"
    FAILED_TASK = "failed task"
    MANUAL_STEP = "manual step"
    DEPENDENCY_NOT_DONE = "dependency not done"
    REFUSED = "refused"  # the task itself would not run (a dirty work tree)
    NOT_READY = "not ready"  # its handler said it cannot start now (a spent quota)
    INTERRUPTED = "interrupted"
    NO_WORKER = "no worker"  # no live worker could run it: its hosts were lost (remote workers)


# a Decision's typed reason for not running -> the run's cause
NOT_RUN_CAUSE = {NotRun.UNCONFIRMED: Cause.MANUAL_STEP, NotRun.DEPENDENCY: Cause.DEPENDENCY_NOT_DONE,
                 NotRun.REFUSED_DIRTY: Cause.REFUSED, NotRun.NOT_READY: Cause.NOT_READY,
                 NotRun.ABORTED: Cause.FAILED_TASK, NotRun.NO_WORKER: Cause.NO_WORKER}


@dataclass(frozen=True)
class Blocked:
    """A critical task that could not run, and the task at the root of that (from its Decision)."""

    task_id: str
    root: str | None
    hint: str = ""
    cause: Cause = Cause.DEPENDENCY_NOT_DONE


@dataclass(frozen=True)
class Verdict:
    outcome: str  # passed | failed | blocked | interrupted
    cause: Cause
    tasks: tuple[str, ...] = ()
    hints: tuple[str, ...] = ()

    @property
    def headline(self) -> str:
        """One honest line: what happened and which tasks caused it."""
        names = ", ".join(self.tasks[:5]) + (f" and {len(self.tasks) - 5} more" if len(self.tasks) > 5 else "")
        if self.cause is Cause.FAILED_TASK:
            return f"failed: task {names} failed" if len(self.tasks) == 1 else f"failed: tasks {names} failed"
        if self.cause is Cause.MANUAL_STEP:
            return f"blocked: manual step {names} awaits confirmation"
        if self.cause is Cause.DEPENDENCY_NOT_DONE:
            return f"blocked: dependency {names} is not done"
        if self.cause is Cause.REFUSED:
            return f"blocked: task {names} refused to run on a dirty work tree"
        if self.cause is Cause.NOT_READY:
            return f"blocked: task {names} could not start (not ready, e.g. a spent quota)"
        if self.cause is Cause.NO_WORKER:
            return f"blocked: no live worker could run task {names} (hosts lost)"
        if self.cause is Cause.INTERRUPTED:
            return "interrupted"
        if self.outcome in ("failed", "blocked"):
            return self.outcome
        return "passed: every selected critical task is done"


def verdict(outcome: str, results: Iterable[TaskResult], plan: Plan, blocked: Sequence[Blocked]) -> Verdict:
    """Return the run's verdict; ``outcome`` is the controller's (passed, failed, blocked, interrupted)."""
    outcome = word(outcome)
    if outcome == "interrupted":
        return Verdict("interrupted", Cause.INTERRUPTED)
    results = list(results)
    failed = tuple(r.task_id or r.nodeid for r in results if word(r.status) == "failed"
                   and (r.task_id is None or plan.tasks[r.task_id].critical))
    if failed:
        return Verdict("failed", Cause.FAILED_TASK, failed)
    if blocked:
        # the cause at a root is the root's own decision when it is blocked itself (a manual step,
        # a refusal); its dependents only say that it was not done
        roots: dict[str, Cause] = {item.task_id: item.cause for item in blocked
                                   if (item.root or item.task_id) == item.task_id}
        for item in blocked:
            roots.setdefault(item.root or item.task_id, item.cause)
        roots = {root: cause for root, cause in roots.items() if cause is not Cause.FAILED_TASK}
        # a manual step outranks the rest: confirming it is what a person does next
        for cause in (Cause.MANUAL_STEP, Cause.DEPENDENCY_NOT_DONE, Cause.REFUSED, Cause.NOT_READY,
                      Cause.NO_WORKER):
            tasks = tuple(r for r, c in roots.items() if c is cause)
            if tasks:
                hints = tuple(dict.fromkeys(b.hint for b in blocked if b.hint and (b.root or b.task_id) in tasks))
                return Verdict("blocked", cause, tasks, hints)
    if outcome == "failed":  # a plain test failed, or pytest itself failed the session
        return Verdict("failed", Cause.FAILED_TASK, ())
    if outcome == "blocked":  # the controller knows a cause the decisions do not show (a spent quota)
        return Verdict("blocked", Cause.NONE)
    return Verdict("passed", Cause.NONE)
