"""Raw YAML -> typed Plan: unknown keys, types, ids, references, variables and cycles."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pytest_orch import dag
from pytest_orch.errors import Location, PlanError, PlanErrors
from pytest_orch.fingerprint import NON_SEMANTIC_KEYS
from pytest_orch.plan import checks
from pytest_orch.plan.files import plan_files, relative_to_root
from pytest_orch.plan.load import MarkedDict, MarkedList, load_yaml
from pytest_orch.plan.model import (
    CHECKPOINT_GROUP,
    EXECUTION,
    ON_FAILURE,
    UNLIMITED,
    Group,
    Phase,
    Plan,
    Task,
)
from pytest_orch.plan.notify import Notifier, parse_notify
from pytest_orch.plan.provider_parser import ProviderParser
from pytest_orch.plan.providers import check_prompt_tasks
from pytest_orch.plan.suggest import suggest
from pytest_orch.plan.variables import plain, substitute_all
from pytest_orch.write_guard import protected_folder, refusal

FILE_KEYS = frozenset({"phases", "pools", "rate_limits", "vars", "notify", "providers", "secrets", "pool_hosts"})
PHASE_KEYS = frozenset({"phase", "name", "depends_on", "vars", "groups", "checkpoints"})
GROUP_KEYS = frozenset({"id", "name", "execution", "max_parallel", "depends_on", "tasks", "runs_on"})
TASK_KEYS = frozenset({
    "id", "name", "type", "depends_on", "timeout", "retries", "retry_delay", "backoff",
    "on_failure", "critical", "pool", "tags", "inputs", "runs_on",
})


class _Checker:
    """Collects errors so one pass reports every mistake it can find."""

    def __init__(self) -> None:
        self.errors: list[PlanError] = []

    def error(self, loc: Location | None, message: str) -> None:
        self.errors.append(PlanError(loc, message))

    def mapping(self, value: Any, loc: Location, what: str) -> MarkedDict | None:
        if isinstance(value, MarkedDict):
            return value
        self.error(loc, f"{what} must be a mapping, not {type(value).__name__}")
        return None

    def keys(self, data: MarkedDict, allowed: frozenset[str], what: str) -> None:
        for key in data:
            if key not in allowed:
                self.error(data.loc_of(key), f"unknown key {key!r} in {what}{suggest(key, allowed)}")

    def typed(self, data: MarkedDict, key: str, check: Callable[[Any], Any], default: Any, what: str) -> Any:
        if key not in data or data[key] is None:
            return default
        try:
            return check(data[key])
        except (TypeError, ValueError) as exc:
            self.error(data.loc_of(key), f"{what}: {key}: {exc}")
            return default


class PlanBuilder:
    """Turns plan files into a Plan, or raises PlanErrors naming every problem found."""

    def __init__(self, handlers: Mapping[str, Any], overrides: Mapping[str, str], root: Path) -> None:
        self.handlers = handlers
        self.overrides = dict(overrides)
        self.root = root
        self.check = _Checker()
        self.pools: dict[str, int] = {}
        self.rate_limits: dict[str, str] = {}
        self.variables: dict[str, str] = {}
        self.notify: list[Notifier] = []
        self.variable_names: set[str] = set()
        self.providers = ProviderParser(self.check.errors)
        self.pool_hosts: dict[str, tuple[str, ...]] = {}

    def build(self, files: list[Path], name: str, location: Path | None = None) -> Plan:
        phases: list[Phase] = []
        relfiles = []
        if not files and location is not None:
            rel = _relative(location, self.root)
            self.check.error(None, f"{rel}/: the plan folder holds no plan file (*.yaml or *.yml); "
                             f"add one, or name another plan with --plan or the orch_phases ini option")
        for path in files:
            rel = _relative(path, self.root)
            relfiles.append(rel)
            try:
                raw = load_yaml(path, rel)
            except PlanError as err:
                self.check.errors.append(err)
                continue
            phases += self._file(raw, rel, path.parent)
        self._cross_check(phases)
        check_prompt_tasks([(t, p.variables) for p in phases for t in p.all_tasks], self.providers.providers,
                           self.root, self.check.errors)
        if self.check.errors:
            raise PlanErrors(self.check.errors)
        plan = Plan(name=name, phases=tuple(phases), pools=self.pools, rate_limits=self.rate_limits,
                    variables=self.variables, files=tuple(relfiles), notify=tuple(self.notify),
                    variable_names=frozenset(self.variable_names), providers=self.providers.providers,
                    secrets=tuple(self.providers.secrets), pool_hosts=self.pool_hosts)
        self._check_cycles(plan)
        if self.check.errors:
            raise PlanErrors(self.check.errors)
        return plan

    def _file(self, raw: Any, rel: str, folder: Path) -> list[Phase]:
        loc = Location(rel, 1)
        if raw is None:  # nothing but comments, or nothing at all: a file the user expects to count
            self.check.error(loc, "the plan file is empty (a plan file holds one phase, "
                             "'phase:' with its 'groups:', or a 'phases:' list)")
            return []
        data = self.check.mapping(raw, loc, "a plan file")
        if data is None:
            return []
        for key, store, check in (("pools", self.pools, checks.pool_limits),
                                  ("rate_limits", self.rate_limits, checks.rate_map),
                                  ("pool_hosts", self.pool_hosts, checks.host_map)):
            if key in data:
                store.update(self.check.typed(data, key, check, {}, rel))
        if "notify" in data:
            self.notify += parse_notify(data["notify"], data.loc_of("notify"), self.root, self.check.error)
        # providers see the file's vars (a one-phase file's are its phase's, checked there) and --var
        self.providers.read_file(data, {**_vars_quietly(data), **self.overrides})
        if "phases" in data:
            # a file of one phase has its vars read once, as the phase's own, below
            file_vars = self.check.typed(data, "vars", checks.var_map, {}, rel)
            self.variable_names.update(file_vars)
            self.check.keys(data, FILE_KEYS, "a plan file")
            items = data["phases"]
            if not isinstance(items, MarkedList):
                self.check.error(data.loc_of("phases"), "phases must be a list of phases")
                return []
            out = []
            for i, item in enumerate(items):
                phase_data = self.check.mapping(item, items.item_locs[i], "a phase")
                if phase_data is not None:
                    self.check.keys(phase_data, PHASE_KEYS, "a phase")
                    out.append(self._phase(phase_data, rel, folder, file_vars))
            return [p for p in out if p is not None]
        if "phase" not in data:
            self.check.error(loc, "a plan file needs a 'phase' key (or a 'phases' list)")
            return []
        self.check.keys(data, PHASE_KEYS | {"pools", "rate_limits", "notify", "providers", "secrets",
                                          "pool_hosts"}, "a phase")
        phase = self._phase(data, rel, folder, {})
        return [phase] if phase else []

    def _phase(self, data: MarkedDict, rel: str, folder: Path, file_vars: dict[str, str]) -> Phase | None:
        if "phase" not in data:
            self.check.error(data.loc, "a phase needs a 'phase' id")
            return None
        phase_id = self.check.typed(data, "phase", checks.ident, None, "phase")
        if phase_id is None:
            return None
        what = f"phase {phase_id!r}"
        phase_vars = self.check.typed(data, "vars", checks.var_map, {}, what)
        self.variable_names.update(phase_vars)
        variables = {**file_vars, **phase_vars, **self.overrides}
        self.variables.update(variables)
        try:
            data = substitute_all(data, variables, data.loc, self.variable_names)
        except PlanError as err:
            self.check.errors.append(err)
            return None
        plan_dir = _relative(folder, self.root)
        groups = []
        for gdata, gloc in _items(data, "groups", self.check, what):
            group = self._group(gdata, gloc, phase_id, plan_dir)
            if group:
                groups.append(group)
        checkpoints = tuple(
            task for cdata, _ in _items(data, "checkpoints", self.check, what)
            if (task := self._task(cdata, phase_id, CHECKPOINT_GROUP, plan_dir, True)) is not None
        )
        return Phase(
            id=phase_id,
            name=self.check.typed(data, "name", checks.text, f"Phase {phase_id}", what),
            depends_on=self.check.typed(data, "depends_on", checks.id_list, (), what),
            groups=tuple(groups), checkpoints=checkpoints, file=rel, loc=data.loc_of("phase"),
            variables=variables, depends_loc=data.loc_of("depends_on"),
        )

    def _group(self, data: MarkedDict, loc: Location, phase_id: str, plan_dir: str) -> Group | None:
        self.check.keys(data, GROUP_KEYS, "a group")
        group_id = self.check.typed(data, "id", checks.ident, None, "group")
        if group_id is None:
            self.check.error(data.loc, f"a group of phase {phase_id!r} needs an 'id'")
            return None
        what = f"group {group_id!r}"
        tasks = tuple(
            task for tdata, _ in _items(data, "tasks", self.check, what)
            if (task := self._task(tdata, phase_id, group_id, plan_dir, False)) is not None
        )
        return Group(
            id=group_id, phase=phase_id,
            name=self.check.typed(data, "name", checks.text, group_id, what),
            execution=self.check.typed(data, "execution", checks.choice(EXECUTION), "parallel", what),
            max_parallel=self.check.typed(data, "max_parallel", checks.positive_int, None, what),
            depends_on=self.check.typed(data, "depends_on", checks.id_list, (), what),
            tasks=tasks, loc=data.loc_of("id"), depends_loc=data.loc_of("depends_on"),
            runs_on=self.check.typed(data, "runs_on", checks.hosts, (), what),
        )

    def _task(self, data: MarkedDict, phase_id: str, group_id: str, plan_dir: str,
              is_checkpoint: bool) -> Task | None:
        task_id = self.check.typed(data, "id", checks.ident, None, "task")
        if task_id is None:
            self.check.error(data.loc, f"a task of group {group_id!r} needs an 'id'")
            return None
        what = f"task {task_id!r}"
        type_name = data.get("type")
        handler = self.handlers.get(type_name) if isinstance(type_name, str) else None
        if "type" not in data:
            self.check.error(data.loc, f"{what} needs a 'type' (known: {', '.join(sorted(self.handlers))})")
        elif handler is None:
            known = ", ".join(sorted(self.handlers))
            self.check.error(data.loc_of("type"), f"{what}: unknown handler type {type_name!r} "
                             f"(known: {known}){suggest(type_name, self.handlers)}")
        allowed = TASK_KEYS | (handler.keys if handler else frozenset(data) - TASK_KEYS)
        self.check.keys(data, allowed, what)
        params = {k: plain(v) for k, v in data.items() if k not in TASK_KEYS}
        definition = {k: plain(v) for k, v in data.items() if k not in NON_SEMANTIC_KEYS}
        task = Task(
            id=task_id, phase=phase_id, group=group_id, type=str(type_name),
            name=self.check.typed(data, "name", checks.text, task_id, what),
            depends_on=self.check.typed(data, "depends_on", checks.id_list, (), what),
            timeout=self.check.typed(data, "timeout", checks.timeout, None, what),
            retries=self.check.typed(data, "retries", checks.count, 0, what),
            retry_delay=self.check.typed(data, "retry_delay", checks.number(0, checks.MAX_RETRY_DELAY), 0.0, what),
            backoff=self.check.typed(data, "backoff", checks.number(1, checks.MAX_BACKOFF), 1.0, what),
            on_failure=self.check.typed(data, "on_failure", checks.choice(ON_FAILURE), "skip_dependents", what),
            critical=self.check.typed(data, "critical", checks.boolean, True, what),
            pool=self.check.typed(data, "pool", checks.text, None, what),
            tags=self.check.typed(data, "tags", checks.str_list, (), what),
            inputs=self.check.typed(data, "inputs", checks.str_list, (), what),
            params=params, definition=definition, loc=data.loc_of("id"), key_locs=dict(data.key_locs),
            is_checkpoint=is_checkpoint, plan_dir=plan_dir,
            runs_on=self.check.typed(data, "runs_on", checks.hosts, (), what),
        )
        if handler is not None:
            try:
                handler.validate(task)
            except PlanError as err:
                self.check.errors.append(err)
            for key in sorted(getattr(handler, "path_keys", ())):
                self._inside_root(task, key, task.params.get(key))
            for key in sorted(getattr(handler, "write_keys", ())):
                self._writable(task, key, task.params.get(key))
        for pattern in task.inputs:
            self._inside_root(task, "inputs", pattern)
        if task.retries and task.retry_delay * task.backoff ** (task.retries - 1) > checks.MAX_RETRY_DELAY:
            wait = task.retry_delay * task.backoff ** (task.retries - 1)
            self.check.error(task.loc_of("backoff" if "backoff" in data else "retry_delay"),
                             f"{what}: the last retry would wait {wait:.3g} s (retry_delay x backoff ** "
                             f"(retries - 1)); at most {checks.MAX_RETRY_DELAY:g} s (1 day)")
        return task

    def _inside_root(self, task: Task, key: str, value: Any) -> None:
        """A path key that leads outside the project root is a plan error, before anything runs.

        Lexical only: a symlink that leads out is refused when the task runs.
        """
        if not isinstance(value, str) or not value:
            return
        root = os.path.normpath(self.root.absolute())
        full = os.path.normpath(os.path.join(root, value))
        if full != root and not full.startswith(root + os.sep):
            self.check.error(task.loc_of(key), f"task {task.id!r}: {key}: {value!r} is outside the project root")

    def _writable(self, task: Task, key: str, value: Any) -> None:
        """A path the handler writes must not lie in .git/ or .orch/ (lexical, like _inside_root)."""
        if not isinstance(value, str) or not value:
            return
        root = os.path.normpath(self.root.absolute())
        folder = protected_folder(os.path.relpath(os.path.normpath(os.path.join(root, value)), root))
        if folder is not None:
            self.check.error(task.loc_of(key), f"task {task.id!r}: {refusal(key, value, folder)}")

    def _cross_check(self, phases: list[Phase]) -> None:
        """Duplicate ids, references to unknown tasks, groups, phases and pools."""
        seen_phases: dict[str, Phase] = {}
        seen_tasks: dict[str, Task] = {}
        for phase in phases:
            if phase.id in seen_phases:
                self.check.error(phase.loc, f"duplicate phase id {phase.id!r} "
                                 f"(first at {seen_phases[phase.id].loc})")
            seen_phases.setdefault(phase.id, phase)
            seen_groups: dict[str, Group] = {}
            for group in phase.groups:
                if group.id in seen_groups:
                    self.check.error(group.loc, f"duplicate group id {group.id!r} in phase {phase.id!r} "
                                     f"(first at line {seen_groups[group.id].loc.line})")
                seen_groups.setdefault(group.id, group)
            for group in phase.groups:
                for dep in group.depends_on:
                    if dep == group.id:
                        self.check.error(group.depends_loc, f"group {group.id!r} of phase {phase.id!r} "
                                         f"depends on itself")
                    elif dep not in seen_groups:
                        self.check.error(group.depends_loc, f"group {group.id!r} depends on unknown group {dep!r} "
                                         f"of phase {phase.id!r}{suggest(dep, seen_groups)}")
            self._scope_cycle(f"groups of phase {phase.id!r}",
                              {g.id: (g.depends_on, g.depends_loc) for g in phase.groups})
            for task in phase.all_tasks:
                if task.id in seen_tasks:
                    self.check.error(task.loc, f"duplicate task id {task.id!r} "
                                     f"(first at {seen_tasks[task.id].loc})")
                seen_tasks.setdefault(task.id, task)
        for phase in phases:
            for dep in phase.depends_on:
                if dep == phase.id:
                    self.check.error(phase.depends_loc, f"phase {phase.id!r} depends on itself")
                elif dep not in seen_phases:
                    self.check.error(phase.depends_loc, f"phase {phase.id!r} depends on unknown phase {dep!r}"
                                     f"{suggest(dep, seen_phases)}")
            for task in phase.all_tasks:
                for dep in task.depends_on:
                    if dep not in seen_tasks:
                        others = [t for t in seen_tasks if t != task.id]  # never suggest itself
                        self.check.error(task.loc_of("depends_on"), f"task {task.id!r} depends on "
                                         f"unknown task {dep!r}{suggest(dep, others)}")
                if task.pool is not None and task.pool not in self.pools:
                    self.pools.setdefault(task.pool, UNLIMITED)  # until --pool sets it
        self._scope_cycle("phases", {p.id: (p.depends_on, p.depends_loc) for p in phases})

    def _scope_cycle(self, what: str, edges: dict[str, tuple[tuple[str, ...], Location | None]]) -> None:
        """A cycle among phases (or among the groups of a phase), found even when they have no tasks."""
        graph = dag.Graph(nodes=list(edges),
                          requires={node: {d for d in deps if d != node} for node, (deps, _) in edges.items()})
        cycle = dag.find_cycle(graph)
        if cycle:
            self.check.error(edges[cycle[1]][1], f"dependency cycle between {what}: " + " -> ".join(cycle))

    def _check_cycles(self, plan: Plan) -> None:
        self.graph = dag.build_graph(plan)
        cycle = dag.find_cycle(self.graph)
        if cycle:
            first = plan.tasks[cycle[1] if len(cycle) > 1 else cycle[0]]
            self.check.error(first.loc_of("depends_on"), "dependency cycle: " + " -> ".join(cycle))


def _items(data: MarkedDict, key: str, check: _Checker, what: str):
    """Yield (mapping, location) for each item of the list ``data[key]``."""
    value = data.get(key)
    if value is None:
        return
    if not isinstance(value, MarkedList):
        check.error(data.loc_of(key), f"{what}: {key} must be a list")
        return
    for i, item in enumerate(value):
        loc = value.item_locs[i]
        mapping = check.mapping(item, loc, f"an item of {key}")
        if mapping is not None:
            yield mapping, loc


def _vars_quietly(data: MarkedDict) -> dict[str, str]:
    """A file's ``vars`` without reporting its errors: the phase's or the file's own check does."""
    try:
        return checks.var_map(data.get("vars") or {})
    except (TypeError, ValueError):
        return {}


def _relative(path: Path, root: Path) -> str:
    return relative_to_root(path, root)


def load_plan(location: Path, root: Path, handlers: Mapping[str, Any],
              overrides: Mapping[str, str] | None = None) -> Plan:
    """Load and validate the plan at ``location``; raise PlanErrors with every problem."""
    return load_plan_and_graph(location, root, handlers, overrides)[0]


def load_plan_and_graph(location: Path, root: Path, handlers: Mapping[str, Any],
                        overrides: Mapping[str, str] | None = None) -> tuple[Plan, dag.Graph]:
    """As load_plan, with the task graph the validation built (building it twice is not free)."""
    builder = PlanBuilder(handlers, overrides or {}, root)
    plan = builder.build(plan_files(location), location.stem, location)
    return plan, builder.graph
