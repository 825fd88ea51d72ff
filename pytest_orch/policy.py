"""A task's policy as the markers of the plugins that carry it: dependency, timeout, flaky."""

from __future__ import annotations

import pytest

from pytest_orch.dag import Graph
from pytest_orch.plan.model import Task
from pytest_orch.timeouts import backstop


def policy_markers(task: Task, graph: Graph) -> list[pytest.MarkDecorator]:
    """Markers for pytest-dependency, pytest-timeout and pytest-rerunfailures."""
    # pytest-dependency sees the dependencies the task declares; those its phase and group imply
    # are the coordinator's to enforce (as it does for all of them): listing every task of every
    # earlier phase on every task would make collecting a large plan quadratic
    markers = [
        pytest.mark.dependency(name=task.id, depends=sorted(graph.direct.get(task.id, ())), scope="session")
    ]
    if task.timeout is not None:
        # the handler enforces task.timeout itself; pytest-timeout only catches one stuck in Python
        markers.append(pytest.mark.timeout(backstop(task.timeout)))
    if task.retries:
        # rerunfailures sleeps reruns_delay * backoff ** (attempt - 1) before each rerun
        markers.append(pytest.mark.flaky(
            reruns=task.retries, reruns_delay=task.retry_delay,
            reruns_delay_backoff_factor=task.backoff,
        ))
    return markers
