"""One session's plan, graph and handlers, and how a task is executed. Lives in config.stash."""

from __future__ import annotations

import functools
import os
import pickle
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from pytest_orch import dag
from pytest_orch.coordinator import Coordinator
from pytest_orch.errors import HandlerError, PlanErrors
from pytest_orch.handler import Outcome, TaskContext
from pytest_orch.options import Settings
from pytest_orch.plan.files import plan_files
from pytest_orch.plan.model import Plan, Task
from pytest_orch.ratelimit import TokenBucket, parse_rate
from pytest_orch.registry import HandlerTable, collect_handlers
from pytest_orch.state import read_written_digests

PLAN_INPUT = "orch_plan"  # the workerinput key of the controller's pickled plan and graph


def is_worker(config: pytest.Config) -> bool:
    """True in an xdist worker: it runs what the controller sends and decides nothing."""
    return hasattr(config, "workerinput")


class Runtime:
    """Loads the plan once, maps node ids to tasks, and runs a task's handler."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self._plan: Plan | None = None
        self._errors: dict[str, list[str]] | None = None
        self._handlers: HandlerTable | None = None
        self._graph: dag.Graph | None = None
        self._markers: set[str] = set()
        self.coordinator: Coordinator | None = None
        self.run_reasons: dict[str, str] = {}
        self.confirmed_now: set[str] = set()
        self.durations: dict[str, float] = {}
        self._buckets: dict[str, TokenBucket] = {}
        self._written: Mapping[str, str | None] | None = None

    # -- the plan ---------------------------------------------------------------------------
    @property
    def handlers(self) -> HandlerTable:
        if self._handlers is None:
            self._handlers = collect_handlers(self.config.pluginmanager)
        return self._handlers

    def load(self) -> None:
        """Load and validate the whole plan; keep its errors by file for the collectors."""
        if self._errors is not None:
            return
        self._errors = {}
        sent = getattr(self.config, "workerinput", {}).get(PLAN_INPUT)
        if sent is not None:
            # the controller validated this plan moments ago: a worker does not parse it again
            self._plan, self._graph = pickle.loads(sent)
            return
        from pytest_orch.plan.validate import load_plan_and_graph

        try:
            self._plan, self._graph = load_plan_and_graph(
                self.settings.plan_path, self.settings.root, self.handlers, self.settings.variables)
        except PlanErrors as exc:
            for err in exc.errors:
                key = err.loc.path if err.loc else ""
                self._errors.setdefault(key, []).append(str(err))
            return

    @functools.cached_property
    def pickled(self) -> bytes | None:
        """The valid plan and its graph, for the workers (see ``load``); None with errors."""
        return pickle.dumps((self._plan, self._graph), pickle.HIGHEST_PROTOCOL) if self.ok else None

    def selection_errors(self) -> list[str]:
        """--phase and --group values that name nothing in the plan."""
        plan = self.plan
        phases = [p.id for p in plan.phases]
        errors = [f"--phase {wanted}: no such phase in the plan (phases: {', '.join(phases)})"
                  for wanted in sorted(self.settings.phases - set(phases))]
        groups = {g.id for p in plan.phases for g in p.groups} | \
            {f"{p.id}.{g.id}" for p in plan.phases for g in p.groups}
        errors += [f"--group {wanted}: no such group in the plan (groups: {', '.join(sorted(groups))})"
                   for wanted in sorted(self.settings.groups - groups)]
        return errors

    def in_selected_scope(self, task: Task) -> bool:
        """True when --phase and --group leave the task in."""
        settings = self.settings
        if settings.phases and task.phase not in settings.phases:
            return False
        if settings.groups:
            if task.is_checkpoint:
                return not settings.groups
            return task.group in settings.groups or f"{task.phase}.{task.group}" in settings.groups
        return True

    @property
    def plan(self) -> Plan:
        self.load()
        if self._plan is None:
            raise PlanErrors([])
        return self._plan

    @property
    def graph(self) -> dag.Graph:
        self.load()
        assert self._graph is not None
        return self._graph

    @property
    def ok(self) -> bool:
        self.load()
        return not self._errors

    def errors_in(self, relpath: str) -> list[str]:
        """Plan errors located in one file (errors without a file go to every file)."""
        self.load()
        assert self._errors is not None
        return self._errors.get(relpath, []) + self._errors.get("", [])

    def all_errors(self) -> list[str]:
        self.load()
        return [e for errors in (self._errors or {}).values() for e in errors]

    def is_plan_file(self, path: Path) -> bool:
        location = self.settings.plan_path
        if location.is_file():
            return path.resolve() == location.resolve()
        return path.suffix in (".yaml", ".yml") and path.resolve() in self._plan_files()

    def _plan_files(self) -> set[Path]:
        if not hasattr(self, "_files"):
            self._files = {p.resolve() for p in plan_files(self.settings.plan_path)}
        return self._files

    def nodeids(self) -> dict[str, str]:
        """Node id -> task id for every task, as collection names them."""
        from pytest_orch.collect import task_nodeid

        if not hasattr(self, "_nodeids"):
            self._nodeids = {task_nodeid(t, p.file): t.id for p in self.plan.phases for t in p.all_tasks}
        return self._nodeids

    def task_id_of(self, nodeid: str) -> str | None:
        if not self.ok:
            return None
        return self.nodeids().get(nodeid)

    def register_marker(self, tag: str) -> None:
        if tag not in self._markers:
            self._markers.add(tag)
            self.config.addinivalue_line("markers", f"{tag}: tasks tagged {tag!r} in the plan")

    # -- running a task -----------------------------------------------------------------------
    def interactive(self) -> bool:
        """A person can answer a prompt: -s, a terminal on stdin, not CI, not an xdist worker."""
        return (
            self.config.getoption("capture", "fd") == "no"
            and sys.stdin is not None and sys.stdin.isatty()
            and not os.environ.get("CI")
            and not is_worker(self.config)
        )

    def context(self, task: Task) -> TaskContext:
        phase = self.plan.phase(task.phase)
        templates = self._templates_dir(task.plan_dir)
        confirmed = is_worker(self.config) or (
            self.coordinator is not None and self.coordinator.is_confirmed(task.id))
        return TaskContext(
            root=self.settings.root,
            dry_run=self.settings.dry_run,
            variables=dict(phase.variables),
            templates_dir=templates,
            timeout=task.timeout,
            confirmed=confirmed,
            interactive=self.interactive(),
            written_digests=self.written_digests(),
        )

    def written_digests(self) -> Mapping[str, str | None]:
        """The state's digests of what tasks wrote: the run's live view on the controller; a worker reads
        the store once (what earlier runs wrote is what a guard like ``overwrite: false`` needs)."""
        live = getattr(self.coordinator.history if self.coordinator else None, "harness_written", None)
        if live is None:
            if self._written is None:
                self._written = read_written_digests(self.settings.root)
            live = self._written
        return live

    def wait_for_rate_limit(self, task: Task) -> None:
        """In process, hold a task of a rate-limited pool until its bucket has a token.

        Under xdist the controller's scheduler does this before it sends the task.
        """
        if task.pool is None or task.pool not in self.plan.rate_limits:
            return
        if task.pool not in self._buckets:
            self._buckets[task.pool] = TokenBucket(*parse_rate(self.plan.rate_limits[task.pool]))
        bucket = self._buckets[task.pool]
        while not bucket.try_take():
            time.sleep(bucket.wait_time())

    @functools.cache  # noqa: B019 - one Runtime per session
    def _templates_dir(self, plan_dir: str) -> Path | None:
        folder = self.settings.root / plan_dir / "templates"
        return folder if folder.is_dir() else None

    def execute(self, task: Task) -> Outcome:
        """Run the task's handler; an expected handler error becomes a failed outcome."""
        ctx = self.context(task)
        lines: list[str] = []
        ctx.log = lines.append
        try:
            outcome = self.handlers[task.type].run(task, ctx)
        except HandlerError as exc:
            outcome = Outcome("failed", message=str(exc))
        if lines:
            outcome.output = "\n".join(lines) + ("\n" + outcome.output if outcome.output else "")
        if ctx.extra.get("confirmed_now"):
            self.confirmed_now.add(task.id)
        return outcome

    def task_durations(self) -> dict[str, float]:
        """Seconds each task took when it last passed (from the state store; empty without one)."""
        return dict(self.durations)

    def run_reason(self, task_id: str) -> str:
        return self.run_reasons.get(task_id, "")

    def task_writes_files(self) -> frozenset[str]:
        used = {task.type for task in self.plan.tasks.values()}
        return frozenset(name for name in used if getattr(self.handlers[name], "writes_files", False))
