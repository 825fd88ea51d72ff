"""pytest11 entry point: options, hooks, and the objects that run a plan. Wiring only."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_orch import compat, hookspecs, timeouts
from pytest_orch.collect import RUNNER_KEY, SESSION_KEY, PlanFile, PlanFolder
from pytest_orch.collect import pytest_runtest_makereport as pytest_runtest_makereport  # noqa: F401
from pytest_orch.execution import TaskRunner
from pytest_orch.options import VALUE_FLAGS, add_options, resolve_settings
from pytest_orch.registry import entry_point_handler_types
from pytest_orch.session import OrchSession, is_worker
from pytest_orch.usage import check_flags


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, args: list[str]) -> None:
    """`--plan ../x.yaml` must not move the rootdir: pytest decided it before it knew --plan."""
    if any(arg in VALUE_FLAGS for arg in args):  # only then can pytest have taken a value for a path
        compat.redetermine_rootdir(early_config, args)


@pytest.hookimpl
def pytest_orch_handler_types() -> dict[str, type]:
    """The built-in handlers, and any other package's, from the pytest_orch.handlers entry points."""
    return entry_point_handler_types()


def _session(config: pytest.Config) -> OrchSession | None:
    orch = config.stash.get(SESSION_KEY, None)
    return orch if orch is not None and orch.ok else None


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if is_worker(config) and config.workerinput.get("orch_remote"):
        compat.serve_rerun_status_here(config)  # before rerunfailures dials the controller's 127.0.0.1
    settings = resolve_settings(config)
    check_flags(config, settings)
    if not settings.has_plan:
        if settings.ci_command:  # they only make sense with a plan: say why none was found
            from pytest_orch.ci_cli import no_plan_message

            raise pytest.UsageError(no_plan_message(config, settings))
        return  # no plan: plain pytest, untouched
    orch = OrchSession(config, settings)
    config.stash[SESSION_KEY] = orch
    worker = is_worker(config)
    if not worker and (settings.status or settings.dry_run or not orch.ok):
        # --orch-status runs nothing; a dry run is fast and shares one in-memory overlay; a bad
        # plan is a collection error that exits 2 in process (xdist's workers would make it 1)
        compat.run_in_process(config)
    worker_note = "" if worker else _choose_workers(config, orch)
    if settings.plan_named:
        _add_plan_to_args(config, settings.plan_path)
    if settings.graph and not worker:
        from pytest_orch.graph_cli import GraphPrinter

        config.pluginmanager.register(GraphPrinter(orch, settings.graph), "orch-graph")
    if settings.ci_command and not worker:
        from pytest_orch.ci_cli import CiCommand

        config.pluginmanager.register(CiCommand(orch), "orch-ci")
    runner = config.stash[RUNNER_KEY] = TaskRunner(orch)
    if config.pluginmanager.hasplugin("timeout"):
        config.pluginmanager.register(timeouts, "orch-timeouts")
    if not worker:
        from pytest_orch.controller import Controller
        from pytest_orch.reports.terminal import FullReasons
        from pytest_orch.xdist.scheduler import CONTROLLER_KEY

        controller = config.stash[CONTROLLER_KEY] = Controller(orch, runner)
        controller.notes.append(worker_note)
        config.pluginmanager.register(controller, "orch-controller")
        if not settings.status and not settings.graph and not settings.ci_command:
            from pytest_orch.reports.progress import Progress

            def run_view(ctl: Controller = controller) -> tuple[set[str], dict[str, float]] | None:
                if not ctl.active or ctl.coordinator is None:
                    return None
                return ctl.coordinator.selected, (ctl.history.durations() if ctl.history is not None else {})

            config.pluginmanager.register(Progress(orch, settings.progress, run_view), "orch-progress")
        config.pluginmanager.register(FullReasons(config, orch.task_id_of), "orch-full-reasons")
    if config.pluginmanager.hasplugin("xdist"):
        # registered only with xdist present: its hooks are unknown to pytest otherwise
        if worker:
            from pytest_orch.xdist import worker as worker_side

            config.pluginmanager.register(worker_side, "orch-worker")
        else:
            from pytest_orch.xdist import early, remote, scheduler, spawn, specs, stop

            specs.configure_tx(config)  # before xdist's configure reads --tx and --dist
            remote.register(config, orch, config.stash[scheduler.CONTROLLER_KEY])
            config.pluginmanager.register(scheduler, "orch-xdist")
            config.pluginmanager.register(spawn, "orch-xdist-spawn")
            early.register(config, orch)
            config.pluginmanager.register(stop.ExitWhenDone(config), "orch-xdist-stop")


def _choose_workers(config: pytest.Config, orch: OrchSession) -> str:
    """With -n N, start the workers the estimated schedule can use (none when one process is faster)."""
    asked = compat.local_workers_asked(config)
    if asked is None or not orch.ok or orch.settings.parallel == "always" or not orch.collects_plan():
        return ""  # (a session of the project's own tests beside its plan keeps the workers it asked for)
    from pytest_orch.parallelism import choose_workers, estimator
    from pytest_orch.state import read_durations

    plan = orch.plan
    tasks = [t for t in plan.tasks.values() if orch.in_selected_scope(t)]
    estimate = estimator(read_durations(orch.settings.root), lambda t: orch.typical_seconds(plan.tasks[t]))
    choice = choose_workers([t.id for t in tasks], orch.graph.prerequisites, estimate, asked)
    if choice.workers != asked:
        compat.limit_local_workers(config, choice.workers)
    return choice.describe(asked)


def _add_plan_to_args(config: pytest.Config, plan_path: Path) -> None:
    """Make sure a --plan outside the given paths is collected too."""
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        config.args = [str(plan_path)]
        return
    given = [Path(a.split("::")[0]).resolve() for a in config.args]
    if not any(plan_path == g or g in plan_path.parents for g in given):
        config.args.append(str(plan_path))


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> PlanFile | None:
    orch = parent.config.stash.get(SESSION_KEY, None)
    if orch is not None and orch.is_plan_file(file_path):
        return PlanFile.for_path(parent, file_path, orch)
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collect_directory(path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    orch = parent.config.stash.get(SESSION_KEY, None)
    if orch is not None and orch.is_empty_plan_folder(path):
        return PlanFolder.from_parent(parent, path=path)
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    orch = _session(session.config)
    if orch is not None and not is_worker(session.config):
        errors = orch.selection_errors()
        if errors:
            raise pytest.UsageError("\n".join(errors))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    orch = _session(config)
    if orch is None:
        return
    from pytest_orch.selection import select_items
    from pytest_orch.xdist.worker import resolve_dependencies

    select_items(orch, config, items)
    if not is_worker(config) and not config.option.collectonly:  # a preview starts no coordinator
        resolve_dependencies(items, set(orch.plan.tasks))  # plain tests' needs, for the coordinator


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """With --collect-only, after pytest's tree: the plan preview, one table in plan order and a footer."""
    config = session.config
    orch = _session(config)
    if orch is not None and config.option.collectonly and config.option.verbose >= 0:
        from pytest_orch.reports.preview import write_preview

        write_preview(config.pluginmanager.get_plugin("terminalreporter"), orch, session.items)
