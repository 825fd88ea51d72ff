"""A task's policy as the markers of the plugins that carry it: dependency, timeout, flaky."""

from __future__ import annotations

import pytest

from pytest_orch.dag import Graph
from pytest_orch.plan.model import Task


def policy_markers(task: Task, graph: Graph) -> list[pytest.MarkDecorator]:
    """Markers for pytest-dependency, pytest-timeout and pytest-rerunfailures."""
    markers = [
        pytest.mark.dependency(
            name=task.id, depends=sorted(graph.requires.get(task.id, ())), scope="session"
        )
    ]
    if task.timeout is not None:
        markers.append(pytest.mark.timeout(task.timeout))
    if task.retries:
        # rerunfailures sleeps reruns_delay * backoff ** (attempt - 1) before each rerun
        markers.append(pytest.mark.flaky(
            reruns=task.retries, reruns_delay=task.retry_delay,
            reruns_delay_backoff_factor=task.backoff,
        ))
    return markers


def mark_dependencies_done(item: pytest.Item, names: list[str], scope: str = "session") -> None:
    """Tell pytest-dependency that ``names`` succeeded, as the controller has established.

    pytest-dependency only knows results of tests run in this process; a dependency done by an
    earlier run, found up to date, or run on another xdist worker would otherwise skip ``item``.
    """
    try:
        from pytest_dependency import DependencyItemStatus, DependencyManager
    except ImportError:  # pragma: no cover - a declared dependency, but stay usable without it
        return
    if scope not in DependencyManager.ScopeCls:
        return
    manager = DependencyManager.getManager(item, scope=scope)
    if manager is None:
        return
    for name in names:
        status = DependencyItemStatus()
        status.results = dict.fromkeys(DependencyItemStatus.Phases, "passed")
        manager.results[name] = status
