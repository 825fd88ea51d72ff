"""``pytest --orch-graph mermaid|dot|json``: print the selected part of the plan's graph and run nothing.

The session collects as ``--collect-only`` does, so ``--phase``, ``--group``, ``-k`` and ``-m`` select
the tasks; stdout then holds the graph alone (pytest's own terminal output is switched off), ready for
``> plan.dot``. A bad plan is reported the way ``--orch-status`` reports it. Earlier runs' outcomes and
durations, when ``.orch/state.db`` has them, colour the nodes and weight the critical path.
"""

from __future__ import annotations

import sqlite3
import sys
from typing import TYPE_CHECKING

import pytest

from pytest_orch import compat
from pytest_orch.collect import TaskItem
from pytest_orch.reports.graph_text import plan_graph, render
from pytest_orch.state import StateError, StateStore

if TYPE_CHECKING:
    from pytest_orch.session import OrchSession


class GraphPrinter:
    """Registered on the controller for --orch-graph: collect, print, stop."""

    def __init__(self, session: OrchSession, fmt: str) -> None:
        self.session = session
        self.fmt = fmt
        config = session.config
        # nothing runs: no workers, no coordinator, no state written, no reports
        config.option.collectonly = True
        compat.run_in_process(config)
        # stdout is the graph alone: pytest's header, collection list and summary stay out of it.
        # Registered at configure before pytest's terminal plugin makes its reporter (we are tryfirst),
        # so the reporter is never registered, as under -p no:terminal.
        config.pluginmanager.set_blocked("terminalreporter")

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if not self.session.ok:
            raise pytest.UsageError("\n".join(self.session.all_errors()))

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        selected = {item.task.id for item in session.items if isinstance(item, TaskItem)}
        last, durations = self._history()
        text = render(plan_graph(self.session.plan, self.session.graph, selected, last, durations), self.fmt)
        sys.stdout.write(text)
        sys.stdout.flush()

    def _history(self) -> tuple[dict[str, str], dict[str, float]]:
        """Each task's last outcome and duration, read-only; nothing when the project keeps no state."""
        try:
            store = StateStore.open(self.session.settings.root, readonly=True)
        except (StateError, sqlite3.Error, OSError):  # an unreadable state only costs the colours
            return {}, {}
        try:
            return {t: r.outcome for t, r in store.last_results(include_skipped=True).items()}, store.durations()
        finally:
            store.close()
