"""The host table: which worker runs on which host, which hosts were lost, and which task may run where.

No xdist and no pytest here: remote.py feeds the table from xdist's events, the scheduler asks it
``may_run`` and ``placeable``. The rules (README, "Past one machine"):

- a worker *has the project* when it works in the controller's checkout: a local ``popen`` worker
  without ``chdir``, or a remote one whose ``chdir`` is that same directory (a shared filesystem,
  detected at start);
- a task whose handler writes project files, or whose dependencies changed files in this run on a
  worker that has the project, runs only on a worker that has the project;
- ``runs_on: local`` (task or group) pins a task to local workers, ``runs_on: [build1, ...]`` to
  named hosts, a plan's ``pool_hosts: {pool: [hosts]}`` does the same for every task of a pool;
- a refused, lost or down host gets no work; a task no live worker may run is not run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

LOCAL = "local"


def host_of_spec(ssh: str | None, socket: str | None) -> str:
    """The host a spec reaches: ``build1`` for ``ssh=-o X=1 user@build1``, ``h`` for ``socket=h:8888``."""
    if ssh:
        target = ssh.split()[-1]
        return target.rsplit("@", 1)[-1]
    if socket:
        return socket.rsplit(":", 1)[0]
    return LOCAL


@dataclass
class Worker:
    """One xdist worker (an execnet gateway) as the controller knows it."""

    gateway_id: str
    host: str
    spec: str
    has_project: bool
    names: frozenset[str]
    """What ``runs_on`` may call it: the host, user@host, the gateway id, and ``local`` for local workers."""
    chdir: str | None = None
    lost: bool = False


@dataclass
class Loss:
    """A host that went away during the run, and the tasks it took down."""

    host: str
    when: float
    why: str
    tasks: list[str] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Placement:
    """Where one task may run: only where the project is, and/or only on the named hosts."""

    needs_project: bool = False
    hosts: frozenset[str] = frozenset()

    def allows(self, worker: Worker) -> bool:
        if worker.lost:
            return False
        if self.needs_project and not worker.has_project:
            return False
        return not self.hosts or bool(worker.names & self.hosts)

    def describe(self) -> str:
        parts = []
        if self.hosts:
            parts.append("is pinned to " + ", ".join(sorted(self.hosts)))
        if self.needs_project:
            parts.append("needs the project's checkout (a local worker or one that shares it)")
        return " and ".join(parts) or "may run anywhere"


def pinned_hosts(runs_on: Iterable[str], group_runs_on: Iterable[str], pool: str | None,
                 pool_hosts: dict[str, tuple[str, ...]]) -> frozenset[str]:
    """The task's own ``runs_on``, else its group's, then narrowed by its pool's hosts."""
    own = frozenset(runs_on) or frozenset(group_runs_on)
    own = frozenset() if own == {"any"} else own
    pool_pin = frozenset(pool_hosts.get(pool, ())) if pool else frozenset()
    if own and pool_pin:
        return own & pool_pin or own  # a contradiction is reported by placeable(): nothing matches both
    return own or pool_pin


