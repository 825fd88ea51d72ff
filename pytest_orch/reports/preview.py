"""The ``--collect-only`` preview: each task, its handler and what it waits for."""

from __future__ import annotations

import pytest

from pytest_orch.collect import TaskItem
from pytest_orch.session import OrchSession


def preview_lines(runtime: OrchSession, items: list[pytest.Item]) -> list[str] | None:
    """With --collect-only, each task's dependencies and handler."""
    lines = []
    tasks = [item.task for item in items if isinstance(item, TaskItem)]
    id_width = max((len(t.id) for t in tasks), default=0)
    type_width = max((len(t.type) for t in tasks), default=0)
    for item in items:
        if isinstance(item, TaskItem):
            task = item.task
            requires = _compact(runtime, runtime.graph.requires.get(task.id, set()))
            after = _compact(runtime, runtime.graph.after.get(task.id, set()))
            needs = f" needs: {', '.join(requires)}" if requires else ""
            waits = f" after: {', '.join(after)}" if after else ""
            lines.append(f"  {task.id:<{id_width}}  {task.type:<{type_width}}  {task.name}{needs}{waits}")
    return ["plan preview (task, type, name; needs: must be done first; after: must have ended first):"] + \
        lines if lines else None


def _compact(runtime: OrchSession, ids: set[str]) -> list[str]:
    """Name whole phases and groups among ``ids`` by their id rather than task by task."""
    ids = set(ids)
    names = []
    for phase in runtime.plan.phases:
        every = {t.id for t in phase.all_tasks}
        body = {t.id for g in phase.groups for t in g.tasks}
        if every and every <= ids:
            names.append(f"phase {phase.id}")
            ids -= every
            continue
        if body and body <= ids and len(phase.groups) > 1:
            names.append(f"the tasks of phase {phase.id}")
            ids -= body
        for group in phase.groups:
            members = {t.id for t in group.tasks}
            if len(members) > 1 and members <= ids:
                names.append(f"group {phase.id}.{group.id}")
                ids -= members
    order = list(runtime.plan.tasks)
    return names + sorted(ids, key=order.index)
