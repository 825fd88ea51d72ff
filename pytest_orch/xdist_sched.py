"""xdist integration: DagScheduling, a scheduler that follows the plan's graph on ``-n N``.

Registered as the plugin "orch-xdist" on the controller and on every worker whenever xdist is
loaded. On the controller ``pytest_xdist_make_scheduler`` returns a ``DagScheduling`` when the
session has a valid plan (else None, and xdist's own ``--dist`` applies). On workers it registers
``pytest_orch.placeholder``, which adds the idle placeholder and the dependency manifest.

How work is handed out (see placeholder.py for the worker side):
- a worker gets ``[index, placeholder]``: it runs the task at once and then idles in the
  placeholder; a node's pending list never holds the placeholder, and its completion is ignored;
- a task is *due* when all its prerequisites have ended; then ``Coordinator.decide`` says whether
  it runs; a skip or up-to-date task is reported here, on the controller, and never sent;
- every report of an item reaches the controller before its ``runtest_protocol_complete`` (one
  FIFO channel per worker), so the outcome is known in ``mark_test_complete``, which releases or
  skips the dependents;
- among ready tasks the longest remaining path (estimated durations) goes first, within group
  ``max_parallel``, pool limits and the pools' token buckets;
- scheduling starts with the first worker's collection; later workers join as they come.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest

from pytest_orch import placeholder
from pytest_orch.collect import RUNTIME_KEY
from pytest_orch.coordinator import Decision
from pytest_orch.ratelimit import parse_rate
from pytest_orch.runtime import PLAN_INPUT, Runtime, is_worker
from pytest_orch.sched_core import ReadySet, limits_for, remaining_paths

PREFETCH = os.environ.get("ORCH_PREFETCH", "1") != "0"  # benchmarks compare both
SESSION_KEY = pytest.StashKey[pytest.Session]()
SCHED_KEY = pytest.StashKey["DagScheduling"]()
CRASH_MESSAGE = ("the worker process {worker} died while running {what} (os._exit, a signal such as a "
                 "segfault, or a timeout with the thread method); xdist replaces the worker and the "
                 "run goes on")


def pytest_configure(config: pytest.Config) -> None:
    if is_worker(config) and not config.pluginmanager.is_registered(placeholder):
        config.pluginmanager.register(placeholder, "orch-placeholder")


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[SESSION_KEY] = session


def pytest_configure_node(node: Any) -> None:
    """Send each worker the plan the controller has validated, so it need not load it again."""
    runtime: Runtime | None = node.config.stash.get(RUNTIME_KEY, None)
    sent = runtime.pickled if runtime is not None else None
    if sent is not None:
        node.workerinput[PLAN_INPUT] = sent


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> DagScheduling | None:
    """Our scheduler whenever the session has a valid plan; xdist's is trylast, so ours wins."""
    runtime: Runtime | None = config.stash.get(RUNTIME_KEY, None)
    if runtime is None or not runtime.ok:
        return None
    from pytest_orch.plugin import CONTROLLER_KEY

    return DagScheduling(config, runtime, config.stash[CONTROLLER_KEY], log)


@pytest.hookimpl(trylast=True)
def pytest_handlecrashitem(crashitem: str, report: pytest.TestReport, sched: Any) -> None:
    """Say plainly that the worker died in this task (rerunfailures may have rescheduled it)."""
    if not isinstance(sched, DagScheduling) or report.outcome != "failed":
        return
    node = getattr(report, "node", None)
    worker = node.gateway.id if node is not None else "?"
    task_id = sched.runtime.task_id_of(crashitem)
    what = f"task {task_id}" if task_id else repr(crashitem)
    report.longrepr = CRASH_MESSAGE.format(worker=worker, what=what)


@pytest.hookimpl(trylast=True)
def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """The final report of a crashed item ends it (after the controller has recorded it)."""
    if report.when != "???":
        return
    node = getattr(report, "node", None)
    sched = node.config.stash.get(SCHED_KEY, None) if node is not None else None
    if sched is not None:
        sched.crash_reported(report)


