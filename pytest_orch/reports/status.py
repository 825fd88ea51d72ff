"""--orch-status: each task's last outcome and whether a run now would find it up to date.

Laid out as the preview is: plan order, phase and group headings, one aligned table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_orch.dag import topological
from pytest_orch.reports.preview import outline, table

if TYPE_CHECKING:
    from pytest_orch.history import History
    from pytest_orch.session import OrchSession


def verdicts(session: OrchSession, state: History) -> dict[str, str]:
    """Read-only: what a run now would do with each task (dependencies first, so staleness spreads)."""
    plan, graph = session.plan, session.graph
    verdict: dict[str, str] = {}
    fresh_ids: set[str] = set()  # the tasks found up to date: the verdict's words are for people
    first_stale: dict[str, str | None] = {}  # per phase or group: looked at once, not per dependent

    def stale_in(barrier: str) -> str | None:
        if barrier not in first_stale:
            first_stale[barrier] = next((t for t in sorted(graph.barriers[barrier])
                                         if t not in fresh_ids), None)
        return first_stale[barrier]

    for task_id in topological(graph):
        task = plan.tasks[task_id]
        stale_deps = [d for d in sorted(graph.direct.get(task_id, ())) if d not in fresh_ids]
        stale_deps += [t for b in graph.via.get(task_id, ()) if (t := stale_in(b)) is not None]
        fresh = state.freshness(task)
        if state.previous_outcome(task_id) is None:
            verdict[task_id] = "never ran"
        elif stale_deps:
            verdict[task_id] = f"stale: dependency {stale_deps[0]} is not up to date"
        elif not fresh.up_to_date:
            verdict[task_id] = f"stale: {fresh.reason}"
        else:
            verdict[task_id] = "up to date"
            fresh_ids.add(task_id)
    return verdict


def status_lines(session: OrchSession, state: History) -> list[str]:
    """What earlier runs left, and what a run now would do with each task."""
    verdict = verdicts(session, state)
    rows: list[str | tuple[str, ...]] = []
    for entry in outline(session.plan, set(session.plan.tasks)):
        if isinstance(entry, str):
            rows.append(entry)
            continue
        task = entry[0]
        record = state.last.get(task.id)
        if record is None:
            rows.append((task.id, "-", "-", "-", verdict[task.id]))
        else:
            rows.append((task.id, record.outcome.replace("_", " "), record.finished or "-",
                         f"{record.duration:.2f} s", verdict[task.id]))
    return table(("task", "last outcome", "finished", "took", "now"), rows)


def write_status(tr: Any, session: OrchSession, state: History) -> None:
    tr.write_sep("=", "pytest-orch status")
    tr.write("\n".join(status_lines(session, state)) + "\n")
