"""Every use of another package's internals, in one place, with the versions it was checked against.

pytest-orch leans on a few things its neighbours do not promise: pytest's setup state and junitxml
stash key, pytest-dependency's result store, xdist's controller loop, worker loop and gateway
creation. Each is wrapped here; when one moves, the wrapper raises ``CompatError`` naming the
package and version, and ``tests/test_compat.py`` runs every probe in ``PROBES`` so CI says so
before a user meets it. ``pyproject.toml`` bounds these packages to the majors listed in CHECKED.
"""

from __future__ import annotations

import copy
import importlib.metadata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

CHECKED = {
    "pytest": "8.x and 9.2",
    "pytest-xdist": "3.6 to 3.8",
    "pytest-dependency": "0.6.0 to 0.6.1",
    "execnet": "2.1",
}


class CompatError(RuntimeError):
    """An internal of another package that pytest-orch relies on has moved."""


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def moved(package: str, what: str) -> CompatError:
    return CompatError(f"{package} {_version(package)}: {what} is not where pytest-orch expects it "
                       f"(checked against {package} {CHECKED[package]}); please report this")


def _attr(obj: Any, name: str, package: str, what: str) -> Any:
    try:
        return getattr(obj, name)
    except AttributeError:
        raise moved(package, what) from None


# -- pytest -------------------------------------------------------------------------------------
def teardown_to(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Tear down what ``item``'s predecessors set up, as far as ``nextitem`` needs.

    An item reported without pytest's runner (a task that is not run) must still leave the setup
    state as the runner would, or the next item's fixtures are wrong.
    """
    state = _attr(item.session, "_setupstate", "pytest", "Session._setupstate")
    _attr(state, "teardown_exact", "pytest", "SetupState.teardown_exact")(nextitem)


def junitxml_key() -> Any:
    try:
        from _pytest.junitxml import xml_key
    except ImportError:
        raise moved("pytest", "_pytest.junitxml.xml_key") from None
    return xml_key


class SuiteRecorder:
    """Stands in for pytest's LogXML in ``config.stash`` so its fixtures keep working.

    ``record_testsuite_property`` adds to ``global_properties``; ``record_property`` and
    ``record_xml_attribute`` warn as pytest itself warns under ``junit_family=xunit2`` (their
    output is not valid in junit-10.xsd's testcase) and record nothing.
    """

    family = "xunit2"

    def __init__(self, suite_name: str, properties: list[tuple[str, str]] | None = None) -> None:
        self.suite_name = suite_name
        self.global_properties: list[tuple[str, str]] = list(properties or [])

    def add_global_property(self, name: str, value: object) -> None:
        self.global_properties.append((str(name), str(value)))

    def node_reporter(self, nodeid: str) -> Any:
        return self

    def add_attribute(self, name: str, value: object) -> None:
        """record_xml_attribute: not representable in junit-10.xsd; pytest has warned already."""


def take_over_junitxml(config: pytest.Config) -> tuple[str | None, SuiteRecorder]:
    """Stop pytest's junitxml writer; return its path (None without --junitxml) and our recorder.

    pytest's writer makes one testcase per rerun attempt; ours writes one per task. Its fixtures
    find our recorder under the same stash key.
    """
    key = junitxml_key()
    logxml = config.stash.get(key, None)
    path = None
    suite_name = config.getini("junit_suite_name") or "pytest"
    properties: list[tuple[str, str]] = []
    if logxml is not None:
        path = _attr(logxml, "logfile", "pytest", "LogXML.logfile")
        suite_name = getattr(logxml, "suite_name", suite_name)
        properties = list(getattr(logxml, "global_properties", []))
        config.pluginmanager.unregister(logxml)
    recorder = SuiteRecorder(suite_name, properties)
    config.stash[key] = recorder
    # junitxml's pytest_unconfigure unregisters whatever it finds under its key
    config.pluginmanager.register(recorder, "orch-suite-recorder")
    return path, recorder


# -- pytest-dependency ----------------------------------------------------------------------------
def dependency_scopes() -> dict[str, type]:
    """pytest-dependency's scope names and the node classes they resolve names in."""
    from pytest_dependency import DependencyManager

    return dict(_attr(DependencyManager, "ScopeCls", "pytest-dependency", "DependencyManager.ScopeCls"))


def mark_dependencies_done(item: pytest.Item, names: list[str], scope: str = "session") -> None:
    """Tell pytest-dependency that ``names`` succeeded, as the coordinator has established.

    pytest-dependency only knows results of tests run in this process; a dependency done by an
    earlier run, found up to date, or run on another xdist worker would otherwise skip ``item``.
    """
    from pytest_dependency import DependencyItemStatus, DependencyManager

    if scope not in dependency_scopes():
        return
    manager = _attr(DependencyManager, "getManager", "pytest-dependency", "DependencyManager.getManager")(
        item, scope=scope)
    if manager is None:
        return
    results = _attr(manager, "results", "pytest-dependency", "DependencyManager.results")
    phases = _attr(DependencyItemStatus, "Phases", "pytest-dependency", "DependencyItemStatus.Phases")
    for name in names:
        status = DependencyItemStatus()
        status.results = dict.fromkeys(phases, "passed")
        results[name] = status


# -- pytest-xdist: the controller -------------------------------------------------------------------
def dsession(config: pytest.Config) -> Any:
    """xdist's controller plugin (DSession), or None in process and on workers."""
    return config.pluginmanager.getplugin("dsession")


def run_in_process(config: pytest.Config) -> None:
    """Turn ``-n``/``--dist`` off before xdist acts on them (xdist reads them in its configure)."""
    config.option.dist, config.option.numprocesses = "no", None
    if hasattr(config.option, "tx"):
        config.option.tx = []


def local_workers_asked(config: pytest.Config) -> int | None:
    """How many local workers -n asked for (xdist turned it into ``--tx popen`` specs already);
    None when not distributing, or when any spec is not a plain local ``popen`` (remote hosts)."""
    specs = list(getattr(config.option, "tx", None) or [])
    if getattr(config.option, "dist", "no") == "no" or not specs or any(spec != "popen" for spec in specs):
        return None
    return len(specs)


def limit_local_workers(config: pytest.Config, workers: int) -> None:
    """Start ``workers`` local workers instead of the number -n asked for (before xdist starts any)."""
    if workers == 0:
        run_in_process(config)
        return
    config.option.tx = ["popen"] * workers
    config.option.numprocesses = workers


def session_should_stop(config: pytest.Config) -> bool:
    """-x, --maxfail or an interrupt, as xdist's controller loop records it."""
    return bool(getattr(dsession(config), "shouldstop", False))


def worker_count(config: pytest.Config) -> int:
    """How many workers the run asked for (-n N, or --tx specs); once started, those xdist starts."""
    from xdist.workermanage import parse_tx_spec_config

    manager = getattr(dsession(config), "nodemanager", None)
    if manager is not None:  # remote hosts down at start or refused are no longer among its specs
        return len(manager.specs)

    return len(parse_tx_spec_config(config))


def collection_diff(first: list[str], other: list[str], first_id: str, other_id: str) -> str:
    from xdist.report import report_collection_diff

    return report_collection_diff(first, other, first_id, other_id)


def wake_controller(node: Any, item_index: int) -> None:
    """Put a completion event of ``item_index`` on xdist's event queue, to run the scheduler now.

    Used with the worker's placeholder item, whose completions the scheduler ignores but for
    handing out work: a timer calls this when a rate-limited task may start.
    """
    putevent = _attr(node, "putevent", "pytest-xdist", "WorkerController.putevent")
    putevent(("runtest_protocol_complete", {"node": node, "item_index": item_index, "duration": 0.0}))


def node_of_report(report: pytest.TestReport) -> Any:
    """The WorkerController a report came from (xdist attaches it on the controller), or None."""
    return getattr(report, "node", None)


def worker_id_of(node: Any) -> str:
    return str(_attr(node, "gateway", "pytest-xdist", "WorkerController.gateway").id)


def gateway_group(config: pytest.Config) -> Any:
    """execnet's Group that xdist's NodeManager makes gateways with, or None."""
    manager = getattr(dsession(config), "nodemanager", None)
    return getattr(manager, "group", None)


# -- pytest-xdist: the worker ----------------------------------------------------------------------
def worker_interactor(config: pytest.Config) -> Any:
    """xdist's WorkerInteractor plugin on a worker, or None elsewhere.

    It is registered without a name, and its class is not ``xdist.remote.WorkerInteractor``:
    execnet runs xdist/remote.py's source as the worker's ``__channelexec__`` module.
    """
    return next((p for p in config.pluginmanager.get_plugins() if type(p).__name__ == "WorkerInteractor"), None)


def skip_items_in_worker_loop(config: pytest.Config, invisible: Callable[[pytest.Item], bool],
                              finish: Callable[[pytest.Item, pytest.Item | None], None]) -> bool:
    """Make the worker's run loop step over ``invisible`` items without any hook seeing them.

    xdist's ``WorkerInteractor.run_one_test`` calls ``pytest_runtest_protocol`` for every index it
    is sent, so every plugin's wrapper (allure, timing, logging) would see the placeholder. This
    replaces it on the instance: an invisible item is not run, its completion is still sent (the
    scheduler counts on it), and as the last item ``finish`` tears the session down. Returns False
    where the loop is not there (not a worker).
    """
    interactor = worker_interactor(config)
    if interactor is None:
        return False
    original = _attr(interactor, "run_one_test", "pytest-xdist", "WorkerInteractor.run_one_test")
    torun = _attr(interactor, "torun", "pytest-xdist", "WorkerInteractor.torun")
    Marker = original.__func__.__globals__.get("Marker")  # noqa: N806 - the worker module's own class
    if Marker is None:
        raise moved("pytest-xdist", "xdist.remote.Marker")

    def run_one_test() -> None:
        index = interactor.nextitem_index
        item = interactor.session.items[index]
        if not invisible(item):
            original()
            return
        interactor.item_index = index
        interactor.nextitem_index = torun.get()
        nextitem = None if interactor.nextitem_index is Marker.SHUTDOWN else \
            interactor.session.items[interactor.nextitem_index]
        if nextitem is None:
            finish(item, None)
        interactor.sendevent("runtest_protocol_complete", item_index=index, duration=0.0)

    interactor.run_one_test = run_one_test
    return True


def _probe_worker_loop() -> None:
    from xdist.remote import Marker, WorkerInteractor

    for name in ("run_one_test", "sendevent", "pytest_runtestloop"):
        _attr(WorkerInteractor, name, "pytest-xdist", f"WorkerInteractor.{name}")
    _attr(Marker, "SHUTDOWN", "pytest-xdist", "xdist.remote.Marker.SHUTDOWN")


def _probe_controller() -> None:
    from xdist.dsession import DSession
    from xdist.report import report_collection_diff  # noqa: F401
    from xdist.workermanage import NodeManager, WorkerController, parse_tx_spec_config  # noqa: F401

    for name in ("worker_workerfinished", "worker_errordown", "loop_once"):
        _attr(DSession, name, "pytest-xdist", f"DSession.{name}")
    for name in ("send_runtest_some", "shutdown"):
        _attr(WorkerController, name, "pytest-xdist", f"WorkerController.{name}")
    if "putevent" not in WorkerController.__init__.__code__.co_names:  # set on the instance
        raise moved("pytest-xdist", "WorkerController.putevent")
    _attr(NodeManager, "setup_nodes", "pytest-xdist", "NodeManager.setup_nodes")


def _probe_execnet() -> None:
    import execnet

    _attr(execnet.Group, "makegateway", "execnet", "Group.makegateway")


def _probe_pytest() -> None:
    from _pytest.runner import SetupState

    _attr(SetupState, "teardown_exact", "pytest", "SetupState.teardown_exact")
    if "_setupstate" not in getattr(pytest.Session, "__annotations__", {}):
        raise moved("pytest", "Session._setupstate")
    junitxml_key()
    from _pytest.junitxml import LogXML

    for name in ("logfile", "global_properties", "suite_name"):
        if name not in LogXML.__init__.__code__.co_names and not hasattr(LogXML, name):
            raise moved("pytest", f"LogXML.{name}")


def _probe_dependency() -> None:
    from pytest_dependency import DependencyItemStatus, DependencyManager

    dependency_scopes()
    _attr(DependencyManager, "getManager", "pytest-dependency", "DependencyManager.getManager")
    _attr(DependencyItemStatus, "Phases", "pytest-dependency", "DependencyItemStatus.Phases")


PROBES: dict[str, Callable[[], None]] = {
    "pytest: setup state and junitxml": _probe_pytest,
    "pytest-dependency: result store": _probe_dependency,
    "pytest-xdist: controller loop and nodes": _probe_controller,
    "pytest-xdist: worker loop": _probe_worker_loop,
    "execnet: gateway creation": _probe_execnet,
}


# ---- reports (issue 13): the progress display and the terminal -------------------------------------


def mute_xdist_status(config: pytest.Config, started: Callable[[], bool]) -> bool:
    """Stop xdist's worker status line ("collecting: 1/4 workers") once plan tasks have started.

    xdist's ``TerminalDistReporter`` (plugin name ``terminaldistreporter``) rewrites the terminal's
    current line with the workers' status, and in a non-TTY prints it as a line, while the plan's first
    results already arrive: ``sssscollecting: 1/4 workers``. Its ``rewrite`` and ``ensure_show_status``
    are replaced on the instance by versions that say nothing after ``started()``.
    Checked against pytest-xdist 3.8.0 (the installed one). Returns False when xdist has no such reporter.
    """
    trdist = config.pluginmanager.get_plugin("terminaldistreporter")
    if trdist is None or not hasattr(trdist, "rewrite") or not hasattr(trdist, "ensure_show_status"):
        return False
    rewrite, show = trdist.rewrite, trdist.ensure_show_status

    def quiet_rewrite(line: str, newline: bool = False) -> None:
        if not started():
            rewrite(line, newline=newline)

    def quiet_show() -> None:
        if not started():
            show()

    trdist.rewrite = quiet_rewrite
    trdist.ensure_show_status = quiet_show
    return True


def terminal_current_line(reporter: Any) -> str:
    """What pytest's terminal writer has written on the current line (checked against pytest 9.2.0).

    ``TerminalReporter._tw._current_line``; the public ``width_of_current_line`` is -1 once the line
    holds a carriage return, which every in-place redraw writes, so it cannot tell whose line it is.
    """
    writer = getattr(reporter, "_tw", None)
    return str(getattr(writer, "_current_line", "")) if writer is not None else ""


def terminal_width(reporter: Any) -> int:
    """The terminal's width as pytest measured it (checked against pytest 9.2.0: ``_tw.fullwidth``)."""
    writer = getattr(reporter, "_tw", None)
    return int(getattr(writer, "fullwidth", 80)) if writer is not None else 80


def _probe_reports() -> None:
    from _pytest._io.terminalwriter import TerminalWriter
    from xdist.dsession import TerminalDistReporter

    for name in ("rewrite", "ensure_show_status", "setstatus"):
        _attr(TerminalDistReporter, name, "pytest-xdist", f"TerminalDistReporter.{name}")
    if "_current_line" not in TerminalWriter.__init__.__code__.co_names:
        raise moved("pytest", "TerminalWriter._current_line")
    _attr(TerminalWriter, "fullwidth", "pytest", "TerminalWriter.fullwidth")


PROBES["pytest-xdist and pytest: the terminal's status line (progress display)"] = _probe_reports


# -- plan input (issue 10): the rootdir pytest chose from an option's value ---------------------------
def redetermine_rootdir(config: pytest.Config, args: list[str]) -> None:
    """Decide the rootdir and ini file again, now that pytest knows our options take a value.

    pytest decides the rootdir (and finds the ini file) before it loads plugins, so in
    ``pytest --plan ../plans/extra.yaml`` the value of an option it does not know yet counts as a
    test path: the rootdir became the common ancestor of the project and the plan's folder, the
    project's ini file was not read, and .orch/ and reports/ went there. Called from
    ``pytest_load_initial_conftests``, after pytest has parsed the arguments again with every
    plugin's options, and before anything reads the rootdir. When that brings in an ini file pytest
    had missed, its ``addopts`` go in front of ``args`` as pytest would have put them (pytest parses
    ``args`` into the options right after the hook).

    Uses ``_pytest.config.findpaths.determine_setup`` and the Config attributes it fills
    (``_rootpath``, ``_inipath``, ``_inicfg``, ``_ignored_config_files``, ``_inicache``,
    ``_parser``, ``_validate_args``); checked against pytest 9.2, written for 8.x too.
    """
    try:
        from _pytest.config.findpaths import determine_setup
    except ImportError:
        raise moved("pytest", "_pytest.config.findpaths.determine_setup") from None
    for name in ("_rootpath", "_inipath", "_inicfg", "_inicache", "_parser"):
        _attr(config, name, "pytest", f"Config.{name}")
    ns = config.known_args_namespace
    given = {"inifile": ns.inifilename, "override_ini": ns.override_ini, "args": ns.file_or_dir,
             "rootdir_cmd_arg": ns.rootdir or None, "invocation_dir": config.invocation_params.dir}
    # pytest 8 has no override_ini parameter and returns no ignored config files
    result = determine_setup(**{k: v for k, v in given.items() if k in _setup_parameters(determine_setup)})
    rootpath, inipath, inicfg = result[:3]
    ignored = result[3] if len(result) > 3 else []
    if (rootpath, inipath) == (config.rootpath, config.inipath):
        return
    derived_confcutdir = str(config.inipath.parent if config.inipath else config.rootpath)
    new_ini = inipath != config.inipath
    config._rootpath = rootpath
    config._inipath = inipath
    config._inicfg = inicfg
    config._ignored_config_files = ignored
    config._inicache.clear()
    config._parser.extra_info["rootdir"] = str(rootpath)
    config._parser.extra_info["inifile"] = str(inipath)
    if new_ini and config.getini("addopts"):
        validate = _attr(config, "_validate_args", "pytest", "Config._validate_args")
        args[:] = validate(config.getini("addopts"), "via addopts config") + args
        config.known_args_namespace = ns = config._parser.parse_known_args(args, namespace=copy.copy(config.option))
    if ns.confcutdir == derived_confcutdir:  # pytest derived it from the wrong rootdir just before
        ns.confcutdir = str(inipath.parent if inipath else rootpath)


def _setup_parameters(determine_setup: Callable[..., Any]) -> set[str]:
    import inspect

    return set(inspect.signature(determine_setup).parameters)


def _probe_plan_input() -> None:
    from _pytest.config import Config
    from _pytest.config.findpaths import determine_setup

    known = {"inifile", "override_ini", "args", "rootdir_cmd_arg", "invocation_dir"}
    parameters = _setup_parameters(determine_setup)
    if not {"args", "invocation_dir"} <= parameters <= known:
        raise moved("pytest", "determine_setup(inifile, override_ini, args, rootdir_cmd_arg, invocation_dir)")
    _attr(Config, "_validate_args", "pytest", "Config._validate_args")


PROBES["pytest: the rootdir decision"] = _probe_plan_input

# ---- remote workers (issue 14): xdist's node start and loss, rerunfailures' status server --------------
# Checked against pytest-xdist 3.8.0 (xdist/dsession.py, xdist/workermanage.py), execnet 2.1.2
# (execnet/multi.py, gateway_io.py) and pytest-rerunfailures 16.7. Probed in _probe_remote below.
CHECKED["pytest-rerunfailures"] = "15.0 to 16.7"
CHECKED["pytest-timeout"] = "2.4"


def node_manager(config: pytest.Config) -> Any:
    """xdist's NodeManager (``DSession.nodemanager``), or None before the session starts nodes."""
    return getattr(dsession(config), "nodemanager", None)


def spec_field(spec: Any, name: str) -> Any:
    """An execnet XSpec's key (``ssh``, ``socket``, ``popen``, ``chdir``, ``via``, ``id``), or None."""
    return getattr(spec, name, None)


def prepend_ssh_options(spec: Any, options: list[str]) -> None:
    """Add ``-o`` options to an ssh spec: execnet splits ``spec.ssh`` on blanks into ssh's arguments."""
    spec.ssh = " ".join([*options, spec.ssh])


def take_over_setup_node(config: pytest.Config, setup: Callable[[Any, Any, Callable[..., Any]], Any]) -> bool:
    """Route ``NodeManager.setup_node(spec, putevent)`` through ``setup(spec, putevent, original)``.

    Replaced on the instance, so xdist's own loop in ``setup_nodes`` and its restart of a crashed worker
    (``DSession._clone_node``) both come through here.
    """
    manager = node_manager(config)
    if manager is None:
        return False
    original = _attr(manager, "setup_node", "pytest-xdist", "NodeManager.setup_node")
    manager.setup_node = lambda spec, putevent: setup(spec, putevent, original)
    return True


def start_worker_on(config: pytest.Config, gateway: Any, putevent: Callable[..., Any], announce: bool = True) -> Any:
    """``NodeManager.setup_node`` for a gateway made already, without xdist's rsync of pytest itself.

    xdist copies ``pytest/`` and ``_pytest/`` into a remote ``chdir`` (and leaves them there as untracked
    files in a checkout); a host prepared for pytest-orch has them installed in its venv.
    ``announce=False`` leaves ``pytest_xdist_newgateway`` (the terminal's "[gw0] ..." line and status)
    to ``adopt_workers``, on the main thread, when the worker is started on another thread.
    """
    import _pytest
    from xdist.workermanage import WorkerController

    manager = node_manager(config)
    if announce:
        config.hook.pytest_xdist_newgateway(gateway=gateway)
    own = {Path(pytest.__file__).resolve().parent, Path(_pytest.__file__).resolve().parent}
    for root in _attr(manager, "roots", "pytest-xdist", "NodeManager.roots"):
        if Path(root).resolve() not in own:  # the user's --rsyncdir / rsyncdirs still go
            manager.rsync(gateway, root, **_attr(manager, "rsyncoptions", "pytest-xdist", "NodeManager.rsyncoptions"))
    node = WorkerController(manager, gateway, config, putevent)
    gateway.node = node  # xdist keeps the node alive through its gateway
    try:
        node.setup()
    except Exception as exc:  # noqa: BLE001 - the host went away while its worker started
        # the same event a worker that dies later sends: the controller's loop drops the node
        putevent(("errordown", {"node": node, "error": f"lost while its worker started: {exc}"}))
    return node


def run_on_gateway(gateway: Any, source: str, payload: Any, timeout: float) -> Any:
    """Run ``source`` on a fresh gateway before xdist's worker starts there; return what it sends.

    The gateway runs one ``remote_exec`` at a time (xdist uses execmodel ``main_thread_only``), so
    this one is finished before xdist sends its worker module.
    """
    channel = gateway.remote_exec(source)
    channel.send(payload)
    answer = channel.receive(timeout)
    channel.waitclose(timeout)
    return answer


def take_over_node_loss(config: pytest.Config, handle: Callable[[Any, object], bool],
                        after: Callable[[], None]) -> bool:
    """Route ``DSession.worker_errordown(node, error)`` through ``handle``; xdist's runs when it returns False.
    ``after`` runs either way (to see whether any worker is left).

    xdist's own restarts the worker on the same spec, which for a lost host ends the run in
    HostNotFound (INTERNALERROR). Replaced on the instance: ``loop_once`` looks the method up by name.
    """
    session = dsession(config)
    if session is None:
        return False
    original = _attr(session, "worker_errordown", "pytest-xdist", "DSession.worker_errordown")

    def worker_errordown(node: Any, error: object | None) -> None:
        if not handle(node, error):
            original(node, error)
        after()

    session.worker_errordown = worker_errordown
    return True


def drop_node(config: pytest.Config, node: Any, error: object | None) -> str | None:
    """What xdist's ``worker_errordown`` does, without the restart: the node's in-flight item is reported
    (``handle_crashitem``, where pytest-rerunfailures may reschedule it) and the node leaves the run.
    Returns the in-flight node id, or None.
    """
    session = dsession(config)
    config.hook.pytest_testnodedown(node=node, error=error)
    crashitem = None
    try:
        crashitem = session.sched.remove_node(node)
    except KeyError:
        pass
    if crashitem:
        _attr(session, "handle_crashitem", "pytest-xdist", "DSession.handle_crashitem")(crashitem, node)
    _attr(session, "_active_nodes", "pytest-xdist", "DSession._active_nodes").discard(node)
    return crashitem


def live_node_count(config: pytest.Config) -> int:
    return len(_attr(dsession(config), "_active_nodes", "pytest-xdist", "DSession._active_nodes"))


def on_controller_event(config: pytest.Config, name: str, handler: Callable[..., None]) -> Callable[..., None]:
    """Let other threads run ``handler(**kwargs)`` in xdist's controller loop; return the poster.

    ``DSession.loop_once`` takes ``(name, kwargs)`` events off ``DSession.queue`` and calls the method
    ``worker_<name>``: the handler is set on the instance under that name, and the poster puts events
    on that queue (from any thread; they wait there until the loop runs).
    """
    session = dsession(config)
    queue = _attr(session, "queue", "pytest-xdist", "DSession.queue")
    setattr(session, f"worker_{name}", handler)
    return lambda **kwargs: queue.put((name, kwargs))


def add_worker_late(config: pytest.Config, gateway: Any) -> Any | None:
    """Start a worker on ``gateway`` while the run goes on, as xdist's restart of a crashed worker does
    (``DSession._clone_node``); None when the run is ending already (the gateway is closed)."""
    session = dsession(config)
    if _attr(session, "shuttingdown", "pytest-xdist", "DSession.shuttingdown"):
        gateway.exit()
        return None
    node = start_worker_on(config, gateway, _attr(session, "queue", "pytest-xdist", "DSession.queue").put)
    _attr(session, "_active_nodes", "pytest-xdist", "DSession._active_nodes").add(node)
    return node


def controller_event_putter(config: pytest.Config) -> Callable[[tuple[str, dict[str, Any]]], None]:
    """What xdist gives each WorkerController as its ``putevent``: ``DSession.queue.put``."""
    return _attr(dsession(config), "queue", "pytest-xdist", "DSession.queue").put


def prepare_parallel_worker_setup(config: pytest.Config) -> None:
    """Make what ``WorkerController.setup`` creates lazily on the controller before setups run on threads:
    pytest's basetemp (``_tmp_path_factory.getbasetemp()`` removes and makes the folder once; two threads
    doing it at once fail with FileExistsError)."""
    factory = getattr(config, "_tmp_path_factory", None)
    if factory is not None:
        factory.getbasetemp()


def adopt_workers(config: pytest.Config, nodes: list[Any]) -> None:
    """Workers started on threads before xdist's loop (``start_worker_on(..., announce=False)``) join the
    session as if ``NodeManager.setup_nodes`` had returned them: announced, then active. Their events
    are already waiting on the controller's queue."""
    active = _attr(dsession(config), "_active_nodes", "pytest-xdist", "DSession._active_nodes")
    for node in nodes:
        config.hook.pytest_xdist_newgateway(gateway=_attr(node, "gateway", "pytest-xdist",
                                                          "WorkerController.gateway"))
        active.add(node)


def timeout_ends_process(config: pytest.Config) -> bool:
    """pytest-timeout would end the whole process on a timeout: a session timeout with its thread method
    (it dumps the stacks and calls ``os._exit``). Set in its ``pytest_configure``; checked against 2.4."""
    return getattr(config, "_env_timeout_method", "signal") == "thread" and bool(getattr(config, "_env_timeout", 0))


def wait_worker_session_closed(node: Any, timeout: float) -> bool:
    """Wait until the worker's pytest session has ended and its ``remote_exec`` returned (xdist's channel
    closed); True then, False on timeout."""
    channel = _attr(node, "channel", "pytest-xdist", "WorkerController.channel")
    try:
        channel.waitclose(timeout)
    except Exception:  # noqa: BLE001 - closed with an error, or not in time: leave it to xdist's teardown
        return False
    return True


def exit_worker_process(node: Any) -> None:
    """Tell a worker's interpreter to exit now, as ``NodeManager.teardown_nodes`` does for all at the end;
    its ``Group.terminate`` still waits for the process then."""
    _attr(node, "gateway", "pytest-xdist", "WorkerController.gateway").exit()


def end_distributed_run(config: pytest.Config) -> None:
    """No worker is left: let xdist's loop end (it raises when its last node is gone without this)."""
    _attr(dsession(config), "triggershutdown", "pytest-xdist", "DSession.triggershutdown")()


def set_rerun_budget(config: pytest.Config, nodeid: str, retries: int, failed_attempts: int) -> None:
    """Tell rerunfailures' controller-side store an item's retries and the attempts already failed.

    A remote worker keeps its own store (see ``serve_rerun_status_here``), so the controller's store
    knows neither when the worker's host is lost; rerunfailures' crash handling reads both.
    """
    db = getattr(config, "failures_db", None)
    if db is None:
        return
    _attr(db, "set_test_reruns", "pytest-rerunfailures", "StatusDB.set_test_reruns")(nodeid, retries)
    add = _attr(db, "add_test_failure", "pytest-rerunfailures", "StatusDB.add_test_failure")
    for _ in range(max(0, failed_attempts - db.get_test_failures(nodeid))):
        add(nodeid)


def serve_rerun_status_here(config: pytest.Config) -> bool:
    """On a remote worker: point rerunfailures at a status store in this process, not the controller's.

    Under xdist every worker connects at configure to a store the controller serves on its own
    127.0.0.1, which a remote host cannot reach: the worker died at once (ConnectionRefusedError).
    Called before rerunfailures' ``pytest_configure``; its retries then work on the worker as locally.
    """
    workerinput = getattr(config, "workerinput", {})
    if "sock_port" not in workerinput or not config.pluginmanager.hasplugin("rerunfailures"):
        return False
    import pytest_rerunfailures

    server = _attr(pytest_rerunfailures, "ServerStatusDB", "pytest-rerunfailures", "ServerStatusDB")()
    workerinput["sock_port"] = server.sock_port
    workerinput["statusdb_token"] = _attr(server, "token", "pytest-rerunfailures", "ServerStatusDB.token")
    config.stash[_RERUN_SERVER_KEY] = server
    return True


_RERUN_SERVER_KEY = pytest.StashKey[Any]()


def _probe_remote() -> None:
    import execnet
    import pytest_rerunfailures
    from execnet import gateway_io
    from xdist.dsession import DSession
    from xdist.workermanage import NodeManager, WorkerController

    for name in ("setup_node", "rsync_roots"):
        _attr(NodeManager, name, "pytest-xdist", f"NodeManager.{name}")
    for name in ("worker_errordown", "handle_crashitem", "triggershutdown", "_clone_node", "loop_once"):
        _attr(DSession, name, "pytest-xdist", f"DSession.{name}")
    for name in ("_active_nodes", "queue", "shuttingdown"):
        if name not in DSession.__init__.__code__.co_names:
            raise moved("pytest-xdist", f"DSession.{name}")
    if '"worker_" + callname' not in _source(DSession.loop_once):
        raise moved("pytest-xdist", "DSession.loop_once calling worker_<event>")
    _attr(WorkerController, "setup", "pytest-xdist", "WorkerController.setup")
    if "ssh.split" not in _source(gateway_io.ssh_args):
        raise moved("execnet", "ssh_args splitting spec.ssh")
    _attr(execnet.Gateway, "remote_exec", "execnet", "Gateway.remote_exec")
    for name in ("ServerStatusDB", "StatusDB"):
        _attr(pytest_rerunfailures, name, "pytest-rerunfailures", name)
    for name in ("set_test_reruns", "add_test_failure", "get_test_failures"):
        _attr(pytest_rerunfailures.StatusDB, name, "pytest-rerunfailures", f"StatusDB.{name}")
    if '"sock_port"' not in _source(pytest_rerunfailures.pytest_configure):
        raise moved("pytest-rerunfailures", "workerinput['sock_port']")


def _source(func: Callable[..., Any]) -> str:
    import inspect

    return inspect.getsource(func)


PROBES["pytest-xdist, execnet, pytest-rerunfailures: remote workers"] = _probe_remote


def _probe_early_start() -> None:
    """What early start (xdist/early.py) and the early exit of workers (xdist/stop.py) use."""
    import pytest_timeout
    from xdist.dsession import DSession, TerminalDistReporter
    from xdist.workermanage import NodeManager, WorkerController

    if "self.channel" not in _source(WorkerController.setup):
        raise moved("pytest-xdist", "WorkerController.channel")
    if "_tmp_path_factory.getbasetemp()" not in _source(WorkerController.setup):
        raise moved("pytest-xdist", "WorkerController.setup making pytest's basetemp")
    if "self.nodemanager.setup_nodes" not in _source(DSession.pytest_sessionstart):
        raise moved("pytest-xdist", "DSession.pytest_sessionstart starting the nodes")
    if "self._status[spec.id]" not in _source(TerminalDistReporter.setstatus):
        raise moved("pytest-xdist", "the status line keyed by spec id (specs taken off the list keep it)")
    if "for spec in self.specs" not in _source(NodeManager.setup_nodes):
        raise moved("pytest-xdist", "NodeManager.setup_nodes starting each spec of its list")
    configure = _source(pytest_timeout.pytest_configure)
    if "_env_timeout_method" not in configure or "_env_timeout =" not in configure:
        raise moved("pytest-timeout", "config._env_timeout and config._env_timeout_method")


PROBES["pytest-xdist, pytest-timeout: early start and early exit of workers"] = _probe_early_start
