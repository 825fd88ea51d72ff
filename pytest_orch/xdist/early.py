"""Early start under ``-n``: the controller runs the first tasks while its workers are starting.

xdist's controller never runs a test. It starts its workers, and the first task waits until one of
them has imported pytest and collected: measured on two cores at ``-n 4``, the first task started
0.9 to 1.4 s after launch, and the controller sat idle for most of that time (benchmarks/README.md).

With a plan and local workers only, the controller here

1. starts every worker on a thread of its own (gateway, then xdist's worker setup), so it is free
   while they come up, instead of waiting in xdist's loop until each interpreter has answered;
2. collects the session itself, as pytest does without ``-n`` (the same paths, so the same items
   and selection as each worker will have), when those paths hold the plan alone: a session with
   plain tests keeps xdist's way, and every item waits for a worker;
3. opens the run with the scheduler's own ready set and runs ready *tasks* in this process,
   highest priority first, each decided by the coordinator like any other, until the first worker
   has collected (a plain test always waits for a worker). While it runs a task, the controller
   cannot hand out work, so a task starts here only if it is expected to end before the first
   worker is expected to be up (its last duration, else its handler's typical time, else 0.5 s),
   or is short anyway: a 30 s build never holds four idle workers back;
4. hands the workers to xdist's loop, and the same scheduler goes on from where the run is: a task
   that ended here is never sent to a worker.

Every task run here is a pytest item like any other: its reports go through the same hooks (the
terminal, JUnit, run.json, pytest-html), it gets the same timeout and retries. ``ORCH_EARLY_START=0``
turns this off (for the benchmark that compares both).
"""

from __future__ import annotations

import fnmatch
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_orch import compat
from pytest_orch.collect import TaskItem
from pytest_orch.parallelism import EACH_MORE_WORKER_SECONDS, FIRST_WORKER_SECONDS, estimator
from pytest_orch.xdist.specs import TakeSpecsLast

if TYPE_CHECKING:
    from pytest_orch.session import OrchSession
    from pytest_orch.xdist.scheduler import DagScheduling

ENABLED = os.environ.get("ORCH_EARLY_START", "1") != "0"
CONTROLLER = "controller"
"""The ``worker`` of a task the controller ran (run.json, the timeline's lane)."""
STARTED_KEY = pytest.StashKey[set[str]]()
"""The ids of the specs whose workers early start has started (spawn.py leaves them alone)."""
WORKER_START = os.environ.get("ORCH_WORKER_START_SECONDS")
"""How long the first worker is expected to take to be up, when the default (parallelism.py's) is wrong
for a machine; the tests set it to hold the decision still on a loaded one."""
SHORT_SECONDS = 0.05
"""A task expected to take no longer may start here whenever no worker has collected yet (an edit)."""


