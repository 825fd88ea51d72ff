"""The pytest nodes of a plan: PlanFile, PhaseNode, GroupNode and TaskItem."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_orch.errors import HandlerError, OrchError
from pytest_orch.outcomes import Status
from pytest_orch.plan.files import relative_to_root
from pytest_orch.plan.model import CHECKPOINT_GROUP, Group, Phase, Task
from pytest_orch.policy import policy_markers
from pytest_orch.results import ORCH_PROPERTY
from pytest_orch.timeouts import TaskTimedOut

if TYPE_CHECKING:
    from pytest_orch.session import OrchSession

SESSION_KEY = pytest.StashKey["OrchSession"]()
RUNNER_KEY = pytest.StashKey["TaskRunner"]()


class TaskFailed(Exception):
    """A handler reported failure; shown as its message and the task's YAML, no traceback."""


def task_nodeid(task: Task, phase_file: str) -> str:
    """The node id pytest gives a task item; the controller derives it without collecting."""
    return f"{phase_file}::{task.phase}::{task.group}::{task.id}"


class PlanFile(pytest.File):
    """One plan file; its phases are loaded from the whole plan, validated once per session."""

    @classmethod
    def for_path(cls, parent: pytest.Collector, path: Path, session: OrchSession) -> PlanFile:
        """The node of one plan file, its node id the path relative to the rootdir.

        pytest would name a plan outside the rootdir (``--plan ../plans/x.yaml``) after the
        argument that led to it, often "", and the controller could not find its tasks by node id.
        """
        return cls.from_parent(parent, path=path, nodeid=relative_to_root(path, session.settings.root))

    def collect(self) -> Iterator[PhaseNode]:
        session: OrchSession = self.config.stash[SESSION_KEY]
        rel = relative_to_root(self.path, session.settings.root)
        errors = session.errors_in(rel)
        if errors:
            raise self.CollectError("\n".join(errors))
        if not session.ok:
            return  # another file's errors stop the run; this one has nothing to add to them
        for phase in session.plan.phases:
            if phase.file == rel:
                yield PhaseNode.from_parent(self, name=phase.id, phase=phase)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> str:  # type: ignore[override]
        if isinstance(excinfo.value, OrchError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)  # type: ignore[return-value]


class PlanFolder(pytest.Dir):
    """The plan's folder when it holds no plan file: collecting it reports that, as a plan error.

    Only when the folder itself is collected (``pytest``, ``pytest phases``): ``pytest tests``
    beside a plan never looks at it.
    """

    def collect(self):  # type: ignore[override]
        errors = self.config.stash[SESSION_KEY].all_errors()
        if errors:
            raise self.CollectError("\n".join(errors))
        return super().collect()

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
    """A task or checkpoint: runs its handler through this process's TaskRunner."""

    def __init__(self, *, task: Task, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.task = task
        session: OrchSession = self.config.stash[SESSION_KEY]
        for marker in policy_markers(task, session.graph):
            self.add_marker(marker)
        for tag in task.tags:
            self.add_marker(getattr(pytest.mark, tag))
        self.extra_keyword_matches.update({task.name, task.type})

    def runtest(self) -> None:
        runner = self.config.stash[RUNNER_KEY]
        outcome = runner.execute(self.task, attempt=getattr(self, "execution_count", 1))
        mask = runner.masker.deep  # API keys and the plan's secrets never reach a report
        outcome.message, outcome.output, outcome.diff = mask(outcome.message), mask(outcome.output), mask(outcome.diff)
        # the status travels to the controller as its value: execnet carries only builtin types
        data = {"status": outcome.status.value, "message": outcome.message, "changed": outcome.changed,
                "diff": outcome.diff, "output": outcome.output}
        if outcome.calls:
            data["calls"] = mask(outcome.calls)
        self.user_properties[:] = [p for p in self.user_properties if p[0] != ORCH_PROPERTY]
        self.user_properties.append((ORCH_PROPERTY, json.dumps(data)))
        if outcome.output:
            self.add_report_section("call", "output", outcome.output)
        if outcome.diff:
            self.add_report_section("call", "diff", outcome.diff)
        if outcome.status is Status.FAILED:
            raise TaskFailed(outcome.message or "failed")
        if outcome.status in (Status.SKIPPED, Status.UP_TO_DATE):
            pytest.skip(outcome.message or outcome.status.value.replace("_", " "))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style=None) -> str:  # type: ignore[override]
        value = excinfo.value
        if not isinstance(value, (TaskFailed, HandlerError, OrchError, TaskTimedOut)):
            return str(super().repr_failure(excinfo, style=style))
        message = str(value)
        root = self.config.stash[SESSION_KEY].settings.root
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



@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A task's skip points at its YAML line, not at the plugin's code."""
    outcome = yield
    if not isinstance(item, TaskItem):
        return
    report: pytest.TestReport = outcome.get_result()
    if report.skipped and isinstance(report.longrepr, tuple):
        report.longrepr = (item.task.loc.path, item.task.loc.line, report.longrepr[2])
