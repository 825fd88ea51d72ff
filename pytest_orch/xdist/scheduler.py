"""DagScheduling: the xdist ``Scheduling`` protocol over the plan's graph (``-n N``).

The module is registered as the plugin "orch-xdist" on the controller whenever xdist is loaded;
``pytest_xdist_make_scheduler`` returns a ``DagScheduling`` when the session has a valid plan (else
None, and xdist's own ``--dist`` applies).

How work is handed out (see worker.py for the worker side):
- a worker gets ``[index, placeholder]``: it runs the task at once and then idles in the
  placeholder; a node's pending list never holds the placeholder, and its completion is ignored
  but for handing out work;
- an item is *due* when all its prerequisites have ended; then the controller (its coordinator)
  decides whether it runs; one that does not is reported by ``Controller.report_not_run`` and
  never sent;
- every report of an item reaches the controller before its ``runtest_protocol_complete`` (one
  FIFO channel per worker), so the outcome is known in ``mark_test_complete``, which makes the
  dependents due;
- among ready tasks the longest remaining path (estimated durations) goes first, within group
  ``max_parallel``, pool limits and the pools' token buckets;
- scheduling starts with the first worker's collection; later workers join as they come.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pytest

from pytest_orch import compat
from pytest_orch.collect import SESSION_KEY
from pytest_orch.dag import is_barrier, longest_paths
from pytest_orch.outcomes import PlainNeeds
from pytest_orch.ratelimit import buckets_for
from pytest_orch.session import PLAN_INPUT
from pytest_orch.xdist.ready import ReadySet, limits_for
from pytest_orch.xdist.remote import HOSTS_KEY
from pytest_orch.xdist.worker import needs_from, take_extra_ids

if TYPE_CHECKING:
    from pytest_orch.controller import Controller
    from pytest_orch.session import OrchSession

# Queue a leaf task behind a running one when more are ready than workers are idle (README,
# "Parallel runs"); ORCH_PREFETCH=0 turns it off, for the benchmark that compares both.
PREFETCH = os.environ.get("ORCH_PREFETCH", "1") != "0"
SCHED_KEY = pytest.StashKey["DagScheduling"]()
CONTROLLER_KEY = pytest.StashKey["Controller"]()
CRASH_MESSAGE = ("the worker process {worker} died while running {what} (os._exit, a signal such as a "
                 "segfault, or a timeout with the thread method); xdist replaces the worker and the "
                 "run goes on")


def pytest_configure_node(node: Any) -> None:
    """Send each worker the plan the controller has validated, so it need not load it again."""
    orch: OrchSession | None = node.config.stash.get(SESSION_KEY, None)
    sent = orch.pickled if orch is not None else None
    if sent is not None:
        node.workerinput[PLAN_INPUT] = sent


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> DagScheduling | None:
    """Our scheduler whenever the session has a valid plan; xdist's is trylast, so ours wins.

    After an early start (early.py) it is the one that opened the run on the controller's collection.
    """
    orch: OrchSession | None = config.stash.get(SESSION_KEY, None)
    if orch is None or not orch.ok or not orch.collects_plan():
        return None
    opened = config.stash.get(SCHED_KEY, None)
    if opened is not None:
        opened.log = log.dagsched
        return opened
    return DagScheduling(config, config.stash[CONTROLLER_KEY], log)


def open_early(config: pytest.Config, ids: list[str], workers: int) -> DagScheduling:
    """The scheduler, opened on the controller's own collection before any worker has collected.

    Early start needs a session of the plan alone, so no plain test carries dependencies to resolve.
    """
    sched = DagScheduling(config, config.stash[CONTROLLER_KEY])
    sched.numnodes = workers  # xdist's spec list is empty: early.py started the workers itself
    sched.provisional = True
    sched.collection = ids
    sched._start(ids, {})
    return sched


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    """Take the placeholder and the manifest off the collection before anyone counts it."""
    sched = node.config.stash.get(SCHED_KEY, None)
    placeholder, manifest = take_extra_ids(ids)
    if sched is not None:
        sched.extras[node] = (placeholder, manifest)


@pytest.hookimpl(trylast=True)
def pytest_handlecrashitem(crashitem: str, report: pytest.TestReport, sched: Any) -> None:
    """Say plainly that the worker died in this task (rerunfailures may have rescheduled it)."""
    if not isinstance(sched, DagScheduling) or report.outcome != "failed":
        return
    node = compat.node_of_report(report)
    worker = compat.worker_id_of(node) if node is not None else "?"
    task_id = sched.orch.task_id_of(crashitem)
    what = f"task {task_id}" if task_id else repr(crashitem)
    lost = sched.hosts.lost_message(worker, what) if sched.hosts is not None else None
    report.longrepr = lost or CRASH_MESSAGE.format(worker=worker, what=what)


@pytest.hookimpl(trylast=True)
def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """The final report of a crashed item ends it (after the controller has recorded it)."""
    if report.when != "???":
        return
    node = compat.node_of_report(report)
    sched = node.config.stash.get(SCHED_KEY, None) if node is not None else None
    if sched is not None:
        sched.crash_reported(report)


class DagScheduling:
    """The xdist ``Scheduling`` protocol over the plan's graph. Node ids are the keys."""

    def __init__(self, config: pytest.Config, controller: Controller, log: Any = None) -> None:
        self.config = config
        config.stash[SCHED_KEY] = self
        self.orch: OrchSession = config.stash[SESSION_KEY]
        self.controller = controller
        self.log = log.dagsched if log is not None else (lambda *a: None)
        self.extras: dict[Any, tuple[int | None, dict[str, dict[str, list[str]]]]] = {}
        self.node2collection: dict[Any, list[str]] = {}
        self.node2index: dict[Any, dict[str, int]] = {}
        self.node2placeholder: dict[Any, int] = {}
        self.node2pending: dict[Any, list[str]] = {}
        self.collection: list[str] | None = None
        self.core: ReadySet[str] | None = None
        self.task_of: dict[str, str | None] = {}
        self.needs: dict[str, PlainNeeds] = {}
        self.crashed: set[str] = set()
        self.aborted = False
        self.stopped = False
        self._timer: threading.Timer | None = None
        self._timer_due = 0.0
        self._bad_nodes: set[Any] = set()
        self.numnodes = compat.worker_count(config)
        hosts = config.stash.get(HOSTS_KEY, None)
        # remote workers: where each item may run; on one machine any worker runs anything (the specs
        # are known by now: xdist set its nodes up before it asks for a scheduler)
        self.hosts = hosts if hosts is not None and hosts.remote_requested else None
        self._hosts_seen = 0
        self.provisional = False
        """The collection is the controller's (early start) until the first worker's arrives."""
        self.ended_before: set[str] = set()

    # -- the protocol's properties -------------------------------------------------------------
    @property
    def nodes(self) -> list[Any]:
        return list(self.node2pending)

    @property
    def collection_is_completed(self) -> bool:
        """True from the first worker's collection on: work starts before the others are up."""
        return self.collection is not None or bool(self.node2collection)

    @property
    def tests_finished(self) -> bool:
        if self.core is None:
            return False
        if self.stopped:
            return not any(self.node2pending.values())
        return self.core.finished and not self.crashed and not any(self.node2pending.values())

    @property
    def has_pending(self) -> bool:
        if self.core is None:
            return False
        return bool(self.core.ready_count() or any(self.node2pending.values()))

    # -- nodes and their collections -------------------------------------------------------------
    def add_node(self, node: Any) -> None:
        assert node not in self.node2pending
        self.node2pending[node] = []

    def add_node_collection(self, node: Any, collection: Sequence[str]) -> None:
        ids = list(collection)
        placeholder, manifest = self.extras.pop(node, (None, {}))
        if self.collection is None:
            self.collection = ids
            self._start(ids, manifest)
        elif self.provisional:
            self.provisional = False
            if ids != self.collection:
                self._restart(ids, manifest)
        elif ids != self.collection:
            first = next(iter(self.node2collection))
            msg = compat.collection_diff(self.collection, ids, compat.worker_id_of(first),
                                         compat.worker_id_of(node))
            self.log(msg)
            self._bad_nodes.add(node)
            self.config.hook.pytest_collectreport(report=pytest.CollectReport(
                nodeid=compat.worker_id_of(node), outcome="failed", longrepr=msg, result=[]))
            return
        if placeholder is None:
            self._bad_nodes.add(node)  # a worker without our worker plugin cannot be handed work
            return
        self.node2collection[node] = ids
        self.node2index[node] = {nodeid: i for i, nodeid in enumerate(ids)}
        self.node2placeholder[node] = placeholder

    def _start(self, ids: list[str], manifest: dict[str, dict[str, list[str]]]) -> None:
        """Build the graph of the collected items and open the run."""
        orch = self.orch
        plan, graph = orch.plan, orch.graph
        task_of = {n: orch.task_id_of(n) for n in ids}
        node_of_task = {t: n for n, t in task_of.items() if t is not None}
        self.task_of = task_of
        self.controller.start(set(node_of_task))
        # a phase's or group's barrier is a key of its own, ended the moment its tasks have: each task
        # waits for one barrier instead of for every task of an earlier phase (linear, not quadratic)
        # (only barriers some task waits for: a barrier would make every task of its group look like
        # one that others depend on, which prefetching avoids)
        used = {b for t in node_of_task for b in graph.via.get(t, ())}
        prerequisites: dict[str, set[str]] = {
            barrier: {node_of_task[t] for t in graph.barriers[barrier] if t in node_of_task} for barrier in used}
        for nodeid in ids:
            task_id = task_of[nodeid]
            if task_id is not None:
                prerequisites[nodeid] = {node_of_task.get(p, p) for p in graph.compact_prerequisites(task_id)
                                         if p in node_of_task or is_barrier(p)}
            else:
                entry = manifest.get(nodeid, {})
                prerequisites[nodeid] = set(entry.get("nodes", [])) & set(task_of)
                if entry:
                    needs = needs_from(entry)
                    self.needs[nodeid] = PlainNeeds(
                        tasks=needs.tasks, nodes=tuple(n for n in needs.nodes if task_of.get(n) is None))
        history = self.controller.history
        durations = history.durations() if history is not None else {}
        default = sum(durations.values()) / len(durations) if durations else 1.0
        weights = {n: durations.get(t, default) if t else default for n, t in task_of.items()}
        weights.update(dict.fromkeys(used, 0.0))
        pools = {**plan.pools, **orch.settings.pools}

        def group_of(nodeid: str) -> tuple[str, int | None] | None:
            task = plan.tasks[task_of[nodeid]] if task_of[nodeid] else None
            if task is None or task.is_checkpoint:
                return None
            group = plan.group(task.phase, task.group)
            return f"{task.phase}.{task.group}", group.max_parallel

        def pool_of(nodeid: str) -> str | None:
            return plan.tasks[task_of[nodeid]].pool if task_of[nodeid] else None

        slots, caps, rate_keys = limits_for(ids, group_of, pool_of, pools, plan.rate_limits)
        self.core = ReadySet(prerequisites, longest_paths(prerequisites, weights),
                             slots=slots, caps=caps, rates=rate_keys, buckets=buckets_for(plan.rate_limits))
        self._due(self.core.initially_due())

    def _restart(self, ids: list[str], manifest: dict[str, dict[str, list[str]]]) -> None:
        """The first worker collected otherwise than the controller did (a plugin that orders or selects
        per process): the worker's collection is the run's; what ended on the controller stays ended."""
        self.ended_before = set(self.core.ended) if self.core is not None else set()
        self.log(f"the first worker's collection differs from the controller's; {len(self.ended_before)} "
                 "items had ended there")
        self.collection = ids
        self._start(ids, manifest)

    def ended_here(self, nodeid: str) -> None:
        """The controller ran this item itself (early start): its dependents become due."""
        self._due(self._ended(nodeid))

    # -- decisions: the controller's ---------------------------------------------------------------
    def _due(self, keys: list[str]) -> None:
        """Ask the controller about each due key: ready to run, or reported and ended there."""
        work = list(keys)
        while work:
            nodeid = work.pop(0)
            if is_barrier(nodeid) or nodeid in self.ended_before:  # no item to run: it has ended
                work.extend(self.core.end(nodeid))
                continue
            decision = self.controller.decide(nodeid, self.needs.get(nodeid))
            if decision.runs:
                decision = self._placed(nodeid, decision)
            if decision.runs:
                self.core.push(nodeid)
                continue
            self.controller.report_not_run(nodeid, decision)
            work.extend(self._ended(nodeid))

    def _ended(self, nodeid: str) -> list[str]:
        """Record an item's end; return the items that became due."""
        self.core.release(nodeid)
        due = self.core.end(nodeid)
        coordinator = self.controller.coordinator
        if coordinator is not None and coordinator.aborted_by is not None and not self.aborted:
            self.aborted = True
            for ready in self.core.drain():  # found ready before the abort: they will not start now
                task_id = self.task_of.get(ready)
                decision = coordinator.withdraw(task_id) if task_id else coordinator.decide_plain(
                    ready, self.needs.get(ready, PlainNeeds(tasks=(coordinator.aborted_by,))))
                self.controller.report_not_run(ready, decision)
                due.extend(self.core.end(ready))
        return due

    # -- events from workers --------------------------------------------------------------------------
    def mark_test_complete(self, node: Any, item_index: int, duration: float = 0) -> None:
        collection = self.node2collection.get(node)
        if collection is None or self.core is None or item_index >= len(collection):
            self.schedule()  # the placeholder, a rate limit's wake-up, or a node that died meanwhile
            return
        nodeid = collection[item_index]
        self.node2pending[node].remove(nodeid)
        self._due(self._ended(nodeid))
        self.schedule()

    def mark_test_pending(self, item: str) -> None:
        """pytest-rerunfailures reschedules a task whose worker crashed: run it again."""
        self.crashed.discard(item)
        self.core.push(item)
        self.schedule()

    def remove_pending_tests_from_node(self, node: Any, indices: Sequence[int]) -> None:
        raise NotImplementedError()

    def remove_node(self, node: Any) -> str | None:
        """A node went down. If it died in an item, return that item's node id.

        The item ends when xdist's crash report arrives (``crash_reported``); items sent after
        it never started and become ready again, so nothing is lost or run twice.
        """
        pending = self.node2pending.pop(node)
        self.node2collection.pop(node, None)
        self.node2index.pop(node, None)
        self.node2placeholder.pop(node, None)
        if not pending:
            return None
        crashed, rest = pending[0], pending[1:]
        self.core.release(crashed)
        self.crashed.add(crashed)
        for nodeid in rest:
            self.core.release(nodeid)
            self.core.push(nodeid)
        self.schedule()
        return crashed

    def crash_reported(self, report: pytest.TestReport) -> None:
        if report.nodeid not in self.crashed or report.outcome == "rerun":
            return
        self.crashed.discard(report.nodeid)
        self._due(self._ended(report.nodeid))
        self.schedule()

    # -- handing out work ----------------------------------------------------------------------------
    def _usable(self, node: Any) -> bool:
        return node in self.node2index and node not in self._bad_nodes and not node.shutting_down

    def schedule(self) -> None:
        """Give every idle worker the best ready task the limits allow."""
        if self.core is None or self.stopped:
            return
        if compat.session_should_stop(self.config):
            self.stopped = True  # -x, --maxfail or an interrupt: pytest's own meaning, start nothing
            return
        self._recheck_hosts()
        for node in [n for n in self.node2pending if self._usable(n) and not self.node2pending[n]]:
            accept = self.hosts.accepts(node) if self.hosts is not None else None
            nodeid = self.core.pop(accept=accept)
            if nodeid is None:
                if accept is None:
                    break
                continue  # this worker may not run what is ready; another may
            self._send(node, [nodeid])
        self._prefetch()
        self._arm_timer()
        self._release_workers()

    def _release_workers(self) -> None:
        """Once every task has started, let each worker exit as soon as its own work is done.

        Nothing can become ready any more, so an idle worker goes now and a busy one after its
        last item, instead of all of them waiting for the last task of the run to end.
        """
        if self.crashed or not self.core.all_started():
            return
        for node in self.node2pending:
            if self._usable(node):
                node.shutdown()

    def _prefetch(self) -> None:
        """With more ready tasks than idle workers, queue one behind a running task.

        The worker then starts it without waiting for a round trip through the controller.
        Only the lowest-priority ready tasks are queued this way, one per worker, and only
        tasks nothing depends on: a queued task waits for the worker's current one, and a
        task on the graph's paths would hold its dependents back while another worker idles.
        """
        if not PREFETCH or len(self.node2index) < self.numnodes:
            return  # while workers are still starting, a free one may come up any moment
        busy = [n for n in self.node2pending if self._usable(n) and len(self.node2pending[n]) == 1]
        if not busy or self.core.ready_count() <= len(busy):
            return
        for node in busy:
            if self.core.ready_count() <= len(busy):
                break
            nodeid = self.core.pop(lowest=True, accept=self.hosts.accepts(node) if self.hosts is not None else None)
            if nodeid is None:
                continue
            self._send(node, [nodeid])

    def _send(self, node: Any, nodeids: list[str]) -> None:
        index = self.node2index[node]
        self.node2pending[node].extend(nodeids)
        node.send_runtest_some([index[n] for n in nodeids] + [self.node2placeholder[node]])

    def _arm_timer(self) -> None:
        """A task held back by a rate limit: wake the controller's loop when a token is due."""
        wait = self.core.token_wait()
        if wait is None:
            return
        due = time.monotonic() + wait
        if self._timer is not None and self._timer.is_alive() and self._timer_due <= due:
            return
        node = next((n for n in self.node2pending if self._usable(n)), None)
        if node is None:
            return
        # the placeholder's completion is the scheduler's wake-up call; DSession's queue takes it
        self._timer = threading.Timer(wait + 0.001, compat.wake_controller,
                                      args=(node, self.node2placeholder[node]))
        self._timer.daemon = True
        self._timer_due = due
        self._timer.start()

    # -- remote workers (issue 14): where an item may run; items no live worker may run --------------
    def _placed(self, nodeid: str, decision: Any) -> Any:
        """A due item that runs: note where it may run; not run when no live worker may (hosts lost)."""
        why = self.hosts.place(nodeid) if self.hosts is not None else None
        if why is None:
            return decision
        return self.controller.coordinator.no_worker(self.task_of.get(nodeid) or nodeid, why)

    def _recheck_hosts(self) -> None:
        """A host went away since the last look: ready items only it could run are not run."""
        if self.hosts is None or self.hosts.table.generation == self._hosts_seen:
            return
        self._hosts_seen = self.hosts.table.generation
        ready = self.core.drain()
        for nodeid in ready:
            why = self.hosts.still_placeable(nodeid)
            if why is None:
                self.core.push(nodeid)
                continue
            decision = self.controller.coordinator.no_worker(self.task_of.get(nodeid) or nodeid, why)
            self.controller.report_not_run(nodeid, decision)
            self._due(self._ended(nodeid))

    def abandon(self, reason: str) -> None:
        """No worker is left: every item not started yet is reported not run, so the run can end."""
        if self.core is None:
            return
        self.core.drain()
        for nodeid in self.core.keys:
            if nodeid in self.core.ended or nodeid in self.core.running:
                continue
            decision = self.controller.coordinator.no_worker(self.task_of.get(nodeid) or nodeid, reason)
            self.controller.report_not_run(nodeid, decision)
            self.core.end(nodeid)
