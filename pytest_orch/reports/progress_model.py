"""What the progress display says: per phase done / running / waiting, the running tasks, the time left.

Pure: fed task starts and ends (from the controller's reports), it returns lines; the terminal side is
``reports/progress.py``. The estimate of the time left uses earlier runs' durations (the state's last
pass of each task): the longer of the remaining critical path and the remaining work spread over the
workers. It is recomputed at most every ESTIMATE_EVERY seconds, as a large plan's graph is not free.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from pytest_orch.dag import Graph, critical_path
from pytest_orch.plan.model import Plan

DONE = ("passed", "up_to_date")
ESTIMATE_EVERY = 1.0
SHOWN_RUNNING = 4


@dataclass
class PhaseProgress:
    id: str
    name: str
    tasks: list[str]
    outcomes: dict[str, str] = field(default_factory=dict)
    running: dict[str, float] = field(default_factory=dict)  # task id -> start time
    first_start: float | None = None
    last_end: float | None = None

    @property
    def finished(self) -> bool:
        return len(self.outcomes) == len(self.tasks)

    @property
    def waiting(self) -> int:
        return len(self.tasks) - len(self.outcomes) - len(self.running)

    def count(self, *outcomes: str) -> int:
        return sum(1 for o in self.outcomes.values() if o in outcomes)


def format_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


class ProgressModel:
    """Counts per phase of the selected tasks, in plan order."""

    def __init__(self, plan: Plan, graph: Graph, selected: Collection[str], durations: Mapping[str, float],
                 workers: int = 1) -> None:
        self.graph = graph
        self.durations = dict(durations)
        self.workers = max(1, workers)
        chosen = set(selected)
        self.phases = [PhaseProgress(p.id, p.name, [t.id for t in p.all_tasks if t.id in chosen])
                       for p in plan.phases]
        self.phases = [p for p in self.phases if p.tasks]
        self.phase_of = {t: p for p in self.phases for t in p.tasks}
        self._estimate: tuple[float, float | None] | None = None  # (computed at, seconds left)

    def start(self, task_id: str, now: float) -> None:
        phase = self.phase_of.get(task_id)
        if phase is not None and task_id not in phase.outcomes:
            phase.running.setdefault(task_id, now)
            phase.first_start = phase.first_start if phase.first_start is not None else now

    def finish(self, task_id: str, outcome: str, now: float) -> PhaseProgress | None:
        """Record a task's final outcome; return its phase when this ended the phase."""
        phase = self.phase_of.get(task_id)
        if phase is None:
            return None
        phase.running.pop(task_id, None)
        phase.outcomes[task_id] = outcome
        phase.first_start = phase.first_start if phase.first_start is not None else now
        phase.last_end = now
        return phase if phase.finished else None

    # -- the time left -------------------------------------------------------------------------
    def estimate_left(self, now: float) -> float | None:
        """Seconds until the selected tasks have ended, or None while nothing is known about them."""
        if self._estimate is not None and now - self._estimate[0] < ESTIMATE_EVERY:
            return self._estimate[1]
        self._estimate = (now, self._compute(now))
        return self._estimate[1]

    def _compute(self, now: float) -> float | None:
        known = [d for d in self.durations.values() if d > 0]
        if not known:
            return None
        typical = sorted(known)[len(known) // 2]
        left: dict[str, float] = {}
        for phase in self.phases:
            for task_id in phase.tasks:
                if task_id in phase.outcomes:
                    continue
                expected = self.durations.get(task_id) or typical
                if task_id in phase.running:
                    expected = max(0.0, expected - (now - phase.running[task_id]))
                left[task_id] = expected
        if not left:
            return 0.0
        return max(critical_path(self.graph, left, left)[1], sum(left.values()) / self.workers)

    # -- lines -------------------------------------------------------------------------------------------
    def phase_line(self, phase: PhaseProgress) -> str:
        """The permanent line of a finished phase."""
        parts = [f"{phase.count('passed')} passed"]
        for outcome in ("up_to_date", "failed", "skipped"):
            if phase.count(outcome):
                parts.append(f"{phase.count(outcome)} {outcome.replace('_', ' ')}")
        took = (phase.last_end or 0.0) - (phase.first_start or 0.0)
        return f"phase {phase.id} ({phase.name}) ended: {', '.join(parts)} in {format_seconds(max(0.0, took))}"

    def left_text(self, now: float) -> str:
        left = self.estimate_left(now)
        if left is None:
            return "time left unknown (no earlier run)"
        return f"about {format_seconds(left)} left"

    def status_line(self, now: float, width: int = 200) -> str:
        """One line for the live display: the phases under way, what runs, what waits, the time left."""
        parts = []
        for phase in self.phases:
            if phase.finished or (not phase.running and not phase.outcomes):
                continue
            running = list(phase.running)
            shown = ", ".join(running[:SHOWN_RUNNING]) + (" ..." if len(running) > SHOWN_RUNNING else "")
            parts.append(f"phase {phase.id}: {phase.count(*DONE)}/{len(phase.tasks)} done, "
                         f"{len(running)} running" + (f" ({shown})" if shown else "") + f", {phase.waiting} waiting")
        pending = sum(1 for p in self.phases if not p.running and not p.outcomes)
        if pending:
            parts.append(f"{pending} phase{'s' if pending > 1 else ''} to come")
        # the time left comes first: a narrow terminal cuts the end of the line
        line = f"orch [{self.left_text(now)}] " + " | ".join(parts or ["starting"])
        return line if len(line) < width else line[:max(10, width - 4)] + "..."
