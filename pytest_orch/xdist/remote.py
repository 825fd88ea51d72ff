"""Workers on other hosts (``--tx ssh=...``): started together, their checkouts checked, their loss survived.

Registered on the controller with a plan under xdist. At ``pytest_xdist_setupnodes`` every remote
gateway is made on a thread of its own and the remote specs are taken off xdist's list, so xdist
starts the local workers at once and the run begins with them. Each new gateway reports its working
directory, its checkout's commit, whether its python has pytest-orch, and whether it sees the
controller's checkout-token (then it shares the controller's checkout); an event in xdist's
controller loop then starts its worker (``compat.add_worker_late``), or records the host as *down at
start* (unreachable) or *refused* (another commit, with the command that updates it).

When a remote worker goes down (its host died, or a cut link was noticed by the SSH keep-alives
added here), xdist's restart on the same host is replaced (``compat.take_over_node_loss``): the
in-flight task fails or, within its ``retries``, runs again elsewhere; its host gets no more work;
the summary names the host and the tasks it took down. What the xdist internals involved are, and
the versions checked, is in ``pytest_orch/compat.py``.
"""

from __future__ import annotations

import os
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_orch import compat
from pytest_orch.xdist.hosts import LOCAL, HostTable, Placement, Worker, host_of_spec, pinned_hosts, placement_of
from pytest_orch.xdist.specs import (
    PROBE,
    TakeSpecsLast,
    controller_commit,
    is_remote,
    keepalive_interval,
    keepalive_options,
    why_down,
    why_unreachable,
)

if TYPE_CHECKING:
    from pytest_orch.controller import Controller
    from pytest_orch.session import OrchSession

REMOTE_INPUT = "orch_remote"  # workerinput flag: this worker is not on the controller's machine
TOKEN_NAME = "checkout-token"  # in .orch/: a remote worker that can read it shares the checkout
HOSTS_KEY = pytest.StashKey["RemoteHosts"]()
ARRIVED = "orch_remote_arrived"  # the controller-loop event of a remote connection made or failed
START_TIMEOUT = 60.0

