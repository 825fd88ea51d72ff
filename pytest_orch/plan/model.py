"""The typed plan: frozen dataclasses Plan, Phase, Group, Task, each with its location."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pytest_orch.errors import Location

CHECKPOINT_GROUP = "checkpoints"
ON_FAILURE = ("skip_dependents", "continue", "abort")
EXECUTION = ("parallel", "sequential")
UNLIMITED = 1_000_000
"""The size of a pool no ``pools:`` entry or ``--pool`` limits."""


@dataclass(frozen=True)
class Task:
    """One unit of work: a task of a group, or a checkpoint of a phase."""

    id: str
    name: str
    type: str
    phase: str
    group: str
    depends_on: tuple[str, ...]
    timeout: float | None
    retries: int
    retry_delay: float
    backoff: float
    on_failure: str
    critical: bool
    pool: str | None
    tags: tuple[str, ...]
    inputs: tuple[str, ...]
    params: Mapping[str, Any]
    """The handler's own keys, with plan variables substituted."""
    definition: Mapping[str, Any]
    """Every key of the task as resolved, used for its fingerprint."""
    loc: Location
    key_locs: Mapping[str, Location] = field(default_factory=dict)
    is_checkpoint: bool = False
    plan_dir: str = "phases"
    """The folder of the plan file, relative to the rootdir; its templates/ holds templates."""
    runs_on: tuple[str, ...] = ()
    """Where it may run under remote workers: ``local`` or host names; empty: wherever the rules allow."""

    def loc_of(self, key: str) -> Location:
        """Return the location of one of the task's keys, or of the task itself."""
        return self.key_locs.get(key, self.loc)


@dataclass(frozen=True)
class Group:
    id: str
    name: str
    phase: str
    execution: str
    max_parallel: int | None
    depends_on: tuple[str, ...]
    tasks: tuple[Task, ...]
    loc: Location
    depends_loc: Location | None = None
    runs_on: tuple[str, ...] = ()
    """Where its tasks may run (see Task.runs_on); a task's own runs_on wins."""


@dataclass(frozen=True)
class Phase:
    id: str
    name: str
    depends_on: tuple[str, ...]
    groups: tuple[Group, ...]
    checkpoints: tuple[Task, ...]
    file: str
    loc: Location
    variables: Mapping[str, str] = field(default_factory=dict)
    depends_loc: Location | None = None

    @property
    def all_tasks(self) -> tuple[Task, ...]:
        """Every task of every group, then the checkpoints, in file order."""
        return tuple(t for g in self.groups for t in g.tasks) + self.checkpoints


@dataclass(frozen=True)
class Plan:
    name: str
    phases: tuple[Phase, ...]
    pools: Mapping[str, int]
    rate_limits: Mapping[str, str]
    variables: Mapping[str, str]
    files: tuple[str, ...]
    notify: tuple[Any, ...] = ()
    """Notifiers (pytest_orch.plan.notify.Notifier) from the plan files' top-level ``notify`` keys."""
    variable_names: frozenset[str] = frozenset()
    """Names declared under ``vars`` or used as ``${NAME}``: what ``--var`` may set."""
    providers: Mapping[str, Any] = field(default_factory=dict)
    """The ``providers:`` of every plan file by name (pytest_orch.plan.providers.Provider)."""
    secrets: tuple[str, ...] = ()
    """Names of environment variables whose values are masked in every report."""
    pool_hosts: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Pools pinned to named hosts (top-level ``pool_hosts``), for remote workers."""

    def __post_init__(self) -> None:
        tasks = {t.id: t for p in self.phases for t in p.all_tasks}
        object.__setattr__(self, "_tasks", MappingProxyType(tasks))

    def __reduce__(self) -> tuple[Any, ...]:
        # the task index is derived and a mappingproxy cannot be pickled; xdist workers receive
        # the controller's plan pickled, so rebuild the index from the fields
        return (Plan, (self.name, self.phases, self.pools, self.rate_limits, self.variables, self.files,
                       self.notify, self.variable_names, self.providers, self.secrets, self.pool_hosts))

    @property
    def tasks(self) -> Mapping[str, Task]:
        """Every task and checkpoint of the plan by id, in file order."""
        return self._tasks  # type: ignore[attr-defined]

    def phase(self, phase_id: str) -> Phase:
        return next(p for p in self.phases if p.id == phase_id)

    def group(self, phase_id: str, group_id: str) -> Group:
        return next(g for g in self.phase(phase_id).groups if g.id == group_id)
