"""reports/timeline.svg: when each task ran, on which worker, and how it ended, as a picture."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from html import escape
from pathlib import Path

from pytest_orch.fileio import atomic_write
from pytest_orch.results import TaskResult

COLOURS = {"passed": "#3a9d5d", "failed": "#d1453b", "skipped": "#b0b0b0", "up_to_date": "#8cb4d9"}
ROW, LABEL, WIDTH, TOP, MARGIN = 18, 220, 900, 48, 16
# beyond this many tasks one row per task is unreadable: draw one row per worker instead
MAX_TASK_ROWS = 150


def _ticks(span: float) -> list[float]:
    """About eight round tick positions from 0 to ``span`` seconds."""
    raw = max(span / 8, 1e-3)
    step = next(s for s in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600)
                if s >= raw) if raw <= 3600 else raw
    return [i * step for i in range(int(span / step) + 1)]


def build_svg(results: Iterable[TaskResult], label_of: Callable[[TaskResult], str], title: str) -> str:
    """An SVG Gantt chart: a row per task (or per worker for big runs), a bar per task."""
    timed = sorted((r for r in results if r.started is not None and r.finished is not None),
                   key=lambda r: (r.started, r.nodeid))
    if not timed:
        return _svg(WIDTH, TOP + ROW, [f'<text x="{MARGIN}" y="{TOP}">no task ran</text>'], title)
    start = min(r.started for r in timed)
    span = max(max(r.finished for r in timed) - start, 1e-3)
    scale = (WIDTH - LABEL - 2 * MARGIN) / span
    per_task = len(timed) <= MAX_TASK_ROWS
    rows = [label_of(r) for r in timed] if per_task else sorted({r.worker or "main" for r in timed})
    height = TOP + ROW * len(rows) + 40
    parts = []
    for tick in _ticks(span):
        x = LABEL + MARGIN + tick * scale
        parts.append(f'<line x1="{x:.1f}" y1="{TOP - 6}" x2="{x:.1f}" y2="{height - 34}" stroke="#e4e4e4"/>')
        parts.append(f'<text x="{x:.1f}" y="{TOP - 10}" text-anchor="middle" class="tick">{tick:g}s</text>')
    for index, name in enumerate(rows):
        y = TOP + index * ROW
        parts.append(f'<text x="{LABEL + MARGIN - 6}" y="{y + 13}" text-anchor="end">{escape(name)}</text>')
    row_of = {name: i for i, name in enumerate(rows)}
    for i, result in enumerate(timed):
        row = i if per_task else row_of[result.worker or "main"]
        x = LABEL + MARGIN + (result.started - start) * scale
        width = max(2.0, result.duration * scale)
        colour = COLOURS.get(result.status.value, "#999")
        tip = f"{label_of(result)}: {result.status.value}, {result.duration:.3f} s" + \
            (f" on {result.worker}" if result.worker else "") + (f" ({result.message})" if result.message else "")
        parts.append(f'<rect x="{x:.1f}" y="{TOP + row * ROW + 3}" width="{width:.1f}" height="{ROW - 6}" '
                     f'rx="2" fill="{colour}"><title>{escape(tip)}</title></rect>')
        if per_task and result.worker:
            parts.append(f'<text x="{x + width + 4:.1f}" y="{TOP + row * ROW + 13}" class="tick">'
                         f'{escape(result.worker)}</text>')
    legend_y = height - 16
    for i, (outcome, colour) in enumerate(COLOURS.items()):
        x = MARGIN + i * 130
        parts.append(f'<rect x="{x}" y="{legend_y - 10}" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{x + 18}" y="{legend_y}">{outcome.replace("_", " ")}</text>')
    return _svg(WIDTH, height, parts, f"{title}: {len(timed)} tasks in {span:.2f} s")


def _svg(width: int, height: int, parts: list[str], title: str) -> str:
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        "<style>.tick{fill:#777;font-size:10px} .title{font-size:14px;font-weight:bold}</style>",
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{MARGIN}" y="20" class="title">{escape(title)}</text>',
        *parts,
        "</svg>",
        "",
    ])


def write_timeline(path: Path, results: Iterable[TaskResult], label_of: Callable[[TaskResult], str],
                   title: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, build_svg(results, label_of, title))