class RemoteHosts:
    """The controller's side of remote workers: start, check, lose; and the placement of tasks."""

    def __init__(self, config: pytest.Config, session: OrchSession, controller: Controller) -> None:
        self.config = config
        self.session = session
        self.controller = controller
        self.table = HostTable()
        self.token = uuid.uuid4().hex
        self.commit: str | None = None
        self.starting: dict[str, tuple[Any, Future[Any]]] = {}
        self.gateways: dict[str, Any] = {}
        self.placements: dict[str, Placement] = {}
        self.tainted: dict[str, bool] = {}
        self.crash_reports: dict[str, Any] = {}
        self.failed_attempts: dict[str, int] = {}
        self._pool: ThreadPoolExecutor | None = None
        self.remote_requested = False
        """Pins to hosts apply only to a run with remote workers: on one machine everything runs here."""
        self._post: Any = None
        self._node_of = {t: n for n, t in session.nodeids.items()} if session.ok else {}
        config.stash[HOSTS_KEY] = self

    # -- start --------------------------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_xdist_setupnodes(self, config: pytest.Config, specs: list[Any]) -> None:
        """Start every remote gateway now, each on its own thread; ``_arrived`` starts each one's worker."""
        remote = [s for s in specs if is_remote(s)]
        compat.take_over_setup_node(config, self._setup_node)
        compat.take_over_node_loss(config, self._node_down, self._workers_left)
        if not remote:
            return
        self.remote_requested = True
        self._post = compat.on_controller_event(config, ARRIVED, self._arrived)
        self.commit = controller_commit(self.session.settings.root)
        token_path = self._write_token()
        interval = keepalive_interval(config)
        # ORCH_REMOTE_START=serial starts them one after another, for the benchmark that compares both
        width = 1 if os.environ.get("ORCH_REMOTE_START") == "serial" else len(remote)
        self._pool = ThreadPoolExecutor(width, thread_name_prefix="orch-remote")
        for spec in remote:
            options = keepalive_options(spec, interval)
            if options:
                compat.prepend_ssh_options(spec, options)
            host = host_of_spec(compat.spec_field(spec, "ssh"), compat.spec_field(spec, "socket"))
            self.table.expect(self._worker(spec, host, None))
            future = self._pool.submit(self._connect, spec, token_path)
            self.starting[spec.id] = (spec, future)
            future.add_done_callback(lambda _, spec_id=spec.id: self._post(spec_id=spec_id))

    def _write_token(self) -> str:
        folder = self.session.settings.root / ".orch"
        folder.mkdir(exist_ok=True)
        (folder / TOKEN_NAME).write_text(self.token)
        return os.path.relpath(folder / TOKEN_NAME, self.config.invocation_params.dir)

    def _connect(self, spec: Any, token_path: str) -> tuple[Any, dict[str, Any]]:
        group = compat.gateway_group(self.config)
        gateway = group.makegateway(spec)
        try:
            return gateway, compat.run_on_gateway(gateway, PROBE, token_path, START_TIMEOUT)
        except Exception:
            gateway.exit()
            raise

    def take_remote_specs(self, specs: list[Any]) -> None:
        """Take the remote specs off xdist's list: xdist starts the local workers at once, and each remote
        one joins the run when its connection is made and checked (``_arrived``), so no task waits for
        a slow or unreachable host."""
        specs[:] = [spec for spec in specs if spec.id not in self.starting]

    def _arrived(self, spec_id: str) -> None:
        """In xdist's controller loop: a remote connection was made (or failed); start its worker, or not."""
        if spec_id not in self.starting:
            return
        spec, future = self.starting.pop(spec_id)
        host = host_of_spec(compat.spec_field(spec, "ssh"), compat.spec_field(spec, "socket"))
        self.table.expected.pop(spec_id, None)
        try:
            gateway, probe = future.result()
        except Exception as exc:  # noqa: BLE001 - whatever stops the connection, the host is down
            self.table.down_at_start[host] = why_unreachable(exc)
            self._hosts_changed()
            return
        refusal = self._refusal(probe)
        if refusal is not None:
            self.table.refused[f"{host} ({spec_id})"] = refusal
            gateway.exit()
            self._hosts_changed()
            return
        self.table.add(self._worker(spec, host, probe))
        if compat.add_worker_late(self.config, gateway) is None:
            self.table.late.append(host)
        self._hosts_changed()
        if not self.starting and self._pool is not None:
            self._pool.shutdown(wait=False)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self) -> None:
        """The run ended with remote hosts still connecting: close each connection as soon as it is made."""
        for _spec, future in self.starting.values():
            future.add_done_callback(_close_gateway)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def _hosts_changed(self) -> None:
        """The scheduler looks at its ready items again: some may have no worker left to run them."""
        self.table.generation += 1
        sched = self._scheduler()
        if sched is not None:
            sched.schedule()
        self._workers_left()

    def _refusal(self, probe: dict[str, Any]) -> str | None:
        if probe.get("missing"):
            return (f"its python {probe.get('python')} cannot import what a worker needs ({probe['missing']}); "
                    f"install the project there: {probe.get('python')} -m pip install -e '{probe['cwd']}[test]'")
        if self.commit is None or probe.get("token") == self.token:
            return None  # no git here to compare with, or the very same checkout
        cwd, commit = probe["cwd"], probe.get("commit")
        if commit is None:
            return (f"{cwd} on {probe['hostname']} is not a git checkout ({probe.get('git_error') or 'no HEAD'}); "
                    f"clone the project there at {self.commit}")
        if commit != self.commit:
            return (f"its checkout {cwd} is at {commit[:12]}, the controller's at {self.commit[:12]}; "
                    f"update it: git -C {cwd} checkout {self.commit}")
        return None

    def _worker(self, spec: Any, host: str, probe: dict[str, Any] | None) -> Worker:
        ssh = compat.spec_field(spec, "ssh")
        target = ssh.split()[-1] if ssh else host
        names = {host, target, spec.id}
        shared = probe is not None and probe.get("token") == self.token
        if host == LOCAL:
            chdir = compat.spec_field(spec, "chdir")
            shared = not chdir or Path(chdir).resolve() == Path.cwd().resolve()
            names.add(LOCAL)
        return Worker(spec.id, host, str(spec), has_project=shared, names=frozenset(names),
                      chdir=probe["cwd"] if probe else None)

    def _setup_node(self, spec: Any, putevent: Any, original: Any) -> Any:
        """xdist's setup_node: a remote gateway made above starts its worker without rsync of pytest."""
        gateway = self.gateways.pop(spec.id, None)
        if gateway is None:
            node = original(spec, putevent)
            if compat.worker_id_of(node) not in self.table.workers:  # a local worker, or one restarted
                self.table.add(self._worker(spec, host_of_spec(None, None), None))
        else:
            node = compat.start_worker_on(self.config, gateway, putevent)
        return node

    @pytest.hookimpl
    def pytest_configure_node(self, node: Any) -> None:
        if self.table.is_remote(compat.worker_id_of(node)):
            node.workerinput[REMOTE_INPUT] = True

    # -- loss ---------------------------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_handlecrashitem(self, crashitem: str, report: pytest.TestReport, sched: Any) -> None:
        """Before rerunfailures decides: the controller's store learns a remote item's retries."""
        report.start = report.stop = time.time()  # xdist leaves them 0: the task would seem to start in 1970
        node = compat.node_of_report(report)
        if node is None or not self.table.is_remote(compat.worker_id_of(node)):
            return
        self.crash_reports[crashitem] = report
        task_id = self.session.task_id_of(crashitem)
        retries = self.session.plan.tasks[task_id].retries if task_id else int(
            getattr(self.config.option, "reruns", 0) or 0)
        compat.set_rerun_budget(self.config, crashitem, retries, self.failed_attempts.get(crashitem, 0))

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Count a remote item's failed attempts (its worker keeps its own retry store)."""
        if report.outcome == "rerun" and report.when in ("setup", "call"):
            node = compat.node_of_report(report)
            if node is not None and self.table.is_remote(compat.worker_id_of(node)):
                self.failed_attempts[report.nodeid] = self.failed_attempts.get(report.nodeid, 0) + 1

    def _node_down(self, node: Any, error: object | None) -> bool:
        """A remote worker went down: no restart there; its task fails or is retried elsewhere."""
        gateway_id = compat.worker_id_of(node)
        if not self.table.is_remote(gateway_id):
            return False  # a local worker: xdist restarts it as usual
        why = why_down(error)
        loss = self.table.lose(gateway_id, why)
        crashitem = compat.drop_node(self.config, node, error)
        if crashitem and loss is not None:
            report = self.crash_reports.pop(crashitem, None)
            task = self.session.task_id_of(crashitem) or crashitem
            (loss.retried if report is not None and report.outcome == "rerun" else loss.tasks).append(task)
        return True

    def _workers_left(self) -> None:
        """No worker left (hosts lost, local restarts used up): what has not run is reported not run."""
        if compat.live_node_count(self.config) > 0 or self.starting:
            return
        sched = self._scheduler()
        if sched is not None:
            sched.abandon("no worker is left to run it")
        compat.end_distributed_run(self.config)

    def _scheduler(self) -> Any:
        from pytest_orch.xdist.scheduler import SCHED_KEY

        return self.config.stash.get(SCHED_KEY, None)

    def lost_message(self, gateway_id: str, what: str) -> str | None:
        """The crash report's text when a remote worker's host was lost in ``what``."""
        worker = self.table.worker(gateway_id)
        loss = self.table.losses.get(worker.host) if worker is not None else None
        if loss is None:
            return None
        return (f"host {loss.host} was lost while running {what} on worker {gateway_id} ({loss.why}); "
                "no more work goes to that host and the run goes on with the others")

    # -- placement: asked by the scheduler ---------------------------------------------------------------
    def place(self, nodeid: str) -> str | None:
        """Decide where a due item may run; return why no live worker may, or None."""
        session = self.session
        task_id = session.task_id_of(nodeid)
        plan = session.plan
        if task_id is None:
            placement = Placement()
        else:
            task = plan.tasks[task_id]
            group = None if task.is_checkpoint else plan.group(task.phase, task.group)
            results = self.controller.collector.results
            node_of = self._node_of

            def changed_here(dep: str) -> bool:
                result = results.get(node_of.get(dep, ""))
                return bool(result and result.changed) and self.table.has_project(result.worker)

            placement = placement_of(
                task_id, session.graph.prerequisites(task_id),
                writes_files=lambda t: session.writes_files(plan.tasks[t]),
                pins=lambda t: pinned_hosts(task.runs_on, group.runs_on if group else (), task.pool,
                                            dict(plan.pool_hosts)) if self.remote_requested else frozenset(),
                changed_here=changed_here, tainted=self.tainted)
        self.placements[nodeid] = placement
        return self.table.placeable(placement)

    def accepts(self, node: Any) -> Any:
        """A filter for the scheduler: may this node run the item? None when every item may."""
        worker = self.table.worker(compat.worker_id_of(node))
        if worker is None:
            return None
        return lambda nodeid: self.placements.get(nodeid, Placement()).allows(worker)

    def still_placeable(self, nodeid: str) -> str | None:
        return self.table.placeable(self.placements.get(nodeid, Placement()))

    # -- the summary ---------------------------------------------------------------------------------------
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        lines = self.table.summary()
        if lines:
            terminalreporter.write_sep("=", "pytest-orch hosts")
            for line, colour in lines:
                terminalreporter.write_line(line, **({colour: True} if colour else {}))


def _close_gateway(future: Future[Any]) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result()[0].exit()


def register(config: pytest.Config, session: OrchSession, controller: Controller) -> RemoteHosts:
    hosts = RemoteHosts(config, session, controller)
    config.pluginmanager.register(hosts, "orch-hosts")
    config.pluginmanager.register(TakeSpecsLast(hosts.take_remote_specs), "orch-hosts-join")
    return hosts
