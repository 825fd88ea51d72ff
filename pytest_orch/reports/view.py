"""What index.html shows, as plain data: the run, the plan's graph, every task, the history.

Built from the same inputs as the other reports (results, plan, graph) plus the state's history.
Outputs and diffs are cut here (an output's last 4 KB, a diff's first 20 KB, and less when a
large plan would otherwise pass the report's size budget), so a 50 MB output is never embedded.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_orch import dag
from pytest_orch.dag import Graph
from pytest_orch.plan.model import Plan, Task
from pytest_orch.reports.run_json import iso
from pytest_orch.reports.verdict import Verdict, word
from pytest_orch.results import TaskResult

OUTPUT_TAIL = 4 * 1024
DIFF_HEAD = 20 * 1024
# every task's output and diff together; beyond it each is cut further so the page stays small
TEXT_BUDGET = 1_200_000
MESSAGE_MAX = 2000
_SCRIPT_SAFE = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026",
                0x2028: "\\u2028", 0x2029: "\\u2029"}


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    started: float
    finished: float
    verdict: Verdict
    git_clean: bool | None
    command: str
    dry_run: bool = False


@dataclass(frozen=True)
class PastRun:
    number: int
    run_id: str
    started: str
    outcome: str | None
    duration: float | None


@dataclass
class History:
    """The last runs, newest first, and each task's (outcome, duration) in them by run number."""

    runs: list[PastRun] = field(default_factory=list)
    tasks: Mapping[str, Mapping[int, tuple[str, float]]] = field(default_factory=dict)


def cut_tail(text: str, limit: int) -> str:
    """The last ``limit`` characters, with a note of what was left out."""
    if len(text) <= limit:
        return text
    return f"[... {len(text) - limit} earlier characters cut; the whole output is in junit.xml]\n" + text[-limit:]