class HostTable:
    """Every worker the run started, the hosts down at start, refused or lost, and the rules above."""

    def __init__(self) -> None:
        self.workers: dict[str, Worker] = {}
        self.down_at_start: dict[str, str] = {}
        self.refused: dict[str, str] = {}
        """Why a worker was refused, keyed "host (gateway id)": one host may hold several checkouts."""
        self.losses: dict[str, Loss] = {}
        self.expected: dict[str, Worker] = {}
        """Remote workers still connecting, by gateway id: a task pinned to their host may wait for them."""
        self.late: list[str] = []
        self.generation = 0
        """Bumped whenever a host goes away, so the scheduler knows to look at its ready tasks again."""

    # -- filling the table -----------------------------------------------------------------------
    def add(self, worker: Worker) -> None:
        self.workers[worker.gateway_id] = worker

    def expect(self, worker: Worker) -> None:
        """A remote worker is connecting; until it reports, it may turn out to share the checkout."""
        worker.has_project = True
        self.expected[worker.gateway_id] = worker

    def worker(self, gateway_id: str | None) -> Worker | None:
        return self.workers.get(gateway_id or "")

    def is_remote(self, gateway_id: str) -> bool:
        worker = self.workers.get(gateway_id)
        return worker is not None and worker.host != LOCAL

    def lose(self, gateway_id: str, why: str) -> Loss | None:
        """A remote worker went down: its whole host counts as lost for the rest of the run."""
        worker = self.workers.get(gateway_id)
        if worker is None or worker.host == LOCAL:
            return None
        loss = self.losses.get(worker.host)
        if loss is None:
            loss = self.losses[worker.host] = Loss(worker.host, time.time(), why)
        for other in self.workers.values():
            if other.host == worker.host:
                other.lost = True
        self.generation += 1
        return loss

    # -- the rules ----------------------------------------------------------------------------------
    def live(self) -> list[Worker]:
        return [w for w in self.workers.values() if not w.lost]

    def placeable(self, placement: Placement) -> str | None:
        """None when a live worker may run a task so placed; else why none may."""
        if not (self.workers or self.expected):  # no table: nothing to judge
            return None
        if any(placement.allows(w) for w in [*self.live(), *self.expected.values()]):
            return None
        gone = [f"{h} (lost: {loss.why})" for h, loss in self.losses.items()]
        gone += [f"{h} (down at start)" for h in self.down_at_start]
        gone += [f"{h} (refused)" for h in self.refused]
        why = f"no live worker may run it: it {placement.describe()}"
        return why + (f"; gone: {', '.join(gone)}" if gone else "")

    def summary(self) -> list[tuple[str, str]]:
        """The terminal summary's lines about hosts, each with its colour ("" for none)."""
        lines: list[tuple[str, str]] = []
        hosts: dict[str, list[Worker]] = {}
        for worker in self.workers.values():
            if worker.host != LOCAL:
                hosts.setdefault(worker.host, []).append(worker)
        for host, workers in hosts.items():
            loss = self.losses.get(host)
            ids = ", ".join(w.gateway_id for w in workers)
            shared = " (shares the controller's checkout)" if workers[0].has_project else ""
            if loss is None:
                lines.append((f"host {host}: {ids}{shared}, ok", ""))
                continue
            at = time.strftime("%H:%M:%S", time.localtime(loss.when))
            took = ", ".join(loss.tasks) or "no task"
            retried = f"; retried elsewhere: {', '.join(loss.retried)}" if loss.retried else ""
            lines.append((f"host {host} LOST at {at} ({loss.why}): {ids}; took down {took}{retried}", "red"))
        lines += [(f"host {w.host} ({w.gateway_id}): still connecting when the run ended, not used", "yellow")
                  for w in self.expected.values()]
        lines += [(f"host {host}: connected after the run had ended, not used", "") for host in self.late]
        lines += [(f"host {host} DOWN at start, not used: {why}", "red") for host, why in self.down_at_start.items()]
        lines += [(f"host {host} REFUSED, not used: {why}", "yellow") for host, why in self.refused.items()]
        return lines

    def has_project(self, gateway_id: str | None) -> bool:
        worker = self.workers.get(gateway_id or "")
        return worker is None or worker.has_project  # in process (no worker id): the controller itself


def placement_of(task_id: str | None, prerequisites: Iterable[str], *, writes_files: Callable[[str], bool],
                 pins: Callable[[str], frozenset[str]], changed_here: Callable[[str], bool],
                 tainted: dict[str, bool]) -> Placement:
    """A task's placement once its prerequisites have ended.

    ``changed_here(p)``: prerequisite ``p`` changed files on a worker that has the project. A task
    downstream of such a change (directly or through tasks that ran after it) needs the project too;
    ``tainted`` remembers that per task as the run goes.
    """
    if task_id is None:
        return Placement()
    upstream = any(changed_here(p) or tainted.get(p, False) for p in prerequisites)
    tainted[task_id] = upstream
    return Placement(needs_project=writes_files(task_id) or upstream, hosts=pins(task_id))
