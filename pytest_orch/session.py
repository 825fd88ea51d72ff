"""The plan, graph and handlers of this pytest session: built at configure, read-only after."""

from __future__ import annotations

import functools
import pickle
from pathlib import Path

import pytest

from pytest_orch import dag
from pytest_orch.errors import PlanErrors
from pytest_orch.handler import plan_templates_dir
from pytest_orch.options import Settings
from pytest_orch.plan.files import plan_files
from pytest_orch.plan.model import Plan, Task
from pytest_orch.registry import HandlerTable, collect_handlers

PLAN_INPUT = "orch_plan"  # the workerinput key of the controller's pickled plan and graph


def is_worker(config: pytest.Config) -> bool:
    """True in an xdist worker: it runs what the controller sends and decides nothing."""
    return hasattr(config, "workerinput")


class OrchSession:
    """Loads and validates the plan once; maps node ids to tasks; answers handler capabilities.

    Nothing here changes after ``__init__``: decisions live in the coordinator, results in the
    controller, the state's answers in the history.
    """

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.handlers: HandlerTable = collect_handlers(config.pluginmanager)
        self.errors: dict[str, list[str]] = {}
        self._plan: Plan | None = None
        self._graph: dag.Graph | None = None
        self._templates: dict[str, Path | None] = {}  # a cache of lookups, not state
        sent = getattr(config, "workerinput", {}).get(PLAN_INPUT)
        if sent is not None:
            # the controller validated this plan moments ago: a worker does not parse it again
            self._plan, self._graph = pickle.loads(sent)
        else:
            self._load()
        self.plan_file_paths = self._plan_file_paths()
        if self._plan is not None:
            self.nodeids: dict[str, str] = self._nodeids(self._plan)
            self._register_tags(self._plan)

    def _load(self) -> None:
        from pytest_orch.plan.validate import load_plan_and_graph

        try:
            self._plan, self._graph = load_plan_and_graph(
                self.settings.plan_path, self.settings.root, self.handlers, self.settings.variables)
        except PlanErrors as exc:
            for err in exc.errors:
                self.errors.setdefault(err.loc.path if err.loc else "", []).append(str(err))

    def _plan_file_paths(self) -> frozenset[Path]:
        location = self.settings.plan_path
        if location.is_file():
            return frozenset({location.resolve()})
        return frozenset(p.resolve() for p in plan_files(location))

    @staticmethod
    def _nodeids(plan: Plan) -> dict[str, str]:
        from pytest_orch.collect import task_nodeid

        return {task_nodeid(t, p.file): t.id for p in plan.phases for t in p.all_tasks}

    def _register_tags(self, plan: Plan) -> None:
        """Tags are markers (``-m ci``); registered here, so ``--strict-markers`` accepts them."""
        for tag in sorted({tag for task in plan.tasks.values() for tag in task.tags}):
            self.config.addinivalue_line("markers", f"{tag}: tasks tagged {tag!r} in the plan")

    # -- the plan ---------------------------------------------------------------------------------
    @property
    def ok(self) -> bool:
        return not self.errors and self._plan is not None

    @property
    def plan(self) -> Plan:
        if self._plan is None:
            raise PlanErrors([])
        return self._plan

    @property
    def graph(self) -> dag.Graph:
        assert self._graph is not None, "the plan has errors"
        return self._graph

    @functools.cached_property
    def pickled(self) -> bytes | None:
        """The valid plan and its graph, for the workers; None with errors."""
        return pickle.dumps((self._plan, self._graph), pickle.HIGHEST_PROTOCOL) if self.ok else None

    def errors_in(self, relpath: str) -> list[str]:
        """Plan errors located in one file (errors without a file go to every file)."""
        return self.errors.get(relpath, []) + self.errors.get("", [])

    def all_errors(self) -> list[str]:
        return [e for errors in self.errors.values() for e in errors]

    def is_plan_file(self, path: Path) -> bool:
        if self.settings.plan_path.is_file():
            return path.resolve() in self.plan_file_paths
        return path.suffix in (".yaml", ".yml") and path.resolve() in self.plan_file_paths

    def is_empty_plan_folder(self, path: Path) -> bool:
        """True for the plan's folder when it holds no plan file (collecting it is then an error)."""
        location = self.settings.plan_path
        return location.is_dir() and not self.plan_file_paths and path.resolve() == location.resolve()

    def task_id_of(self, nodeid: str) -> str | None:
        return self.nodeids.get(nodeid) if self.ok else None

    def collects_plan(self) -> bool:
        """Whether this session collects the plan: no paths given, --plan, or a path that holds it.

        A session of the project's own tests beside its plan (``pytest tests -n 2``) is plain pytest:
        xdist's own scheduling and the workers it asked for.
        """
        config = self.config
        if config.args_source != pytest.Config.ArgsSource.ARGS or self.settings.plan_named:
            return True
        plan_path = self.settings.plan_path
        given = [Path(a.split("::")[0]).resolve() for a in config.args]
        return any(plan_path == g or g in plan_path.parents or plan_path in g.parents for g in given)

    # -- selection --------------------------------------------------------------------------------
    def selection_errors(self) -> list[str]:
        """--phase, --group, --confirm, --var and --pool values that name nothing in the plan."""
        from pytest_orch.usage import selection_errors

        manual = [t.id for t in self.plan.tasks.values() if self.needs_confirmation(t)]
        return selection_errors(self.settings, self.plan, manual)

    def in_selected_scope(self, task: Task) -> bool:
        """True when --phase and --group leave the task in."""
        settings = self.settings
        if settings.phases and task.phase not in settings.phases:
            return False
        if settings.groups:
            if task.is_checkpoint:
                return False  # a checkpoint belongs to its whole phase, not to a group
            return task.group in settings.groups or f"{task.phase}.{task.group}" in settings.groups
        return True

    # -- what handlers declare --------------------------------------------------------------------
    def templates_dir(self, task: Task) -> Path | None:
        """The plan's templates/ folder beside the task's plan file, when there is one."""
        if task.plan_dir not in self._templates:  # asked twice per task: look at the disk once per folder
            self._templates[task.plan_dir] = plan_templates_dir(self.settings.root, task.plan_dir)
        return self._templates[task.plan_dir]

    def writes_files(self, task: Task) -> bool:
        return bool(getattr(self.handlers[task.type], "writes_files", False))

    def needs_confirmation(self, task: Task) -> bool:
        """A step a person does: it runs only once confirmed (``--confirm``, or at the prompt)."""
        return bool(getattr(self.handlers[task.type], "needs_confirmation", False))

    def typical_seconds(self, task: Task) -> float | None:
        """How long the handler usually takes, for a task that never ran; None: it cannot say."""
        value = getattr(self.handlers[task.type], "typical_seconds", None)
        return None if value is None else float(value)

    def contained(self, task: Task) -> bool:
        """True when running the task cannot take the process down (see ``Handler``)."""
        return bool(getattr(self.handlers[task.type], "contained", False))

    def knows_changes(self, task: Task) -> bool:
        """True when the handler's ``Outcome.changed`` is all it changed (a command cannot know)."""
        return bool(getattr(self.handlers[task.type], "knows_changes", False))
