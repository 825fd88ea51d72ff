"""How many xdist workers a run can use, decided before any worker starts. No pytest here.

Starting workers costs more than many plans save: on two cores a worker takes about half a
second to come up, and a roadmap of config edits and generated files does its work in
milliseconds. So ``-n N`` is an upper bound: the run uses the number of workers (none at all:
in process) that its estimated schedule says is fastest, from the tasks' durations in earlier
runs, the graph's critical path, and the measured cost of starting workers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from pytest_orch.dag import longest_paths

# Measured on this project's CI machine kind (2 cores; README "Speed"): the first worker adds
# about 0.5 s to a run, each further one about 0.15 s more (they start together and share the cores).
FIRST_WORKER_SECONDS = 0.5
EACH_MORE_WORKER_SECONDS = 0.15
# per task on top of its own work: in process, and on a worker (the round trip through the controller)
IN_PROCESS_TASK_SECONDS = 0.003
ON_WORKER_TASK_SECONDS = 0.005
# a task that never ran and whose handler gives no estimate (a command): assume it is slow enough
# that workers may pay off, so a first run of a plan of real commands is not kept in one process
UNKNOWN_TASK_SECONDS = 0.5
# workers must win by this much: the estimates are rough, and a tie is better spent in one process
MARGIN = 0.9


@dataclass(frozen=True)
class WorkerChoice:
    workers: int          # 0: in process
    in_process: float     # estimated seconds
    on_workers: float     # estimated seconds with ``workers`` (or the best count, when 0)

    def describe(self, asked: int) -> str:
        if self.workers == asked:
            return ""
        if self.workers == 0:
            return (f"-n {asked}: running in process, estimated {self.in_process:.2f} s here against "
                    f"{self.on_workers:.2f} s on workers (--orch-parallel=always keeps the workers)")
        return (f"-n {asked}: starting {self.workers} workers, all the plan's graph can use "
                f"(estimated {self.on_workers:.2f} s; --orch-parallel=always starts {asked})")


def choose_workers(tasks: Iterable[str], prerequisites: Callable[[str], Iterable[str]],
                   estimate: Callable[[str], float], asked: int) -> WorkerChoice:
    """The fastest worker count up to ``asked`` for these tasks, or 0 when one process is fastest."""
    wanted = list(tasks)
    members = set(wanted)
    weights = {t: estimate(t) for t in wanted}
    graph = {t: [p for p in prerequisites(t) if p in members] for t in wanted}
    critical = max(longest_paths(graph, weights).values(), default=0.0)
    work = sum(weights.values())
    in_process = work + IN_PROCESS_TASK_SECONDS * len(wanted)
    best, best_time = 0, float("inf")
    for workers in range(1, max(asked, 0) + 1):
        span = max(critical, work / workers) + ON_WORKER_TASK_SECONDS * len(wanted) / workers
        total = FIRST_WORKER_SECONDS + EACH_MORE_WORKER_SECONDS * (workers - 1) + span
        if total < best_time - 1e-9:
            best, best_time = workers, total
    if best == 0 or best_time > MARGIN * in_process:
        return WorkerChoice(0, in_process, best_time)
    return WorkerChoice(best, in_process, best_time)


def estimator(durations: Mapping[str, float], typical: Callable[[str], float | None]) -> Callable[[str], float]:
    """A task's estimated seconds: its last pass, else its handler's typical time, else UNKNOWN."""
    def estimate(task_id: str) -> float:
        if task_id in durations:
            return durations[task_id]
        guess = typical(task_id)
        return UNKNOWN_TASK_SECONDS if guess is None else guess
    return estimate
