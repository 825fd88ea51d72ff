"""reports/timeline.svg: when each task ran, on which worker, and how it ended, as a picture.

Rows follow the plan's order (one per task; one per worker beyond MAX_TASK_ROWS tasks), phases are
bands, labels are whole, each attempt of a retried task is its own segment of the bar, the critical
path is outlined, and the title says the run's real outcome.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from html import escape
from pathlib import Path

from pytest_orch.fileio import atomic_write
from pytest_orch.plan.model import Plan
from pytest_orch.reports.verdict import word
from pytest_orch.results import TaskResult

COLOURS = {"passed": "#3a9d5d", "failed": "#d1453b", "skipped": "#b0b0b0", "up_to_date": "#8cb4d9"}
BANDS = ("#f4efe6", "#e9eff8")
ROW, WIDTH, TOP, MARGIN = 18, 900, 56, 16
CHAR = 6.4  # average width of an 11 px sans-serif character: labels are measured, never cut
# beyond this many tasks one row per task is unreadable: draw one row per worker instead
MAX_TASK_ROWS = 150
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")


def text(value: str) -> str:
    """Escape for XML, control characters shown as \\xNN (XML forbids them)."""
    return escape(_CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", value))


def _ticks(span: float) -> list[float]:
    """About eight round tick positions from 0 to ``span`` seconds."""
    raw = max(span / 8, 1e-3)
    step = next(s for s in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600)
                if s >= raw) if raw <= 3600 else raw
    return [i * step for i in range(int(span / step) + 1)]


def label(result: TaskResult, plan: Plan) -> str:
    if result.task_id is None:
        return result.nodeid.rsplit("::", 1)[-1]
    task = plan.tasks[result.task_id]
    return f"{task.id} {task.name}" if task.name != task.id else task.id


def _phase_of(result: TaskResult, plan: Plan) -> str:
    return plan.tasks[result.task_id].phase if result.task_id else ""


def _spans(result: TaskResult) -> list[tuple[float, float, str]]:
    if result.spans:
        return [(s, e, word(o)) for s, e, o in result.spans]
    assert result.started is not None and result.finished is not None
    return [(result.started, result.finished, result.status.value)]


def build_svg(results: Iterable[TaskResult], plan: Plan, title: str, critical: Sequence[str] = ()) -> str:
    """An SVG Gantt chart in plan order: a row per task (or per worker for big runs), a bar per task."""
    timed = [r for r in results if r.started is not None and r.finished is not None]
    if not timed:
        return _svg(WIDTH, TOP + ROW, [f'<text x="{MARGIN}" y="{TOP}">no task ran</text>'], title)
    start = min(r.started for r in timed)
    span = max(max(r.finished for r in timed) - start, 1e-3)
    per_task = len(timed) <= MAX_TASK_ROWS
    labels = {r.nodeid: label(r, plan) for r in timed}
    rows = [r.nodeid for r in timed] if per_task else sorted({r.worker or "main" for r in timed})
    names = [labels[n] for n in rows] if per_task else rows
    label_width = int(max(len(n) for n in names) * CHAR) + 12
    width = max(WIDTH, label_width + 2 * MARGIN + 600)
    scale = (width - label_width - 2 * MARGIN - 40) / span
    left = label_width + MARGIN
    height = TOP + ROW * len(rows) + 40
    on_path = set(critical)
    parts = _bands(timed, plan, per_task, rows, left, start, scale, width, height)
    for tick in _ticks(span):
        x = left + tick * scale
        parts.append(f'<line x1="{x:.1f}" y1="{TOP - 6}" x2="{x:.1f}" y2="{height - 34}" stroke="#e4e4e4"/>')
        parts.append(f'<text x="{x:.1f}" y="{TOP - 10}" text-anchor="middle" class="tick">{tick:g}s</text>')
    for index, name in enumerate(names):
        y = TOP + index * ROW
        parts.append(f'<text x="{left - 6}" y="{y + 13}" text-anchor="end">{text(name)}</text>')
    row_of = {name: i for i, name in enumerate(rows)}
    for result in timed:
        row = row_of[result.nodeid] if per_task else row_of[result.worker or "main"]
        spans = _spans(result)
        outline = ' stroke="#111" stroke-width="1.5"' if result.task_id in on_path else ""
        for attempt, (s, e, outcome) in enumerate(spans, 1):
            x = left + (s - start) * scale
            bar = max(2.0, (e - s) * scale)
            which = f" (attempt {attempt} of {len(spans)})" if len(spans) > 1 else ""
            tip = f"{labels[result.nodeid]}: {outcome}{which}, {e - s:.3f} s" + \
                (f" on {result.worker}" if result.worker else "") + \
                (f" ({result.message})" if result.message and attempt == len(spans) else "")
            parts.append(f'<rect x="{x:.1f}" y="{TOP + row * ROW + 3}" width="{bar:.1f}" height="{ROW - 6}" '
                         f'rx="2" fill="{COLOURS.get(outcome, "#999")}"{outline}><title>{text(tip)}</title></rect>')
        if per_task:
            end_x = left + (result.finished - start) * scale + 4
            note = result.worker or ""
            if result.status.value in ("skipped", "up_to_date") and result.message:
                note = f"{note} {result.message}".strip()  # a sliver's reason, readable without hovering
            if note:
                parts.append(f'<text x="{end_x:.1f}" y="{TOP + row * ROW + 13}" class="tick">{text(note[:120])}</text>')
    legend_y = height - 16
    for i, (outcome, colour) in enumerate(COLOURS.items()):
        x = MARGIN + i * 130
        parts.append(f'<rect x="{x}" y="{legend_y - 10}" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{x + 18}" y="{legend_y}">{outcome.replace("_", " ")}</text>')
    if on_path:
        x = MARGIN + len(COLOURS) * 130
        parts.append(f'<rect x="{x}" y="{legend_y - 10}" width="12" height="12" fill="white" stroke="#111"/>')
        parts.append(f'<text x="{x + 18}" y="{legend_y}">critical path</text>')
    return _svg(width, height, parts, f"{title}: {len(timed)} tasks in {span:.2f} s")


def _bands(timed: list[TaskResult], plan: Plan, per_task: bool, rows: list[str], left: float,
           start: float, scale: float, width: float, height: float) -> list[str]:
    """Phases as bands: across their rows when rows are tasks, across their time when rows are workers."""
    parts = []
    for i, phase in enumerate(plan.phases):
        mine = [r for r in timed if _phase_of(r, plan) == phase.id]
        if not mine:
            continue
        colour = BANDS[i % 2]
        name = text(f"phase {phase.id}: {phase.name}")
        if per_task:
            index = [rows.index(r.nodeid) for r in mine]
            y0, y1 = TOP + min(index) * ROW, TOP + (max(index) + 1) * ROW
            parts.append(f'<rect x="0" y="{y0}" width="{width}" height="{y1 - y0}" fill="{colour}" class="phase"/>')
            parts.append(f'<text x="{width - MARGIN}" y="{y0 + 12}" text-anchor="end" class="tick">{name}</text>')
        else:
            a = min(r.started for r in mine) - start
            b = max(r.finished for r in mine) - start
            x = left + a * scale
            parts.append(f'<rect x="{x:.1f}" y="{TOP - 4}" width="{max(2.0, (b - a) * scale):.1f}" '
                         f'height="{height - TOP - 30}" fill="{colour}" class="phase"/>')
            parts.append(f'<text x="{x + 2:.1f}" y="{TOP - 22}" class="tick">{name}</text>')
    return parts


def _svg(width: float, height: int, parts: list[str], title: str) -> str:
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height}" '
        f'viewBox="0 0 {width:.0f} {height}" font-family="sans-serif" font-size="11">',
        "<style>.tick{fill:#777;font-size:10px} .title{font-size:14px;font-weight:bold}</style>",
        f'<rect width="{width:.0f}" height="{height}" fill="white"/>',
        f'<text x="{MARGIN}" y="20" class="title">{text(title)}</text>',
        *parts,
        "</svg>",
        "",
    ])


def write_timeline(path: Path, results: Iterable[TaskResult], plan: Plan, title: str,
                   critical: Sequence[str] = ()) -> None:
    """``results`` in plan order (the controller's order): the rows keep it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, build_svg(results, plan, title, critical))
