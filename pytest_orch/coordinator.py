"""The one owner of "run it or not, and why" for every item, in process and under ``-n`` alike.

The in-process path (``Controller.pytest_runtest_protocol``) and the xdist scheduler ask
``decide`` when an item is due and report an item that is not run through
``Controller.report_not_run``; neither decides anything itself. No pytest here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from pytest_orch.dag import Graph
from pytest_orch.gitstate import dirty_reason
from pytest_orch.outcomes import Decision, NotRun, PlainNeeds, RunOutcome, Status
from pytest_orch.plan.model import Plan, Task

RUN = Decision()


class History(Protocol):
    """What earlier runs left behind, as the coordinator needs it (pytest_orch.history provides it)."""

    def previous_outcome(self, task_id: str) -> Status | None: ...
    def is_confirmed(self, task_id: str) -> bool: ...
    def freshness(self, task: Task, force: bool = False) -> _Freshness: ...


class _Freshness(Protocol):
    up_to_date: bool
    reason: str


@dataclass(frozen=True)
class _NoFreshness:
    up_to_date: bool = False
    reason: str = "never ran"


class NoHistory:
    """The history of a project that keeps no state: nothing ran before."""

    def previous_outcome(self, task_id: str) -> Status | None:
        return None

    def is_confirmed(self, task_id: str) -> bool:
        return False

    def freshness(self, task: Task, force: bool = False) -> _Freshness:
        return _NoFreshness(reason="forced" if force else "never ran")


@dataclass(frozen=True)
class Capabilities:
    """What the coordinator asks of a task's handler, answered by the session."""

    needs_confirmation: Callable[[Task], bool] = lambda task: False
    writes_files: Callable[[Task], bool] = lambda task: False
    files_written: Callable[[Task], list[str] | None] = lambda task: None
    """Project-relative paths the task would write; None when its handler cannot say."""
    not_ready: Callable[[Task], str | None] = lambda task: None
    """Why the task cannot start now (a spent quota), or None."""


@dataclass(frozen=True)
class RunFlags:
    force: bool = False
    dry_run: bool = False
    interactive: bool = False
    confirmed: frozenset[str] = frozenset()
    dirty: tuple[str, ...] = ()
    """Uncommitted changes the harness did not write (plan files, reports and .orch/ left out)."""
    allow_dirty: bool = False


