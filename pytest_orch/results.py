"""Fold pytest's setup/call/teardown reports, over every attempt, into one result per test."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

ORCH_PROPERTY = "orch"
UP_TO_DATE_PREFIX = "up to date"


@dataclass
class TaskResult:
    """One test's result after its last attempt; for plan tasks, also what the handler did."""

    nodeid: str
    task_id: str | None = None
    outcome: str = "passed"  # passed | failed | skipped | up_to_date
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
    earlier_failures: list[str] = field(default_factory=list)
    stdout: str = ""
    stderr: str = ""
    location: tuple[str, int | None, str] | None = None

    @property
    def duration(self) -> float:
        if self.started is None or self.finished is None:
            return 0.0
        return max(0.0, self.finished - self.started)

    @property
    def done(self) -> bool:
        return self.outcome in ("passed", "up_to_date")


def worker_of(report: pytest.TestReport) -> str | None:
    node = getattr(report, "node", None)
    if node is not None:
        return node.workerinput.get("workerid")
    return getattr(report, "worker_id", None)


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        reason = str(longrepr[2])
        return reason[len("Skipped: "):] if reason.startswith("Skipped: ") else reason
    return str(longrepr or "")


def _handler_data(report: pytest.TestReport) -> dict[str, Any]:
    for name, value in report.user_properties:
        if name == ORCH_PROPERTY:
            return json.loads(value) if isinstance(value, str) else dict(value)
    return {}


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
        data = _handler_data(report)
        if data:
            result.changed, result.diff = data.get("changed", []), data.get("diff", "")
            result.output, result.message = data.get("output", ""), data.get("message", "")
            result.reason = data.get("reason", result.reason)
        for title, content in report.sections:
            if "stdout" in title:
                result.stdout += content
            elif "stderr" in title:
                result.stderr += content
        if report.outcome == "rerun":
            result.earlier_failures.append(report.longreprtext)
            result.attempts += 1
            self._rerun_pending.add(report.nodeid)
        elif report.failed:
            result.outcome = "failed"
            result.failure_text = report.longreprtext
            if not result.message:
                result.message = _first_line(report.longreprtext)
        elif report.skipped:
            reason = _skip_reason(report)
            result.outcome = "up_to_date" if reason.startswith(UP_TO_DATE_PREFIX) else "skipped"
            result.message = reason
        if report.when == "teardown" or report.when == "???":
            if report.nodeid in self._rerun_pending:
                self._rerun_pending.discard(report.nodeid)
                result.outcome = "passed"
                result.stdout = result.stderr = ""
                return
            self._finish(report.nodeid)

    def _finish(self, nodeid: str) -> None:
        result = self._open.pop(nodeid)
        if result.outcome == "passed" and result.message.startswith(UP_TO_DATE_PREFIX):
            result.outcome = "up_to_date"
        self.results[nodeid] = result
        self._on_final(result)


def _first_line(text: str) -> str:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("E "):
            return line[2:].strip()
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""
