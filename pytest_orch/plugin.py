"""pytest11 entry point: options, hooks, and the objects that run a plan."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_orch import hookspecs
from pytest_orch.collect import RUNTIME_KEY, PlanFile, TaskItem
from pytest_orch.dag import priority_order, remaining_path
from pytest_orch.options import add_options, resolve_settings
from pytest_orch.policy import mark_dependencies_done
from pytest_orch.registry import entry_point_handler_types
from pytest_orch.runtime import Runtime, is_worker

if TYPE_CHECKING:  # a worker never builds a controller: it does not import one (start-up time)
    from pytest_orch.controller import Controller

CONTROLLER_KEY: pytest.StashKey[Controller] = pytest.StashKey()


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl
def pytest_orch_handler_types() -> dict[str, type]:
    """The built-in handlers, and any other package's, from the pytest_orch.handlers entry points."""
    return entry_point_handler_types()


def _runtime(config: pytest.Config) -> Runtime | None:
    return config.stash.get(RUNTIME_KEY, None)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    settings = resolve_settings(config)
    if not settings.has_plan:
        return  # no plan: plain pytest, untouched
    runtime = Runtime(config, settings)
    config.stash[RUNTIME_KEY] = runtime
    if settings.status and not is_worker(config):
        config.option.dist, config.option.numprocesses = "no", None  # status runs nothing: no workers
    elif getattr(config.option, "numprocesses", None) and not is_worker(config) and not runtime.ok:
        # a bad plan is a collection error: in process it exits 2 as it does without -n (xdist's
        # workers would make it exit 1), and no worker is started only to report it
        config.option.dist, config.option.numprocesses = "no", None
    if settings.plan_named:
        _add_plan_to_args(config, settings.plan_path)
    if not is_worker(config):
        from pytest_orch import controller as controller_module

        controller = controller_module.Controller(runtime, (settings.report_dir / "junit.xml").resolve())
        config.stash[CONTROLLER_KEY] = controller
        config.pluginmanager.register(controller, "orch-controller")
    if config.pluginmanager.hasplugin("xdist"):
        # registered only with xdist present: its hooks are unknown to pytest otherwise
        from pytest_orch import xdist_sched

        config.pluginmanager.register(xdist_sched, "orch-xdist")
        if not is_worker(config):
            from pytest_orch import xdist_spawn

            config.pluginmanager.register(xdist_spawn, "orch-xdist-spawn")


