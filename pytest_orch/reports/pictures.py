"""The reports a person looks at (timeline.svg, index.html), written from one call in the controller."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pytest_orch.dag import Graph
from pytest_orch.plan.model import Plan
from pytest_orch.reports.html import read_history, write_html
from pytest_orch.reports.timeline import write_timeline
from pytest_orch.reports.verdict import NOT_RUN_CAUSE, Blocked, Verdict, verdict
from pytest_orch.reports.view import RunInfo, critical_path
from pytest_orch.results import TaskResult


def blocked_of(decisions: Iterable[tuple[str, Any]]) -> list[Blocked]:
    """The coordinator's blocked critical tasks (task id, Decision) as the verdict reads them."""
    return [Blocked(task_id, decision.blocked_by, decision.hint, NOT_RUN_CAUSE[decision.not_run])
            for task_id, decision in decisions]


def write_pictures(folder: Path, results: Sequence[TaskResult], plan: Plan, graph: Graph, *, run_id: str,
                   started: float, outcome: str, git_clean: bool | None, dry_run: bool, command: str,
                   blocked: Iterable[tuple[str, Any]], store: Any = None) -> Verdict:
    """Write timeline.svg and index.html; return the run's verdict (outcome and its cause)."""
    run_verdict = verdict(outcome, results, plan, blocked_of(blocked))
    run = RunInfo(run_id=run_id, started=started, finished=time.time(), verdict=run_verdict,
                  git_clean=git_clean, command=command, dry_run=dry_run)
    path = critical_path(graph, (r.task_id for r in results if r.task_id), {r.task_id: r.duration for r in results
                                                                             if r.task_id})
    write_timeline(folder / "timeline.svg", results, plan, f"pytest-orch run {run_id} ({run_verdict.headline})",
                   path)
    history = read_history(store, run) if store is not None else None
    write_html(folder / "index.html", results, plan, graph, run, history, path)
    return run_verdict
