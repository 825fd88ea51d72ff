"""Which collected items a session runs, and in what order: --phase, --group, checkpoints, the graph."""

from __future__ import annotations

import pytest

from pytest_orch.collect import TaskItem
from pytest_orch.dag import priority_order, remaining_path
from pytest_orch.session import OrchSession


def select_items(session: OrchSession, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Apply --phase/--group, keep checkpoints only with their whole phase, order by the graph."""
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        if isinstance(item, TaskItem) and not session.in_selected_scope(item.task):
            dropped.append(item)
        else:
            keep.append(item)
    present = {item.task.id for item in keep if isinstance(item, TaskItem)}
    keyword = config.getoption("keyword", "") or ""
    final: list[pytest.Item] = []
    for item in keep:
        if isinstance(item, TaskItem) and item.task.is_checkpoint and item.task.id not in keyword:
            body = [t.id for t in session.plan.phase(item.task.phase).all_tasks if not t.is_checkpoint]
            if not all(t in present for t in body):
                dropped.append(item)
                continue
        final.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = final if config.option.collectonly else ordered(final, session)


def ordered(items: list[pytest.Item], session: OrchSession) -> list[pytest.Item]:
    """Tasks in dependency order, longest remaining path first; tests that depend on tasks last.

    Only for running: a preview lists the plan in its own order.
    """
    tasks = {item.task.id: item for item in items if isinstance(item, TaskItem)}
    graph = session.graph
    order = priority_order(graph, tasks, remaining_path(graph))
    plain = [item for item in items if not isinstance(item, TaskItem)]
    on_tasks = [item for item in plain if set(_depends(item)) & set(session.plan.tasks)]
    free = [item for item in plain if item not in on_tasks]
    return free + [tasks[t] for t in order] + on_tasks


def _depends(item: pytest.Item) -> list[str]:
    marker = item.get_closest_marker("dependency")
    return list(marker.kwargs.get("depends") or []) if marker else []
