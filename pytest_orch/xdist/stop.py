"""A worker's process exits as soon as its session has ended, not with all the others after the run.

xdist tells its workers' interpreters to exit only in the controller's sessionfinish, all at once
(``NodeManager.teardown_nodes``). The scheduler lets each worker end its session as soon as no task
is left for it (``DagScheduling._release_workers``), so most have ended well before the last task
does; their interpreters then still tore down together after it, which on two cores took 0.15 s
(quiet) to 0.4 s (loaded) after the last worker's session had ended. Here a worker whose session
ended normally is told to exit once its channel has closed (its pytest has unconfigured), while the
run goes on; only the last worker's exit is left for the end.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from pytest_orch import compat

EVENT = "orch_session_closed"
CLOSE_TIMEOUT = 60.0  # a worker still unconfiguring after that is left to xdist's teardown


class ExitWhenDone:
    """Registered on the controller under xdist with a plan."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self._post: Any = None

    @pytest.hookimpl(trylast=True)
    def pytest_testnodedown(self, node: Any, error: object | None) -> None:
        if error is not None:
            return  # a crash: xdist restarts or drops the worker its own way
        if self._post is None:
            self._post = compat.on_controller_event(self.config, EVENT, self._exit)
        # waiting for the channel must not hold the controller's loop: a thread waits, the loop exits it
        threading.Thread(target=self._when_closed, args=(node,), name="orch-worker-exit", daemon=True).start()

    def _when_closed(self, node: Any) -> None:
        if compat.wait_worker_session_closed(node, CLOSE_TIMEOUT):
            self._post(node=node)

    @staticmethod
    def _exit(node: Any) -> None:
        """In the controller's loop (execnet's group is not for two threads at once)."""
        compat.exit_worker_process(node)