def _add_plan_to_args(config: pytest.Config, plan_path: Path) -> None:
    """Make sure a --plan outside the given paths is collected too."""
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        config.args = [str(plan_path)]
        return
    given = [Path(a.split("::")[0]).resolve() for a in config.args]
    if not any(plan_path == g or g in plan_path.parents for g in given):
        config.args.append(str(plan_path))


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> PlanFile | None:
    runtime = _runtime(parent.config)
    if runtime is not None and runtime.is_plan_file(file_path):
        node = PlanFile.from_parent(parent, path=file_path)
        node.runtime = runtime
        return node
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    runtime = _runtime(session.config)
    if runtime is not None and not is_worker(session.config) and runtime.ok:
        errors = runtime.selection_errors()
        if errors:
            raise pytest.UsageError("\n".join(errors))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Apply --phase/--group, keep checkpoints only with their whole phase, order by the graph."""
    runtime = _runtime(config)
    if runtime is None or not runtime.ok:
        return
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        if isinstance(item, TaskItem) and not runtime.in_selected_scope(item.task):
            dropped.append(item)
        else:
            keep.append(item)
    present = {item.task.id for item in keep if isinstance(item, TaskItem)}
    keyword = config.getoption("keyword", "") or ""
    final: list[pytest.Item] = []
    for item in keep:
        if isinstance(item, TaskItem) and item.task.is_checkpoint and item.task.id not in keyword:
            body = [t.id for t in runtime.plan.phase(item.task.phase).all_tasks if not t.is_checkpoint]
            if not all(t in present for t in body):
                dropped.append(item)
                continue
        final.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = _ordered(final, runtime)


def _ordered(items: list[pytest.Item], runtime: Runtime) -> list[pytest.Item]:
    """Tasks in dependency order, longest remaining path first; tests that depend on tasks last."""
    tasks = {item.task.id: item for item in items if isinstance(item, TaskItem)}
    graph = runtime.graph
    order = priority_order(graph, tasks, remaining_path(graph))
    plain = [item for item in items if not isinstance(item, TaskItem)]
    on_tasks = [item for item in plain if set(_depends(item)) & set(runtime.plan.tasks)]
    free = [item for item in plain if item not in on_tasks]
    return free + [tasks[t] for t in order] + on_tasks


def _depends(item: pytest.Item) -> list[str]:
    marker = item.get_closest_marker("dependency")
    return list(marker.kwargs.get("depends") or []) if marker else []


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Decide on the controller whether a due task runs; let pytest-dependency agree."""
    runtime = _runtime(item.config)
    if runtime is None or not runtime.ok:
        return
    if is_worker(item.config):
        # the controller sends an item only when its dependencies are done
        mark_dependencies_done(item, _depends(item))
        return
    coordinator = runtime.coordinator
    if coordinator is None:
        return
    if isinstance(item, TaskItem):
        decision = coordinator.decide(item.task.id)
        if decision.action == "skip":
            pytest.skip(decision.reason)
        if decision.action == "up_to_date":
            pytest.skip(decision.reason)
        runtime.wait_for_rate_limit(item.task)  # every attempt is a call against the limit
    done = [d for d in _depends(item) if d in runtime.plan.tasks and coordinator.why_not_done(d) is None]
    mark_dependencies_done(item, done)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    """Report a task that will not run (up to date, blocked) without pytest's setup machinery.

    A rerun where most tasks are up to date is then about as cheap as collecting the plan. The
    last item still goes through the full protocol: it tears the session's fixtures down.
    """
    runtime = _runtime(item.config)
    if runtime is None or nextitem is None or not isinstance(item, TaskItem) or is_worker(item.config):
        return None
    coordinator = runtime.coordinator
    if coordinator is None:
        return None
    decision = coordinator.decide(item.task.id)
    if decision.action == "run":
        return None
    item.config.stash[CONTROLLER_KEY].log_skip(item.nodeid, item.task.id, decision.reason)
    # what the previous item left set up for this one's parents goes down as far as nextitem needs
    item.session._setupstate.teardown_exact(nextitem)
    return True


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """A task's skip points at its YAML line, not at the plugin's code."""
    outcome = yield
    if not isinstance(item, TaskItem):
        return
    report: pytest.TestReport = outcome.get_result()
    if report.skipped and isinstance(report.longrepr, tuple):
        reason = report.longrepr[2]
        report.longrepr = (item.task.loc.path, item.task.loc.line, reason)


def pytest_report_collectionfinish(config: pytest.Config, start_path: Path, items: list[pytest.Item]) -> Any:
    """With --collect-only, preview each task's dependencies and handler."""
    runtime = _runtime(config)
    if runtime is None or not runtime.ok or not config.option.collectonly or config.option.verbose < 0:
        return None
    lines = []
    tasks = [item.task for item in items if isinstance(item, TaskItem)]
    id_width = max((len(t.id) for t in tasks), default=0)
    type_width = max((len(t.type) for t in tasks), default=0)
    for item in items:
        if isinstance(item, TaskItem):
            task = item.task
            requires = _compact(runtime, runtime.graph.requires.get(task.id, set()))
            after = _compact(runtime, runtime.graph.after.get(task.id, set()))
            needs = f" needs: {', '.join(requires)}" if requires else ""
            waits = f" after: {', '.join(after)}" if after else ""
            lines.append(f"  {task.id:<{id_width}}  {task.type:<{type_width}}  {task.name}{needs}{waits}")
    return ["plan preview (task, type, name; needs: must be done first; after: must have ended first):"] + \
        lines if lines else None


def _compact(runtime: Runtime, ids: set[str]) -> list[str]:
    """Name whole phases and groups among ``ids`` by their id rather than task by task."""
    ids = set(ids)
    names = []
    for phase in runtime.plan.phases:
        every = {t.id for t in phase.all_tasks}
        body = {t.id for g in phase.groups for t in g.tasks}
        if every and every <= ids:
            names.append(f"phase {phase.id}")
            ids -= every
            continue
        if body and body <= ids and len(phase.groups) > 1:
            names.append(f"the tasks of phase {phase.id}")
            ids -= body
        for group in phase.groups:
            members = {t.id for t in group.tasks}
            if len(members) > 1 and members <= ids:
                names.append(f"group {phase.id}.{group.id}")
                ids -= members
    order = list(runtime.plan.tasks)
    return names + sorted(ids, key=order.index)