def cut_head(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[... {len(text) - limit} more characters cut; the whole diff is in run.json]\n"


def critical_path(graph: Graph, nodes: Iterable[str], weights: Mapping[str, float]) -> list[str]:
    """The chain of tasks with the largest total weight, among ``nodes``, first task first."""
    wanted = set(nodes)
    return dag.critical_path(graph, {n: max(weights.get(n, 0.0), 1e-6) for n in wanted}, wanted)[0]


def _attempt_messages(result: TaskResult) -> list[str]:
    messages = [_last_line(text) for text in result.earlier_failures]
    if result.message or result.attempts > len(messages):
        messages.append(result.message)
    return [m[:MESSAGE_MAX] for m in messages]


def _last_line(text: str) -> str:
    for line in reversed(text.strip().splitlines()):
        if line.strip().startswith("E "):
            return line.strip()[2:].strip()
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def script_json(data: Any) -> str:
    """JSON that cannot end or open an HTML element, whatever the strings in it hold."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).translate(_SCRIPT_SAFE)


def _needs(task: Task, plan: Plan) -> list[str]:
    """What a task waits for, as the plan says it: tasks, its group's groups, its phase's phases."""
    needs = list(task.depends_on)
    if not task.is_checkpoint:
        needs += [f"group {g}" for g in plan.group(task.phase, task.group).depends_on]
    needs += [f"phase {p}" for p in plan.phase(task.phase).depends_on]
    return needs


def _budgets(results: Sequence[TaskResult]) -> tuple[int, int]:
    """Per-task output and diff limits: the defaults, halved until the whole plan fits the budget.

    Measured as embedded (JSON-escaped), since a newline or a control character grows there.
    """
    out_limit, diff_limit = OUTPUT_TAIL, DIFF_HEAD
    while True:
        total = sum(len(script_json(cut_tail(r.output or r.stdout, out_limit))) +
                    len(script_json(cut_head(r.diff, diff_limit))) for r in results)
        if total <= TEXT_BUDGET or diff_limit <= 64:
            return out_limit, diff_limit
        out_limit, diff_limit = max(64, out_limit // 2), diff_limit // 2


def build_view(results: Sequence[TaskResult], plan: Plan, graph: Graph, run: RunInfo,
               history: History | None = None, path: list[str] | None = None) -> dict[str, Any]:
    """The whole report as JSON-ready data; index.html's scripts draw everything from it.

    ``path``: the run's critical path when the caller has it already (else computed here).
    """
    history = history or History()
    by_task = {r.task_id: r for r in results if r.task_id is not None}
    timed = [r for r in results if r.started is not None]
    t0 = min((r.started for r in timed), default=run.started)
    t0 = min(t0, run.started)
    if path is None:
        path = critical_path(graph, by_task, {t: r.duration for t, r in by_task.items()})
    out_limit, diff_limit = _budgets(results)
    numbers = [r.number for r in history.runs]

    def rel(value: float | None) -> float | None:
        return None if value is None else round(value - t0, 4)

    tasks = []
    for result in results:
        task = plan.tasks.get(result.task_id) if result.task_id else None
        past = history.tasks.get(result.task_id or "", {})
        tasks.append({
            "id": result.task_id or result.nodeid,
            "name": task.name if task else result.nodeid.split("::")[-1],
            "phase": task.phase if task else "",
            "group": task.group if task else "",
            "type": task.type if task else "pytest",
            "tags": list(task.tags) if task else [],
            "critical": task.critical if task else True,
            # as declared: the expanded edges of a phase dependency grow with the square of the plan
            "needs": _needs(task, plan) if task else [],
            "declared": list(task.depends_on) if task else [],
            "outcome": word(result.status),
            "attempts": result.attempts,
            "messages": _attempt_messages(result),
            "reason": result.reason,
            "message": result.message[:MESSAGE_MAX],
            "worker": result.worker or "main",
            "start": rel(result.started),
            "end": rel(result.finished),
            "duration": round(result.duration, 4),
            "spans": [[rel(s), rel(e), word(o)] for s, e, o in result.spans] or
                     ([[rel(result.started), rel(result.finished), word(result.status)]] if result.started else []),
            "changed": list(result.changed),
            "diff": cut_head(result.diff, diff_limit),
            "output": cut_tail(result.output or result.stdout, out_limit),
            "stderr": cut_tail(result.stderr, out_limit // 4),
            "history": [[n, *past[n]] if n in past else [n, None, None] for n in numbers],
        })
    counts: dict[str, int] = {}
    for result in results:
        counts[word(result.status)] = counts.get(word(result.status), 0) + 1
    phases = []
    for phase in plan.phases:
        groups = [{"id": g.id, "name": g.name, "depends_on": list(g.depends_on),
                   "tasks": [t.id for t in g.tasks]} for g in phase.groups]
        if phase.checkpoints:
            groups.append({"id": "checkpoints", "name": "checkpoints", "depends_on": [],
                           "tasks": [t.id for t in phase.checkpoints]})
        phases.append({"id": phase.id, "name": phase.name, "depends_on": list(phase.depends_on), "groups": groups})
    verdict = run.verdict
    return {
        "run": {
            "id": run.run_id, "plan": plan.name, "started": iso(run.started), "finished": iso(run.finished),
            "duration": round(run.finished - run.started, 3), "outcome": verdict.outcome,
            "cause": verdict.cause.value, "headline": verdict.headline, "cause_tasks": list(verdict.tasks),
            "hints": list(verdict.hints), "git_clean": run.git_clean, "command": run.command,
            "dry_run": run.dry_run, "counts": counts, "t0": iso(t0),
        },
        "phases": phases,
        "tasks": tasks,
        "critical_path": path,
        "history": [{"number": r.number, "run_id": r.run_id, "started": r.started, "outcome": r.outcome,
                     "duration": r.duration} for r in history.runs],
        "limits": {"output": out_limit, "diff": diff_limit},
    }
