"""The terminal while a plan runs: a progress display per phase, in process and under ``-n``.

Fed from the controller's reports (task starts, and ``pytest_orch_task_finished`` for each final
result). Modes (``--orch-progress``, default ``auto``):

- ``live``: on a terminal (not in CI) at normal or ``-q`` verbosity, one status line redrawn in place
  (done / running / waiting per phase, the running task ids, the time left), and a permanent line per
  finished phase. Plan tasks print no progress letters meanwhile (the line says more); plain tests
  keep theirs. pytest's report words are left untouched outside the run loop, so ``-rA`` is unchanged.
- ``lines``: otherwise (CI, a pipe, ``-v``): one line per finished phase, with the time left.
- ``off``: nothing.

Under ``-n`` xdist's own worker status line is muted once tasks start (see compat.mute_xdist_status).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

import pytest

from pytest_orch.compat import mute_xdist_status, terminal_current_line, terminal_width
from pytest_orch.reports.progress_model import ProgressModel
from pytest_orch.reports.verdict import word

# once tasks run: the selected task ids and earlier runs' durations; None before
RunView = Callable[[], "tuple[Collection[str], Mapping[str, float]] | None"]

MODES = ("auto", "live", "lines", "off")
REDRAW_EVERY = 0.1  # seconds between redraws of the live line: a 1000-task plan would flood the terminal
CI_VARIABLES = ("CI", "GITHUB_ACTIONS", "GITLAB_CI", "JENKINS_URL", "BUILDKITE", "TF_BUILD")


def choose_mode(option: str, reporter: Any, verbosity: int, environ: Any = os.environ) -> str:
    if reporter is None or option == "off" or verbosity < -1:
        return "off"
    if option in ("live", "lines"):
        return option
    isatty = getattr(reporter, "isatty", False)
    tty = bool(isatty() if callable(isatty) else isatty)
    in_ci = any(environ.get(name) for name in CI_VARIABLES)
    return "live" if tty and not in_ci and verbosity <= 0 else "lines"


class Progress:
    """Registered on the controller (never on an xdist worker).

    ``session`` gives the plan, its graph, the config and ``task_id_of(nodeid)``; ``run`` says what
    runs once it has started (see RunView).
    """

    def __init__(self, session: Any, option: str, run: RunView) -> None:
        self.session = session
        self.config = session.config
        self.run = run
        self.option = option
        self.model: ProgressModel | None = None
        self.mode = "off"
        self._mode: str | None = None
        self.started = False
        self.in_loop = False
        self._ours: str | None = None  # the terminal's current line, when it is our status line
        self._last_draw = 0.0

    @property
    def reporter(self) -> Any:
        return self.config.pluginmanager.get_plugin("terminalreporter")

    def _task_id(self, nodeid: str) -> str | None:
        return self.session.task_id_of(nodeid) if self.model is not None or self.run() is not None else None

    def _ready(self) -> bool:
        """Build the model at the first task: only then is the selection (and under -n the workers) known."""
        if self.model is not None:
            return True
        started = self.run()
        if started is None:
            return False
        selected, durations = started
        self._decide()
        workers = getattr(self.config.option, "numprocesses", None)
        self.model = ProgressModel(self.session.plan, self.session.graph, selected, durations,
                                   workers if isinstance(workers, int) else 1)
        if self.mode != "off":
            # the controller under -n never collects, so this is the first moment the run is known
            mute_xdist_status(self.config, lambda: self.started)
        return True

    def _decide(self) -> str:
        if self._mode is None:
            self._mode = self.mode = choose_mode(self.option, self.reporter, self.config.get_verbosity())
        return self.mode

    # -- hooks ---------------------------------------------------------------------------------------
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """In process, the live line replaces pytest's per-file prefixes (as under -n, where there are none)."""
        tr = self.reporter
        if tr is not None and any(self.session.task_id_of(i.nodeid) for i in session.items) \
                and not session.config.option.collectonly and self._decide() == "live":
            tr.showfspath = False

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Any:
        self.in_loop = True
        try:
            return (yield)
        finally:
            self.in_loop = False
            self._clear()

    @pytest.hookimpl(wrapper=True)
    def pytest_report_teststatus(self, report: pytest.TestReport, config: pytest.Config) -> Any:
        result = yield
        if self.mode == "live" and self.in_loop and isinstance(result, tuple | list) and len(result) == 3 \
                and self._task_id(report.nodeid) is not None:
            return (result[0], "", "")  # the category still counts; the live line replaces the letter
        return result

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        task_id = self._task_id(nodeid)
        if task_id is None or not self._ready():
            return
        self.started = True
        assert self.model is not None
        now = time.time()
        self.model.start(task_id, now)
        self._draw(now)

    def pytest_orch_task_finished(self, task: Any, result: Any) -> None:
        if not self._ready():
            return
        assert self.model is not None
        self.started = True
        now = time.time()
        phase = self.model.finish(task.id, word(result.status), now)
        if phase is not None and self.mode != "off":
            more = any(not p.finished for p in self.model.phases)
            self._permanent(self.model.phase_line(phase) + (f"; {self.model.left_text(now)}" if more else ""))
        self._draw(now, force=phase is not None)

    # -- the terminal --------------------------------------------------------------------------------
    def _draw(self, now: float, force: bool = False) -> None:
        tr = self.reporter
        if self.mode != "live" or tr is None or self.model is None:
            return
        if not force and now - self._last_draw < REDRAW_EVERY:
            return
        if all(p.finished for p in self.model.phases):
            return
        self._last_draw = now
        line = self.model.status_line(now, terminal_width(tr) - 1)
        if self._ours is None or terminal_current_line(tr) != self._ours:
            if terminal_current_line(tr):
                tr.write("\n")  # someone else's output (a plain test's letters) keeps its line
        tr.rewrite(line, erase=True)
        tr.flush()
        self._ours = terminal_current_line(tr)

    def _permanent(self, text: str) -> None:
        tr = self.reporter
        if tr is None:
            return
        if self.mode == "live" and self._ours is not None and terminal_current_line(tr) == self._ours:
            tr.rewrite(text, erase=True)
            tr.write("\n")
        else:
            if terminal_current_line(tr):
                tr.write("\n")  # after progress letters (under -n pytest's ensure_newline does not know them)
            tr.write_line(text)
        self._ours = None
        tr.flush()

    def _clear(self) -> None:
        """At the end of the loop (or an interruption) no half-drawn status line is left behind."""
        tr = self.reporter
        if tr is not None and self._ours is not None and terminal_current_line(tr) == self._ours:
            tr.rewrite("", erase=True)
            tr.write("\r")
        self._ours = None