class EarlyStart:
    """Registered on the controller with a plan under xdist; acts only when every worker is local."""

    def __init__(self, config: pytest.Config, orch: OrchSession) -> None:
        self.config = config
        self.orch = orch
        self.active = False
        self.collected = threading.Event()
        self.starting: list[tuple[Any, Future[Any]]] = []
        self._pool: ThreadPoolExecutor | None = None
        self.running_here = False
        self.workers_expected = 0.0
        """When the first worker is expected to have collected (time.monotonic())."""

    @staticmethod
    def wanted(config: pytest.Config, orch: OrchSession) -> bool:
        settings = orch.settings
        return (ENABLED and orch.ok and orch.collects_plan() and not config.option.collectonly
                and not (settings.status or settings.dry_run or settings.graph or settings.ci_command))

    # -- 1. workers start on threads --------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_xdist_setupnodes(self, config: pytest.Config, specs: list[Any]) -> None:
        local = [s for s in specs if compat.spec_field(s, "popen") and not compat.spec_field(s, "via")
                 and not compat.spec_field(s, "chdir") and compat.spec_field(s, "id")]
        group = compat.gateway_group(config)
        if group is None or not local or len(local) != len(specs) or compat.timeout_ends_process(config) \
                or not collects_plan_alone(config):
            # remote hosts or specs we do not know: xdist (and remote.py) start them; a timeout that ends
            # its process must not end the controller's; with plain tests in the session the controller
            # would import every test module (seconds for a large suite, on the cores the workers start
            # on) and report a broken one twice: every item waits for a worker
            return
        self.active = True
        putevent = compat.controller_event_putter(config)
        compat.prepare_parallel_worker_setup(config)  # what every worker's setup would otherwise race to make
        _ = self.orch.pickled  # (each worker's workerinput carries it; made once, here)

        def put(event: tuple[str, dict[str, Any]]) -> None:
            if event[0] == "collectionfinish":
                self.collected.set()
            putevent(event)

        def start(spec: Any) -> Any:
            return compat.start_worker_on(config, group.makegateway(spec), put, announce=False)

        expected = FIRST_WORKER_SECONDS + EACH_MORE_WORKER_SECONDS * (len(local) - 1)
        self.workers_expected = time.monotonic() + (float(WORKER_START) if WORKER_START else expected)
        self._pool = ThreadPoolExecutor(len(local), thread_name_prefix="orch-start")
        self.starting = [(spec, self._pool.submit(start, spec)) for spec in local]
        config.stash[STARTED_KEY] = {spec.id for spec in local}

    def take_started_specs(self, specs: list[Any]) -> None:
        """After every other ``pytest_xdist_setupnodes`` (xdist's status line keeps them): started here,
        so xdist's own loop starts none of them and returns at once."""
        started = self.config.stash.get(STARTED_KEY, set())
        specs[:] = [spec for spec in specs if spec.id not in started]

    # -- 2. the controller collects ----------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> bool | None:
        if not self.active:
            return None
        session.perform_collect()
        return True  # xdist's own pytest_collection would stop the controller from collecting

    # -- 3. run tasks here until a worker is ready; 4. hand the workers over -------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        if not self.active:
            return
        from pytest_orch.xdist.scheduler import open_early

        collection_failed = session.testsfailed and not self.config.option.continue_on_collection_errors
        try:  # after a collection error nothing runs here; xdist's workers report it and stop the run
            if session.items and not collection_failed and not session.shouldfail and not session.shouldstop:
                sched = open_early(self.config, [i.nodeid for i in session.items], workers=len(self.starting))
                self._run_here(session, sched)
        finally:
            self._adopt()

    def _run_here(self, session: pytest.Session, sched: DagScheduling) -> None:
        # only a task that cannot take this process down: a crash must cost a worker, not the run
        tasks = {item.nodeid: item for item in session.items
                 if isinstance(item, TaskItem) and self.orch.contained(item.task)}
        history = sched.controller.history
        estimate = estimator(history.durations() if history is not None else {},
                             lambda task_id: self.orch.typical_seconds(self.orch.plan.tasks[task_id]))

        def fits(nodeid: str) -> bool:
            if nodeid not in tasks:
                return False
            left = self.workers_expected - time.monotonic()
            return estimate(tasks[nodeid].task.id) <= max(left, SHORT_SECONDS)

        graph = self.orch.graph
        while not self.collected.is_set() and not (session.shouldfail or session.shouldstop):
            nodeid = sched.core.pop(accept=fits) if sched.core is not None else None
            if nodeid is None:
                return  # nothing ready that this process may run: the workers take it from here
            item = tasks[nodeid]
            # pytest-dependency knows only this process's results: the coordinator has checked the rest
            compat.mark_dependencies_done(item, sorted(graph.direct.get(item.task.id, ())))
            self.running_here = True
            try:
                item.ihook.pytest_runtest_protocol(item=item, nextitem=None)
            finally:
                self.running_here = False
            sched.ended_here(nodeid)
        if session.shouldfail or session.shouldstop:
            sched.stopped = True  # -x or --maxfail met here: start nothing on the workers either

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        """Say where it ran: reports from workers carry their node, these the controller's name."""
        report = yield
        if self.running_here:
            report.worker_id = CONTROLLER
        return report

    def _adopt(self) -> None:
        """The workers join xdist's session; one that could not start is started by xdist, which reports why."""
        nodes = []
        for spec, future in self.starting:
            try:
                nodes.append(future.result())
            except Exception:  # noqa: BLE001 - xdist starts it again below and reports the error its own way
                manager = compat.node_manager(self.config)
                nodes.append(manager.setup_node(spec, compat.controller_event_putter(self.config)))
        self.starting = []
        if self._pool is not None:
            self._pool.shutdown(wait=False)
        compat.adopt_workers(self.config, nodes)


def collects_plan_alone(config: pytest.Config) -> bool:
    """Whether the session's paths hold no file pytest would collect as Python tests (or doctests).

    A conservative look, without importing anything: a file named like a test module outside the
    folders pytest does not recurse into counts, wherever it is.
    """
    patterns = list(config.getini("python_files"))
    if config.getoption("doctestmodules", False):
        patterns.append("*.py")
    patterns.extend(config.getoption("doctestglob", None) or ["test*.txt"])  # pytest's doctest default
    skip = list(config.getini("norecursedirs"))
    for arg in config.args:
        path = Path(arg.split("::")[0])
        if path.is_file():
            if any(fnmatch.fnmatch(path.name, p) for p in patterns):
                return False
            continue
        for folder, dirs, files in os.walk(path):
            dirs[:] = [d for d in dirs if not any(fnmatch.fnmatch(d, p) for p in skip)
                       and not (Path(folder, d) / "pyvenv.cfg").is_file()]
            if any(fnmatch.fnmatch(name, p) for name in files for p in patterns):
                return False
    return True


def register(config: pytest.Config, orch: OrchSession) -> None:
    if EarlyStart.wanted(config, orch):
        early = EarlyStart(config, orch)
        config.pluginmanager.register(early, "orch-early-start")
        config.pluginmanager.register(TakeSpecsLast(early.take_started_specs), "orch-early-start-specs")