@dataclass
class Coordinator:
    """Decides once per item when it is due; records final outcomes; says how the run ended."""

    plan: Plan
    graph: Graph
    history: History = field(default_factory=NoHistory)
    flags: RunFlags = field(default_factory=RunFlags)
    capabilities: Capabilities = field(default_factory=Capabilities)
    selected: set[str] = field(default_factory=set)
    outcomes: dict[str, Status] = field(default_factory=dict)
    decisions: dict[str, Decision] = field(default_factory=dict)
    plain_outcomes: dict[str, Status] = field(default_factory=dict)
    would_refuse: dict[str, str] = field(default_factory=dict)
    """In a dry run, the tasks a real run would refuse, with the reason."""
    aborted_by: str | None = None
    _barriers: dict[str, Decision | None] = field(default_factory=dict)

    def select(self, task_ids: set[str]) -> None:
        """Name the tasks this session runs; every other dependency must be done already."""
        self.selected = set(task_ids)

    def is_confirmed(self, task_id: str) -> bool:
        return task_id in self.flags.confirmed or self.history.is_confirmed(task_id)

    # -- decisions ------------------------------------------------------------------------------------
    def decide(self, task_id: str) -> Decision:
        """Decide once, when the task is due (its prerequisites have ended)."""
        if task_id not in self.decisions:
            self.decisions[task_id] = self._decide(self.plan.tasks[task_id])
        return self.decisions[task_id]

    def _decide(self, task: Task) -> Decision:
        if self.aborted_by is not None:
            return self._aborted()
        for dep in sorted(self.graph.direct.get(task.id, ())):
            blocked = self.why_not_done(dep)
            if blocked is not None:
                return blocked
        for barrier in self.graph.via.get(task.id, ()):
            blocked = self._barrier_not_done(barrier)
            if blocked is not None:
                return blocked
        if self.capabilities.needs_confirmation(task) and not self.is_confirmed(task.id) \
                and not self.flags.interactive:
            if self.flags.dry_run:
                return Decision(NotRun.UNCONFIRMED, f"would wait for --confirm {task.id}", blocked_by=task.id,
                                hint=f"pytest --confirm {task.id}")
            instructions = str(task.params.get("instructions", "")).strip()
            return Decision(NotRun.UNCONFIRMED, f"manual step not confirmed: {instructions}", blocked_by=task.id,
                            hint=f"pytest --confirm {task.id}")
        fresh = self.history.freshness(task, force=self.flags.force)
        if fresh.up_to_date:
            return Decision(NotRun.UP_TO_DATE, fresh.reason)
        # after freshness: an up-to-date task needs no call, so a spent quota does not block it
        not_ready = self.capabilities.not_ready(task)
        if not_ready is not None:
            return Decision(NotRun.NOT_READY, not_ready, blocked_by=task.id)
        refusal = self._dirty_refusal(task)
        if refusal is not None:
            if not self.flags.dry_run:
                return Decision(NotRun.REFUSED_DIRTY, refusal, blocked_by=task.id, hint="pytest --allow-dirty")
            self.would_refuse[task.id] = refusal
        return Decision(reason=fresh.reason)

    def _barrier_not_done(self, barrier: str) -> Decision | None:
        """The first task of a phase or group that is not done, as a decision; None when all are.

        Asked when a dependent is due, when every task of the barrier has ended, so the answer is
        final and is kept: a phase's tasks are looked at once, not once per dependent.
        """
        if barrier not in self._barriers:
            self._barriers[barrier] = next(
                (blocked for dep in sorted(self.graph.barriers[barrier])
                 if (blocked := self.why_not_done(dep)) is not None), None)
        return self._barriers[barrier]

    def _dirty_refusal(self, task: Task) -> str | None:
        """Why a task that writes files must not run on this work tree, or None."""
        if self.flags.allow_dirty or not self.flags.dirty or not self.capabilities.writes_files(task):
            return None
        paths = self.capabilities.files_written(task)
        blocking = list(self.flags.dirty) if paths is None else sorted(set(paths) & set(self.flags.dirty))
        return dirty_reason(blocking) if blocking else None

    def _aborted(self) -> Decision:
        return Decision(NotRun.ABORTED, f"not run: task {self.aborted_by} failed and its on_failure is abort",
                        blocked_by=self.aborted_by)

    def running(self) -> list[str]:
        """Tasks decided to run that have not ended yet (for a handler's ``not_ready``)."""
        return [t for t, d in self.decisions.items() if d.runs and t in self.plan.tasks and t not in self.outcomes]

    def withdraw(self, task_id: str) -> Decision:
        """An abort came after a task was found ready but before it started: it will not run."""
        decision = self.decisions[task_id] = self._aborted()
        return decision

    def no_worker(self, key: str, reason: str) -> Decision:
        """No live worker may run this task (or plain test): its hosts were lost, refused or down."""
        decision = self.decisions[key] = Decision(NotRun.NO_WORKER, f"not run: {reason}", blocked_by=key)
        return decision

    def why_not_done(self, dep: str) -> Decision | None:
        """Return the decision not to run a dependent when the required task ``dep`` is not done."""
        if dep in self.selected:
            outcome = self.outcomes.get(dep)
            if outcome is not None and outcome.done:
                return None
            if outcome is Status.FAILED:
                if self.plan.tasks[dep].on_failure == "continue":
                    return None
                return Decision(NotRun.DEPENDENCY, f"dependency {dep} failed", blocked_by=dep)
            earlier = self.decisions.get(dep)
            if earlier is not None and earlier.not_run is NotRun.UNCONFIRMED and self.flags.dry_run:
                return None  # a dry run previews what follows a manual step as if it were done
            if outcome is Status.SKIPPED and (earlier is None or earlier.runs):
                return Decision(NotRun.DEPENDENCY, f"dependency {dep} was skipped by its handler", blocked_by=dep)
            if earlier is not None and earlier.blocked_by:
                cause = _cause(earlier)
                return Decision(NotRun.DEPENDENCY, f"dependency {dep} was not done: {cause}",
                                blocked_by=earlier.blocked_by, hint=earlier.hint)
            return Decision(NotRun.DEPENDENCY, f"dependency {dep} did not run", blocked_by=dep)
        previous = self.history.previous_outcome(dep)
        if previous is not None and previous.done:
            return None
        phase = self.plan.tasks[dep].phase
        state = "never ran" if previous is None else f"was {previous.value} in the last run"
        return Decision(NotRun.DEPENDENCY, f"dependency {dep} is not done ({state}) and is not selected",
                        blocked_by=dep, hint=f"pytest --phase {phase}")

    def decide_plain(self, nodeid: str, needs: PlainNeeds) -> Decision:
        """A plain test that depends on tasks or other tests: run it only when they are done."""
        if nodeid in self.decisions:
            return self.decisions[nodeid]
        name = nodeid.split("::")[-1]
        decision = RUN
        if self.aborted_by is not None and (needs.tasks or needs.nodes):
            decision = self._aborted()
        else:
            for dep_task in needs.tasks:
                blocked = self.why_not_done(dep_task)
                if blocked is not None:
                    decision = Decision(NotRun.DEPENDENCY, f"{name} depends on {dep_task}: {blocked.reason}",
                                        blocked_by=blocked.blocked_by, hint=blocked.hint)
                    break
            else:
                for dep in needs.nodes:
                    outcome = self.plain_outcomes.get(dep)
                    if outcome is not Status.PASSED:
                        state = outcome.value if outcome else "not run"
                        decision = Decision(NotRun.DEPENDENCY, f"{name} depends on {dep} ({state})")
                        break
        self.decisions[nodeid] = decision
        return decision

    # -- results --------------------------------------------------------------------------------------
    def task_ended(self, task_id: str, status: Status) -> None:
        """Record a task's final outcome; an abort task's failure stops new work."""
        self.outcomes[task_id] = status
        task = self.plan.tasks.get(task_id)
        if status is Status.FAILED and task is not None and task.on_failure == "abort" and self.aborted_by is None:
            self.aborted_by = task_id

    def plain_ended(self, nodeid: str, status: Status) -> None:
        self.plain_outcomes[nodeid] = status

    def blocked_critical(self) -> list[tuple[str, Decision]]:
        """Critical tasks that could not run: a dependency not done, a step not confirmed, a refusal."""
        return [
            (task_id, d) for task_id, d in self.decisions.items()
            if task_id in self.plan.tasks and d.not_run is not None and d.not_run.blocks
            and self.plan.tasks[task_id].critical
            and not (self.flags.dry_run and d.not_run is NotRun.UNCONFIRMED)
        ]

    def failed_critical(self) -> list[str]:
        return [t for t, o in self.outcomes.items() if o is Status.FAILED and self.plan.tasks[t].critical]

    def failed_noncritical(self) -> list[str]:
        return [t for t, o in self.outcomes.items() if o is Status.FAILED and not self.plan.tasks[t].critical]

    def run_outcome(self, *, interrupted: bool, plain_failed: bool) -> RunOutcome:
        if interrupted:
            return RunOutcome.INTERRUPTED
        if self.failed_critical() or plain_failed:
            return RunOutcome.FAILED
        if self.blocked_critical():
            return RunOutcome.BLOCKED
        return RunOutcome.PASSED


def _cause(decision: Decision) -> str:
    """What blocked a dependency, short: a manual step's instructions belong to the step itself."""
    if decision.not_run is NotRun.UNCONFIRMED:
        return "manual step not confirmed"
    if decision.not_run is NotRun.REFUSED_DIRTY:
        return "refused on a dirty work tree"
    return decision.reason


__all__ = ["RUN", "Capabilities", "Coordinator", "NoHistory", "RunFlags"]
