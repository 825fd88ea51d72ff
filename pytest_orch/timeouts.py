"""One timeout per task: the handler owns the deadline; pytest-timeout is the backstop.

A command handler kills its process tree at the task's ``timeout`` and fails with one line. For a
handler stuck in Python, pytest-timeout's marker fires a grace period later; its timer is set here
(``pytest_timeout_set_timer``) so the failure is a typed ``TaskTimedOut`` reported in one line,
not a stack dump of every thread.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

import pytest


class TaskTimedOut(Exception):
    """The backstop fired: the handler did not return within the task's timeout plus the grace."""

    def __init__(self, timeout: float, backstop: float) -> None:
        super().__init__(f"timed out after {timeout:g} s (the handler did not return; stopped after "
                         f"{backstop:g} s)")


def backstop(timeout: float) -> float:
    """When pytest-timeout steps in: the deadline plus a grace for the handler to clean up."""
    return timeout + min(max(2.0, 0.1 * timeout), 60.0)


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> bool | None:
    """Own the timer of a plan task in the main thread; other items keep pytest-timeout's own."""
    task = getattr(item, "task", None)
    if task is None or task.timeout is None or threading.current_thread() is not threading.main_thread():
        return None
    limit = float(settings.timeout)

    def on_alarm(signum: int, frame: Any) -> None:
        raise TaskTimedOut(task.timeout, limit)

    previous = signal.signal(signal.SIGALRM, on_alarm)

    def cancel() -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)

    item.cancel_timeout = cancel  # type: ignore[attr-defined]  # pytest-timeout's cancel hook calls it
    signal.setitimer(signal.ITIMER_REAL, limit)
    return True
