"""Hooks pytest-orch calls. Implement them in conftest.py or in a plugin."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_orch.handler import Handler
    from pytest_orch.plan.model import Task
    from pytest_orch.results import TaskResult


@pytest.hookspec
def pytest_orch_handler_types() -> dict[str, type[Handler]]:
    """Return handler classes keyed by the ``type`` name used in plans.

    Every implementation is called; a type name claimed by two sources is an error that names both.
    """


@pytest.hookspec
def pytest_orch_task_finished(task: Task, result: TaskResult) -> None:
    """Called on the controller once per task, after its last attempt.

    :param task: the plan task.
    :param result: its outcome, attempts, timings, changed paths and message.
    """