class DagScheduling:
    """The xdist ``Scheduling`` protocol over the plan's graph. Node ids are the keys."""

    def __init__(self, config: pytest.Config, runtime: Runtime, controller: Any, log: Any = None) -> None:
        self.config = config
        config.stash[SCHED_KEY] = self
        self.runtime = runtime
        self.controller = controller
        self.log = log.dagsched if log is not None else (lambda *a: None)
        self.node2collection: dict[Any, list[str]] = {}
        self.node2index: dict[Any, dict[str, int]] = {}
        self.node2pending: dict[Any, list[str]] = {}
        self.collection: list[str] | None = None
        self.core: ReadySet[str] | None = None
        self.coordinator: Any = None
        self.outcomes: dict[str, str] = {}
        self.deps: dict[str, dict[str, list[str]]] = {}
        self.crashed: set[str] = set()
        self.aborted = False
        self.stopped = False
        self._timer: threading.Timer | None = None
        self._timer_due = 0.0
        self._bad_nodes: set[Any] = set()
        try:
            from xdist.workermanage import parse_tx_spec_config

            self.numnodes = len(parse_tx_spec_config(config))
        except Exception:  # pragma: no cover - no -n given (unit tests)
            self.numnodes = 0

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
        session = self.config.stash.get(SESSION_KEY, None)
        real = [n for n in ids if not placeholder.is_placeholder_id(n)]
        if session is not None:
            session.testscollected = len(real)  # the placeholder and manifest are not tests
        if self.collection is None:
            self.collection = ids
            self._start(ids)
        elif ids != self.collection:
            from xdist.report import report_collection_diff

            first = next(iter(self.node2collection))
            msg = report_collection_diff(self.collection, ids, first.gateway.id, node.gateway.id)
            self.log(msg)
            self._bad_nodes.add(node)
            self.config.hook.pytest_collectreport(report=pytest.CollectReport(
                nodeid=node.gateway.id, outcome="failed", longrepr=msg, result=[]))
            return
        elif placeholder.PLACEHOLDER_ID not in ids:
            self._bad_nodes.add(node)
        self.node2collection[node] = ids
        self.node2index[node] = {nodeid: i for i, nodeid in enumerate(ids)}

    def _start(self, ids: list[str]) -> None:
        """Build the graph of the collected items and create the coordinator."""
        runtime = self.runtime
        plan, graph = runtime.plan, runtime.graph
        real = [n for n in ids if not placeholder.is_placeholder_id(n)]
        task_of = {n: runtime.task_id_of(n) for n in real}
        node_of_task = {t: n for n, t in task_of.items() if t is not None}
        self.task_of = task_of
        self.coordinator = self.controller.start_coordinator(set(node_of_task))
        self.deps = placeholder.manifest_of(ids)
        prerequisites: dict[str, set[str]] = {}
        for nodeid in real:
            task_id = task_of[nodeid]
            if task_id is not None:
                prerequisites[nodeid] = {node_of_task[p] for p in graph.prerequisites(task_id) if p in node_of_task}
            else:
                prerequisites[nodeid] = set(self.deps.get(nodeid, {}).get("nodes", [])) & set(task_of)
        durations = runtime.task_durations()
        default = sum(durations.values()) / len(durations) if durations else 1.0
        weights = {n: durations.get(t, default) if t else default for n, t in task_of.items()}
        pools = {**plan.pools, **runtime.settings.pools}
        rates = {pool: parse_rate(text) for pool, text in plan.rate_limits.items()}

        def group_of(nodeid: str) -> tuple[str, int | None] | None:
            task = plan.tasks[task_of[nodeid]] if task_of[nodeid] else None
            if task is None or task.is_checkpoint:
                return None
            group = plan.group(task.phase, task.group)
            return f"{task.phase}.{task.group}", group.max_parallel

        def pool_of(nodeid: str) -> str | None:
            return plan.tasks[task_of[nodeid]].pool if task_of[nodeid] else None

        slots, caps, rate_keys, buckets = limits_for(real, group_of, pool_of, pools, rates)
        self.core = ReadySet(prerequisites, remaining_paths(prerequisites, weights),
                             slots=slots, caps=caps, rates=rate_keys, buckets=buckets)
        self._due(self.core.initially_due())

    # -- decisions ----------------------------------------------------------------------------------
    def _due(self, keys: list[str]) -> None:
        """Decide each due key: ready to run, or reported here and ended (which may make more due)."""
        work = list(keys)
        while work:
            nodeid = work.pop(0)
            skip = self._decide(nodeid)
            if skip is None:
                self.core.push(nodeid)
                continue
            self._report_skip(nodeid, skip)
            work.extend(self._ended(nodeid))

    def _decide(self, nodeid: str) -> str | None:
        """None when the item is to run, else the reason it is skipped."""
        task_id = self.task_of[nodeid]
        if task_id is not None:
            decision = self.coordinator.decide(task_id)
            return None if decision.action == "run" else decision.reason
        if self.aborted:
            return self._abort_reason()
        entry = self.deps.get(nodeid, {})
        for dep in entry.get("nodes", []):
            dep_task = self.task_of.get(dep)
            if dep_task is not None:
                blocked = self.coordinator.why_not_done(dep_task)
                if blocked is not None:
                    return f"{nodeid.split('::')[-1]} depends on {dep_task}: {blocked.reason}"
            elif self.outcomes.get(dep) != "passed":
                return f"{nodeid.split('::')[-1]} depends on {dep} ({self.outcomes.get(dep, 'not run')})"
        for dep_task in entry.get("tasks", []):
            blocked = self.coordinator.why_not_done(dep_task)
            if blocked is not None:
                return f"{nodeid.split('::')[-1]} depends on {dep_task}: {blocked.reason}"
        return None

    def _abort_reason(self) -> str:
        return f"not run: task {self.coordinator.aborted_by} failed and its on_failure is abort"

    def _report_skip(self, nodeid: str, reason: str) -> None:
        task_id = self.task_of[nodeid]
        if task_id is not None:
            up_to_date = reason.startswith("up to date")
            decision = self.coordinator.decisions.get(task_id)
            if decision is None or decision.action == "run":  # an abort overrides a "run"
                self.coordinator.decisions[task_id] = Decision(
                    "up_to_date" if up_to_date else "skip", reason,
                    blocked_by=None if up_to_date else (self.coordinator.aborted_by or task_id))
            self.controller.log_skip(nodeid, task_id, reason)
        else:
            log_plain_skip(self.config, nodeid, reason)

    def _ended(self, nodeid: str) -> list[str]:
        """Record an item's end; return the items that became due."""
        task_id = self.task_of[nodeid]
        if task_id is not None:
            self.outcomes[nodeid] = self.coordinator.outcomes.get(task_id, "failed")
        else:
            result = self.controller.collector.results.get(nodeid)
            self.outcomes[nodeid] = result.outcome if result is not None else "failed"
        self.core.release(nodeid)
        due = self.core.end(nodeid)
        if self.coordinator.aborted_by is not None and not self.aborted:
            self.aborted = True
            for ready in self.core.drain():
                self._report_skip(ready, self._abort_reason())
                self.outcomes[ready] = "skipped"
                due.extend(self.core.end(ready))
        return due

    # -- events from workers --------------------------------------------------------------------------
    def mark_test_complete(self, node: Any, item_index: int, duration: float = 0) -> None:
        collection = self.node2collection.get(node)
        if collection is None or self.core is None:
            self.schedule()  # a wake-up for a rate limit, or a node that died meanwhile
            return
        nodeid = collection[item_index]
        if placeholder.is_placeholder_id(nodeid):
            self.schedule()
            return
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
        if getattr(self.config.pluginmanager.getplugin("dsession"), "shouldstop", False):
            self.stopped = True  # -x, --maxfail or an interrupt: pytest's own meaning, start nothing
            return
        for node in [n for n in self.node2pending if self._usable(n) and not self.node2pending[n]]:
            nodeid = self.core.pop()
            if nodeid is None:
                break
            self._send(node, [nodeid])
        self._prefetch()
        self._arm_timer()

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
            nodeid = self.core.pop(lowest=True)
            if nodeid is None:
                break
            self._send(node, [nodeid])

    def _send(self, node: Any, nodeids: list[str]) -> None:
        index = self.node2index[node]
        self.node2pending[node].extend(nodeids)
        node.send_runtest_some([index[n] for n in nodeids] + [index[placeholder.PLACEHOLDER_ID]])

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
        index = self.node2index[node][placeholder.PLACEHOLDER_ID]
        event = ("runtest_protocol_complete", {"node": node, "item_index": index, "duration": 0.0})
        # the placeholder's completion is the scheduler's wake-up call; DSession's queue takes it
        self._timer = threading.Timer(wait + 0.001, node.putevent, args=(event,))
        self._timer.daemon = True
        self._timer_due = due
        self._timer.start()


def log_plain_skip(config: pytest.Config, nodeid: str, reason: str) -> None:
    """Report a plain test as skipped on the controller, as reporters expect it from a worker."""
    path = nodeid.split("::")[0]
    location = (path, None, nodeid.split("::", 1)[-1])
    hook = config.hook
    now = time.time()
    hook.pytest_runtest_logstart(nodeid=nodeid, location=location)
    for when, outcome, longrepr in (("setup", "skipped", (path, 0, f"Skipped: {reason}")),
                                    ("teardown", "passed", None)):
        hook.pytest_runtest_logreport(report=pytest.TestReport(
            nodeid=nodeid, location=location, keywords={}, outcome=outcome, longrepr=longrepr,
            when=when, start=now, stop=now, duration=0.0))
    hook.pytest_runtest_logfinish(nodeid=nodeid, location=location)
