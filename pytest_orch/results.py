"""Fold pytest's setup/call/teardown reports, over every attempt, into one result per test.

A task's status comes from the typed value its item (or the controller, for a task it did not
run) attached to the report as the ``orch`` user property, never from the report's message.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from pytest_orch.compat import node_of_report
from pytest_orch.outcomes import Status

ORCH_PROPERTY = "orch"


@dataclass
class TaskResult:
    """One test's result after its last attempt; for plan tasks, also what the handler did."""

    nodeid: str
    task_id: str | None = None
    status: Status = Status.PASSED
    attempts: int = 1
    started: float | None = None
    finished: float | None = None
    worker: str | None = None
    message: str = ""
    reason: str = ""
    changed: list[str] = field(default_factory=list)
    diff: str = ""
    output: str = ""
    failure_text: str = ""
    error: bool = False
    """The failure was in setup or teardown: an error, as JUnit counts it, not a failed test."""
    earlier_failures: list[str] = field(default_factory=list)
    stdout: str = ""
    stderr: str = ""
    location: tuple[str, int | None, str] | None = None
    spans: list[tuple[float, float, Status]] = field(default_factory=list)
    """Each attempt's (start, stop, status), for the reports' timelines."""
    calls: list[dict[str, Any]] = field(default_factory=list)
    """Requests the handler made to outside services (a prompt task's provider), every attempt's."""

    @property
    def duration(self) -> float:
        if self.started is None or self.finished is None:
            return 0.0
        return max(0.0, self.finished - self.started)

    @property
    def done(self) -> bool:
        return self.status.done


def orch_data(report: pytest.TestReport) -> dict[str, Any]:
    """What a task's item attached to its report (status, message, changed, diff, output, reason)."""
    for name, value in report.user_properties:
        if name == ORCH_PROPERTY:
            return json.loads(value) if isinstance(value, str) else dict(value)
    return {}


def status_of(report: pytest.TestReport) -> Status | None:
    """A task's typed status carried by ``report``, or None for a plain test's report."""
    value = orch_data(report).get("status")
    return None if value is None else Status.from_wire(value)


def worker_of(report: pytest.TestReport) -> str | None:
    node = node_of_report(report)
    if node is not None:
        return node.workerinput.get("workerid")
    return getattr(report, "worker_id", None)


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        reason = str(longrepr[2])
        return reason[len("Skipped: "):] if reason.startswith("Skipped: ") else reason
    return str(longrepr or "")


class ResultCollector:
    """Listens to ``pytest_runtest_logreport`` and calls ``on_final`` once per test.

    pytest-rerunfailures reports a failed attempt as ``rerun`` and logs each attempt's teardown;
    a test is final at the teardown of an attempt that was not rerun (or at an xdist crash report).
    """

    def __init__(self, task_ids: Callable[[str], str | None], on_final: Callable[[TaskResult], None]):
        self._task_ids = task_ids
        self._on_final = on_final
        self._open: dict[str, TaskResult] = {}
        self._rerun_pending: set[str] = set()
        self.results: dict[str, TaskResult] = {}

    def add(self, report: pytest.TestReport) -> None:
        result = self._open.get(report.nodeid)
        if result is None:
            result = self._open[report.nodeid] = TaskResult(
                nodeid=report.nodeid, task_id=self._task_ids(report.nodeid), location=report.location
            )
        start, stop = getattr(report, "start", None), getattr(report, "stop", None)
        if start is not None and (result.started is None or start < result.started):
            result.started = start
        if stop is not None:
            result.finished = max(stop, result.finished or stop)
        result.worker = worker_of(report) or result.worker
        data = orch_data(report)
        if data:
            result.changed, result.diff = data.get("changed", []), data.get("diff", "")
            result.output, result.message = data.get("output", ""), data.get("message", "")
            result.reason = data.get("reason", result.reason)
            if report.when == "call":  # every phase's report carries the properties: take each attempt's once
                result.calls += data.get("calls", [])
        for title, content in report.sections:
            if "stdout" in title:
                result.stdout += content
            elif "stderr" in title:
                result.stderr += content
        if start is not None and stop is not None and report.when in ("setup", "call"):
            _extend_span(result, report.when, start, stop)
        if report.outcome == "rerun":
            if result.spans:
                result.spans[-1] = (*result.spans[-1][:2], Status.FAILED)
            result.earlier_failures.append(report.longreprtext)
            result.attempts += 1
            self._rerun_pending.add(report.nodeid)
        elif report.failed:
            result.status = Status.FAILED
            result.error = report.when in ("setup", "teardown")
            result.failure_text = report.longreprtext
            if not result.message:
                result.message = _last_error_line(report.longreprtext)
        elif report.skipped:
            result.status = status_of(report) or Status.SKIPPED
            result.message = data.get("message") or _skip_reason(report)
        if report.when == "teardown" or report.when == "???":
            if report.nodeid in self._rerun_pending:
                self._rerun_pending.discard(report.nodeid)
                result.status = Status.PASSED
                result.stdout = result.stderr = ""
                return
            self._finish(report.nodeid)

    def _finish(self, nodeid: str) -> None:
        result = self._open.pop(nodeid)
        if result.spans:
            result.spans[-1] = (*result.spans[-1][:2], result.status)
        self.results[nodeid] = result
        self._on_final(result)


def _extend_span(result: TaskResult, when: str, start: float, stop: float) -> None:
    """A setup report opens an attempt's span; its call report extends it."""
    if when == "setup" or not result.spans:
        result.spans.append((start, stop, Status.PASSED))
    else:
        first, _, status = result.spans[-1]
        result.spans[-1] = (first, stop, status)


def _last_error_line(text: str) -> str:
    """The last ``E`` line of a failure (the exception's message), else its last non-empty line."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("E "):
            return line[2:].strip()
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""
