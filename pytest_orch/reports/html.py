"""reports/index.html: one static page (no CDN, no server) with the run, timeline, graph, tasks and history.

The page's data is JSON inside a ``<script type="application/json">`` element; its script draws the
views with textContent only. Jinja2 escapes every other value, and the JSON is made safe for an
HTML script element (``<``, ``>``, ``&`` and the JavaScript line separators as \\u escapes).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from pytest_orch.dag import Graph
from pytest_orch.fileio import atomic_write
from pytest_orch.plan.model import Plan
from pytest_orch.reports.view import History, PastRun, RunInfo, build_view, script_json
from pytest_orch.results import TaskResult

HISTORY_RUNS = 10


@cache
def _assets() -> tuple[jinja2.Template, str, str]:
    folder = files("pytest_orch.reports").joinpath("assets")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = env.from_string(folder.joinpath("index.html.j2").read_text(encoding="utf-8"))
    return (template, folder.joinpath("report.css").read_text(encoding="utf-8"),
            folder.joinpath("report.js").read_text(encoding="utf-8"))


def render_html(view: dict[str, Any]) -> str:
    template, css, js = _assets()
    return template.render(run=view["run"], css=Markup(css), js=Markup(js), data_json=Markup(script_json(view)))


def write_html(path: Path, results: Sequence[TaskResult], plan: Plan, graph: Graph, run: RunInfo,
               history: History | None = None, critical: list[str] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, render_html(build_view(results, plan, graph, run, history, critical)))


def _seconds_between(started: str | None, finished: str | None) -> float | None:
    if not started or not finished:
        return None
    parse = datetime.fromisoformat
    return round((parse(finished.replace("Z", "+00:00")) - parse(started.replace("Z", "+00:00"))).total_seconds(), 3)


def read_history(store: Any, run: RunInfo, limit: int = HISTORY_RUNS) -> History:
    """The last runs from the state store (read-only queries), this one with its outcome as reported."""
    runs = []
    for record in store.runs(limit):
        if record.run_id == run.run_id:
            runs.append(PastRun(record.number, record.run_id, record.started, run.verdict.outcome,
                                round(run.finished - run.started, 3)))
        else:
            runs.append(PastRun(record.number, record.run_id, record.started, record.outcome,
                                _seconds_between(record.started, record.finished)))
    return History(runs=runs, tasks=store.results_of_runs(r.number for r in runs))
