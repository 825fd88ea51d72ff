"""The pytest nodes of a plan: PlanFile, PhaseNode, GroupNode and TaskItem."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_orch.errors import HandlerError, OrchError
from pytest_orch.plan.model import CHECKPOINT_GROUP, Group, Phase, Task
from pytest_orch.policy import policy_markers
from pytest_orch.results import ORCH_PROPERTY, UP_TO_DATE_PREFIX

if TYPE_CHECKING:
    from pytest_orch.runtime import Runtime


class TaskFailed(Exception):
    """A handler reported failure; shown as its message and the task's YAML, no traceback."""


def task_nodeid(task: Task, phase_file: str) -> str:
    """The node id pytest gives a task item; the controller derives it without collecting."""
    return f"{phase_file}::{task.phase}::{task.group}::{task.id}"


class PlanFile(pytest.File):
    """One plan file; its phases are loaded from the whole plan, validated once per session."""

    runtime: Runtime

    def collect(self) -> Iterator[PhaseNode]:
        runtime = self.runtime
        rel = self.path.resolve().relative_to(runtime.settings.root.resolve()).as_posix() \
            if self.path.resolve().is_relative_to(runtime.settings.root.resolve()) else self.path.as_posix()
        errors = runtime.errors_in(rel)
        if errors:
            raise self.CollectError("\n".join(errors))
        for phase in runtime.plan.phases:
            if phase.file == rel:
                yield PhaseNode.from_parent(self, name=phase.id, phase=phase)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> str:  # type: ignore[override]
        if isinstance(excinfo.value, OrchError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)  # type: ignore[return-value]


class PhaseNode(pytest.Collector):
    def __init__(self, *, phase: Phase, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.phase = phase
        self.extra_keyword_matches.add(phase.name)

    def collect(self) -> Iterator[pytest.Node]:
        for group in self.phase.groups:
            yield GroupNode.from_parent(self, name=group.id, group=group, tasks=group.tasks)
        if self.phase.checkpoints:
            yield GroupNode.from_parent(self, name=CHECKPOINT_GROUP, group=None, tasks=self.phase.checkpoints)

    def reportinfo(self):  # type: ignore[override]
        return self.path, self.phase.loc.line - 1, f"phase {self.phase.id}: {self.phase.name}"


class GroupNode(pytest.Collector):
    def __init__(self, *, group: Group | None, tasks: tuple[Task, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.group = group
        self.tasks = tasks
        if group is not None:
            self.extra_keyword_matches.add(group.name)

    def collect(self) -> Iterator[TaskItem]:
        for task in self.tasks:
            yield TaskItem.from_parent(self, name=task.id, task=task)


class TaskItem(pytest.Item):
    """A task or checkpoint: runs its handler through the session's Runtime."""

    def __init__(self, *, task: Task, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.task = task
        runtime: Runtime = self.config.stash[RUNTIME_KEY]
        for marker in policy_markers(task, runtime.graph):
            self.add_marker(marker)
        for tag in task.tags:
            runtime.register_marker(tag)
            self.add_marker(getattr(pytest.mark, tag))
        self.extra_keyword_matches.update({task.name, task.type})

    def runtest(self) -> None:
        runtime: Runtime = self.config.stash[RUNTIME_KEY]
        outcome = runtime.execute(self.task)
        data = {"status": outcome.status, "message": outcome.message, "changed": outcome.changed,
                "diff": outcome.diff, "output": outcome.output, "reason": runtime.run_reason(self.task.id)}
        self.user_properties[:] = [p for p in self.user_properties if p[0] != ORCH_PROPERTY]
        self.user_properties.append((ORCH_PROPERTY, json.dumps(data)))
        if outcome.output:
            self.add_report_section("call", "output", outcome.output)
        if outcome.diff:
            self.add_report_section("call", "diff", outcome.diff)
        if outcome.status == "failed":
            raise TaskFailed(outcome.message or "failed")
        if outcome.status == "skipped":
            pytest.skip(outcome.message or "skipped")
        if outcome.status == "up_to_date":
            pytest.skip(f"{UP_TO_DATE_PREFIX}: {outcome.message}" if outcome.message else UP_TO_DATE_PREFIX)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style=None) -> str:  # type: ignore[override]
        value = excinfo.value
        if isinstance(value, (TaskFailed, HandlerError, OrchError)):
            message = str(value)
        elif excinfo.errisinstance(pytest.fail.Exception) and "Timeout" in str(value):
            message = f"timed out after {self.task.timeout:g} s (the task's timeout)"
        else:
            return str(super().repr_failure(excinfo, style=style))
        root = self.config.stash[RUNTIME_KEY].settings.root
        return f"{self.task.loc}: task {self.task.id} ({self.task.type}) failed: {message}\n" + \
            task_source(self.task, root)

    def reportinfo(self):  # type: ignore[override]
        return self.path, self.task.loc.line - 1, f"{self.task.id}: {self.task.name}"


def task_source(task: Task, root: Path) -> str:
    """The task's YAML lines, numbered, for failure reports."""
    try:
        lines = (root / task.loc.path).read_text(encoding="utf-8").splitlines()
    except OSError:
        return ""
    start = task.loc.line - 1
    indent = len(lines[start]) - len(lines[start].lstrip(" -")) if start < len(lines) else 0
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip(" ")) >= indent
                                and not lines[end].lstrip().startswith("- ")):
        end += 1
    return "\n".join(f"{n + 1:>4} | {lines[n]}" for n in range(start, min(end, start + 25)))


RUNTIME_KEY = pytest.StashKey["Runtime"]()
