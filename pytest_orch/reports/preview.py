"""The plan preview of ``--collect-only``: one aligned table in plan order, and a footer.

It reads like the plan: phases, groups and tasks in file order (the critical-path order is for
running, not for reading), each task with the dependencies its plan declares (phase, group and its
own ``depends_on``, even those its phase already implies). The footer gives the task count, the
critical path and its estimate from the durations of earlier runs. Linear in the plan: nothing
here expands the graph's edges.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pytest_orch.dag import Graph, critical_path
from pytest_orch.plan.model import Plan, Task

if TYPE_CHECKING:
    from pathlib import Path

    from pytest_orch.session import OrchSession

NAME_WIDTH = 48  # longer names are cut with "...": the columns after them must stay aligned
PATH_SHOWN = 8  # a longer critical path shows its first and last tasks


def outline(plan: Plan, chosen: set[str]) -> Iterator[str | tuple[Task, list[str], str]]:
    """The plan in plan order: heading lines, and for each chosen task what it declares it needs
    (its phase's and group's dependencies, not yet its own) and what it runs after."""
    for phase in plan.phases:
        if not any(t.id in chosen for t in phase.all_tasks):
            continue
        after_phase = f" (after phase {', '.join(phase.depends_on)})" if phase.depends_on else ""
        yield f"phase {phase.id}: {phase.name}{after_phase}"
        from_phases = [f"phase {dep}" for dep in phase.depends_on]
        for group in phase.groups:
            if not any(t.id in chosen for t in group.tasks):
                continue
            how = "sequential" if group.execution == "sequential" else "parallel"
            limit = f", at most {group.max_parallel} at once" if group.max_parallel else ""
            yield f"  group {group.id}: {group.name} ({how}{limit})"
            needs = from_phases + [f"group {phase.id}.{dep}" for dep in group.depends_on]
            sequential = group.execution == "sequential"
            for i, task in enumerate(group.tasks):
                if task.id in chosen:
                    yield task, needs, group.tasks[i - 1].id if sequential and i else ""
        checkpoints = [t for t in phase.checkpoints if t.id in chosen]
        if checkpoints:
            yield "  checkpoints (after every task of the phase)"
            body = f"the tasks of phase {phase.id}" if any(g.tasks for g in phase.groups) else ""
            for task in checkpoints:
                yield task, from_phases, body


def table(header: Sequence[str], rows: Iterable[str | Sequence[str]]) -> list[str]:
    """Headings as they are; rows as columns two spaces apart, aligned under ``header``.

    The last column is not padded, so a long value there moves nothing.
    """
    rows = list(rows)
    cells = [r for r in rows if not isinstance(r, str)]
    widths = [max(len(r[i]) for r in [header, *cells]) for i in range(len(header) - 1)]
    lines = ["    " + _aligned(header, widths)]
    lines += [row if isinstance(row, str) else "    " + _aligned(row, widths) for row in rows]
    return lines


def preview_lines(plan: Plan, graph: Graph, selected: Sequence[str], durations: Mapping[str, float]) -> list[str]:
    """The table of the selected tasks, then the footer."""
    header = ("task", "type", "name", "after (ended first)", "needs (done first)")
    rows = (entry if isinstance(entry, str) else _row(*entry) for entry in outline(plan, set(selected)))
    return [*table(header, rows), "", *footer_lines(plan, graph, selected, durations)]


def _row(task: Task, needs: list[str], after: str) -> tuple[str, str, str, str, str]:
    """One task: what it declares it needs (its phase's and group's dependencies, then its own)."""
    name = task.name if task.name != task.id else "-"
    if len(name) > NAME_WIDTH:
        name = name[:NAME_WIDTH - 3] + "..."
    return task.id, task.type, name, after or "-", ", ".join([*needs, *task.depends_on]) or "-"


def _aligned(cells: Sequence[str], widths: Sequence[int]) -> str:
    """Columns two spaces apart; the last one unpadded (no trailing blanks)."""
    padded = [cell.ljust(width) for cell, width in zip(cells, widths, strict=False)]
    return "  ".join([*padded, *cells[len(widths):]]).rstrip()


def footer_lines(plan: Plan, graph: Graph, selected: Sequence[str], durations: Mapping[str, float]) -> list[str]:
    """Task count, critical path, estimate: what a reader of the plan wants to know before a run."""
    chosen = set(selected)
    checkpoints = sum(1 for t in selected if plan.tasks[t].is_checkpoint)
    phases = len({plan.tasks[t].phase for t in selected})
    count = f"{_count(len(selected), 'task')} in {_count(phases, 'phase')}"
    if checkpoints:
        count += f" ({_count(checkpoints, 'checkpoint')} among them)"
    sub = _subgraph(graph, chosen)
    known = {t: d for t, d in durations.items() if t in chosen}
    if known:
        default = sum(known.values()) / len(known)
        weights = {t: known.get(t, default) for t in chosen}
        path, total = critical_path(sub, weights)
        missing = sum(1 for t in path if t not in known)
        guess = f"; {missing} of them never ran: counted at the average {default:.1f} s" if missing else ""
        estimate = f"estimated {_duration(total)} from earlier runs{guess}"
    else:
        path, _ = critical_path(sub, {})
        estimate = "no estimate yet (no earlier run recorded a duration)"
    shown = path if len(path) <= PATH_SHOWN else [*path[:PATH_SHOWN // 2], "...", *path[-(PATH_SHOWN // 2):]]
    return [
        f"{count}",
        f"critical path: {_count(len(path), 'task')}, {' -> '.join(shown)}",
        f"critical path duration: {estimate}",
    ]


def _subgraph(graph: Graph, chosen: set[str]) -> Graph:
    """The graph of the selected tasks only (the rest does not run in this session)."""
    if len(chosen) == len(graph.nodes):
        return graph
    keep = [n for n in graph.nodes if n in chosen]
    return Graph(keep,
                 {n: graph.direct.get(n, set()) & chosen for n in keep},
                 {n: graph.after.get(n, set()) & chosen for n in keep},
                 {b: tuple(m for m in members if m in chosen) for b, members in graph.barriers.items()},
                 {n: graph.via.get(n, ()) for n in keep})


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 120:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def earlier_durations(root: Path) -> dict[str, float]:
    """Each task's duration in its last pass, read without writing anything (empty when none ran)."""
    from pytest_orch.state import STATE_DIR, StateStore

    if not (root / STATE_DIR).is_dir():
        return {}
    with StateStore.open(root, readonly=True) as store:
        return store.durations()


def write_preview(tr: Any, session: OrchSession, items: Sequence[Any]) -> None:
    """Write the preview of the selected tasks (pytest's collected items) to the terminal."""
    from pytest_orch.collect import TaskItem

    selected = [item.task.id for item in items if isinstance(item, TaskItem)]
    if tr is None or not selected:
        return
    tr.write_sep("=", "plan preview (plan order)")
    lines = preview_lines(session.plan, session.graph, selected, earlier_durations(session.settings.root))
    tr.write("\n".join(lines) + "\n")  # one write: 5000 write_line calls cost a third of a second
