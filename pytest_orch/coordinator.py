"""Controller-side decisions: may a due task run, and what the run's outcome is. No pytest here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from pytest_orch.dag import Graph
from pytest_orch.plan.model import Plan, Task

DONE = ("passed", "up_to_date")


@dataclass(frozen=True)
class Decision:
    """What to do with a task that is due: run it, or report it skipped or up to date.

    ``blocked_by`` names the task at the root of a skip, ``hint`` the command that would unblock it.
    """

    action: Literal["run", "skip", "up_to_date"]
    reason: str = ""
    blocked_by: str | None = None
    hint: str = ""


class History(Protocol):
    """What earlier runs left behind, as the coordinator needs it (the state store provides it)."""

    def previous_outcome(self, task_id: str) -> str | None: ...
    def is_confirmed(self, task_id: str) -> bool: ...
    def up_to_date(self, task: Task, force: bool = False) -> str | None:
        """Return the up-to-date message when ``task`` need not run again, else None.

        Called for every task that may run, ``force`` or not, so the history can take the
        task's fingerprint before it runs.
        """


class NoHistory:
    """The history of a project that keeps no state: nothing ran before."""

    def previous_outcome(self, task_id: str) -> str | None:
        return None

    def is_confirmed(self, task_id: str) -> bool:
        return False

    def up_to_date(self, task: Task, force: bool = False) -> str | None:
        return None


class Coordinator:
    """Owns every task's final outcome and the decisions that depend on other tasks."""

    def __init__(self, plan: Plan, graph: Graph, *, confirmed: frozenset[str] = frozenset(),
                 history: History | None = None, force: bool = False, interactive: bool = False,
                 refuse_writes: str | None = None, writes_files: frozenset[str] = frozenset()) -> None:
        self.plan = plan
        self.graph = graph
        self.confirmed = confirmed
        self.history: History = history or NoHistory()
        self.force = force
        self.interactive = interactive
        self.refuse_writes = refuse_writes
        self.writes_files = writes_files
        self.selected: set[str] = set(plan.tasks)
        self.outcomes: dict[str, str] = {}
        self.decisions: dict[str, Decision] = {}
        self.aborted_by: str | None = None

    def select(self, task_ids: set[str]) -> None:
        """Name the tasks this session runs; every other dependency must be done already."""
        self.selected = set(task_ids)

    def is_confirmed(self, task_id: str) -> bool:
        return task_id in self.confirmed or self.history.is_confirmed(task_id)

    def decide(self, task_id: str) -> Decision:
        """Decide once, when the task is due (its prerequisites have ended)."""
        if task_id not in self.decisions:
            self.decisions[task_id] = self._decide(self.plan.tasks[task_id])
        return self.decisions[task_id]

    def _decide(self, task: Task) -> Decision:
        if self.aborted_by is not None:
            return Decision("skip", f"not run: task {self.aborted_by} failed and its on_failure is abort",
                            blocked_by=self.aborted_by)
        for dep in sorted(self.graph.requires.get(task.id, ())):
            blocked = self.why_not_done(dep)
            if blocked is not None:
                return blocked
        if task.type == "manual" and not self.is_confirmed(task.id) and not self.interactive:
            instructions = str(task.params.get("instructions", "")).strip()
            return Decision("skip", f"manual step not confirmed: {instructions}", blocked_by=task.id,
                            hint=f"pytest --confirm {task.id}")
        message = self.history.up_to_date(task, force=self.force)
        if message is not None:
            return Decision("up_to_date", message)
        if self.refuse_writes and task.type in self.writes_files:
            return Decision("skip", self.refuse_writes, blocked_by=task.id, hint="pytest --allow-dirty")
        return Decision("run")

    def why_not_done(self, dep: str) -> Decision | None:
        """Return a skip decision when the required task ``dep`` is not done, else None."""
        if dep in self.selected:
            outcome = self.outcomes.get(dep)
            if outcome in DONE:
                return None
            if outcome == "failed":
                if self.plan.tasks[dep].on_failure == "continue":
                    return None
                return Decision("skip", f"dependency {dep} failed", blocked_by=dep)
            earlier = self.decisions.get(dep)
            if earlier is not None and earlier.blocked_by:
                # the cause's first clause: a manual step's instructions belong to the step itself
                cause = earlier.reason.split(": ", 1)[0]
                return Decision("skip", f"dependency {dep} was not done: {cause}",
                                blocked_by=earlier.blocked_by, hint=earlier.hint)
            return Decision("skip", f"dependency {dep} did not run", blocked_by=dep)
        previous = self.history.previous_outcome(dep)
        if previous in DONE:
            return None
        phase = self.plan.tasks[dep].phase
        state = "never ran" if previous is None else f"was {previous} in the last run"
        return Decision("skip", f"dependency {dep} is not done ({state}) and is not selected",
                        blocked_by=dep, hint=f"pytest --phase {phase}")

    def task_ended(self, task_id: str, outcome: str) -> None:
        """Record a task's final outcome; an abort task's failure stops new work."""
        self.outcomes[task_id] = outcome
        task = self.plan.tasks.get(task_id)
        if outcome == "failed" and task is not None and task.on_failure == "abort" and self.aborted_by is None:
            self.aborted_by = task_id

    def blocked_critical(self) -> list[tuple[str, Decision]]:
        """Critical tasks that could not run: a dependency not done, a step not confirmed."""
        return [
            (task_id, d) for task_id, d in self.decisions.items()
            if d.action == "skip" and self.plan.tasks[task_id].critical
        ]

    def failed_critical(self) -> list[str]:
        return [t for t, o in self.outcomes.items() if o == "failed" and self.plan.tasks[t].critical]
