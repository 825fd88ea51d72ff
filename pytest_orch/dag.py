"""The task graph: edges from phases and groups, cycles as a path, and the one topological sort.

The preview, the in-process order and the xdist ready set all order keys with ``order_keys``.
No pytest here.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Iterable, Iterator, Mapping
from typing import TypeVar

from pytest_orch.plan.model import Plan

# A barrier stands for "every task of this phase (or group)". A task of a phase that depends on
# another phase requires the barrier, not each of the other phase's tasks: the graph keeps one edge
# per task and barrier instead of one per pair of tasks, linear in the plan instead of quadratic
# (10 phases of 500 tasks in a chain would otherwise hold 11 million edges). The prefix is a
# control character, which no task id may contain (plan/checks.py).
BARRIER = "\x1e"


def phase_barrier(phase_id: str) -> str:
    return f"{BARRIER}phase {phase_id}"


def group_barrier(phase_id: str, group_id: str) -> str:
    return f"{BARRIER}group {phase_id}.{group_id}"


def is_barrier(node: str) -> bool:
    return node.startswith(BARRIER)


def barrier_name(node: str) -> str:
    """A barrier as people name it: ``phase 2``, ``group 2.jest``."""
    return node[len(BARRIER):] if is_barrier(node) else node


class Graph:
    """Tasks and two kinds of edge.

    ``requires[t]``: tasks that must be *done* (passed or up to date) before ``t`` may run.
    ``after[t]``: tasks that must only have *ended* before ``t`` starts (a checkpoint after its
    phase's tasks, the next task of a sequential group); their failure does not block ``t``.

    Stored compactly: ``direct[t]`` holds the tasks ``t`` names itself, ``via[t]`` the barriers it
    requires, ``barriers[b]`` each barrier's tasks. ``requires`` expands the three on each lookup,
    so a consumer that asks about one task pays for that task's edges only; the algorithms below
    walk the compact form.
    """

    def __init__(self, nodes: Iterable[str], requires: Mapping[str, Iterable[str]] | None = None,
                 after: Mapping[str, Iterable[str]] | None = None,
                 barriers: Mapping[str, Iterable[str]] | None = None,
                 via: Mapping[str, Iterable[str]] | None = None) -> None:
        self.nodes: list[str] = list(nodes)
        self.direct: dict[str, set[str]] = {k: set(v) for k, v in (requires or {}).items()}
        self.after: dict[str, set[str]] = {k: set(v) for k, v in (after or {}).items()}
        self.barriers: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in (barriers or {}).items()}
        self.via: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in (via or {}).items()}

    @property
    def requires(self) -> Mapping[str, set[str]]:
        """Task -> the tasks that must be done first, phases and groups expanded."""
        return _Requires(self)

    def prerequisites(self, node: str) -> set[str]:
        """Every task that must have ended before ``node`` starts."""
        return self.requires.get(node, set()) | self.after.get(node, set())

    def dependents(self) -> dict[str, set[str]]:
        """Reverse edges: for each task, the tasks that wait for it (expanded: quadratic at worst)."""
        reverse: dict[str, set[str]] = {n: set() for n in self.nodes}
        for node in self.nodes:
            for pre in self.prerequisites(node):
                reverse.setdefault(pre, set()).add(node)
        return reverse

    # -- the compact form, for the algorithms -------------------------------------------------
    def compact_prerequisites(self, node: str) -> Iterator[str]:
        """Tasks and barriers that must have ended before ``node`` (a task or a barrier)."""
        if is_barrier(node):
            yield from self.barriers.get(node, ())
            return
        yield from self.direct.get(node, ())
        yield from self.via.get(node, ())
        yield from self.after.get(node, ())

    def compact_nodes(self) -> list[str]:
        """Tasks, then barriers."""
        return self.nodes + list(self.barriers)


class _Requires(Mapping[str, set[str]]):
    """The expanded ``requires`` of a Graph, computed per lookup."""

    def __init__(self, graph: Graph) -> None:
        self._graph = graph

    def __getitem__(self, node: str) -> set[str]:
        graph = self._graph
        if node not in graph.direct and node not in graph.via:
            raise KeyError(node)
        result = set(graph.direct.get(node, ()))
        for barrier in graph.via.get(node, ()):
            result.update(graph.barriers[barrier])
        return result

    def __iter__(self) -> Iterator[str]:
        graph = self._graph
        return iter([n for n in graph.nodes if n in graph.direct or n in graph.via])

    def __len__(self) -> int:
        return sum(1 for _ in self)


def build_graph(plan: Plan) -> Graph:
    """The edges of a valid plan: each task's own, and barriers for its phase's and group's dependencies."""
    nodes = list(plan.tasks)
    direct: dict[str, set[str]] = {}
    after: dict[str, set[str]] = {}
    barriers: dict[str, tuple[str, ...]] = {}
    via: dict[str, tuple[str, ...]] = {}
    known_phases = {p.id for p in plan.phases}
    for phase in plan.phases:
        barriers[phase_barrier(phase.id)] = tuple(t.id for t in phase.all_tasks)
        from_phases = tuple(phase_barrier(dep) for dep in phase.depends_on if dep in known_phases)
        known_groups = {g.id for g in phase.groups}
        for group in phase.groups:
            barriers[group_barrier(phase.id, group.id)] = tuple(t.id for t in group.tasks)
            from_groups = tuple(group_barrier(phase.id, dep) for dep in group.depends_on if dep in known_groups)
            previous = None
            for task in group.tasks:
                direct[task.id] = set(task.depends_on)
                via[task.id] = from_phases + from_groups
                if group.execution == "sequential" and previous is not None:
                    after[task.id] = {previous}
                previous = task.id
        phase_body = {t.id for g in phase.groups for t in g.tasks}
        for checkpoint in phase.checkpoints:
            direct[checkpoint.id] = set(checkpoint.depends_on)
            via[checkpoint.id] = from_phases
            after[checkpoint.id] = set(phase_body)
    graph = Graph(nodes)  # its parts are built here: no need for __init__ to copy them
    graph.direct, graph.after, graph.barriers, graph.via = direct, after, barriers, via
    return graph


def find_cycle(graph: Graph) -> list[str] | None:
    """Return a cycle as a path of tasks that starts and ends at the same task, or None."""
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(graph.compact_nodes(), white)
    for start in graph.compact_nodes():
        if colour[start] != white:
            continue
        stack: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph.compact_prerequisites(start))))]
        path = [start]
        colour[start] = grey
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                colour[node] = black
                stack.pop()
                path.pop()
                continue
            state = colour.get(child, black)  # unknown ids are reported elsewhere
            if state == grey:
                return _task_cycle(path[path.index(child):])
            if state == white:
                colour[child] = grey
                path.append(child)
                stack.append((child, iter(sorted(graph.compact_prerequisites(child)))))
    return None


def _task_cycle(loop: list[str]) -> list[str]:
    """A loop of the compact graph as a closed path of tasks in dependency order (first runs first).

    A barrier between two tasks stands for "every task of", so the task before it is among the
    prerequisites of the task after it: dropping barriers keeps a path that follows the edges.
    """
    tasks = [n for n in reversed(loop) if not is_barrier(n)]
    return tasks + tasks[:1]


K = TypeVar("K", bound=Hashable)


def order_keys(prerequisites: Mapping[K, Iterable[K]], priority: Mapping[K, float] | None = None) -> list[K]:
    """Keys in an order where every prerequisite comes first: the project's one topological sort.

    Among keys that are free at the same time, the highest ``priority`` goes first, then the order
    of ``prerequisites``. Edges to keys outside ``prerequisites`` are ignored (tasks not in this
    run); the keys of a cycle (validation reports it) follow the rest in their given order.
    """
    priority = priority or {}
    index = {k: i for i, k in enumerate(prerequisites)}
    waiting = {k: {p for p in pres if p in index and p != k} for k, pres in prerequisites.items()}
    dependents: dict[K, list[K]] = {k: [] for k in index}
    for key, pres in waiting.items():
        for pre in pres:
            dependents[pre].append(key)
    heap = [(-priority.get(k, 0.0), index[k], k) for k in index if not waiting[k]]
    heapq.heapify(heap)
    ordered: list[K] = []
    while heap:
        _, _, key = heapq.heappop(heap)
        ordered.append(key)
        for dep in dependents[key]:
            waiting[dep].discard(key)
            if not waiting[dep]:
                heapq.heappush(heap, (-priority.get(dep, 0.0), index[dep], dep))
    if len(ordered) != len(index):
        placed = set(ordered)
        ordered += [k for k in index if k not in placed]
    return ordered


def longest_paths(prerequisites: Mapping[K, Iterable[K]], weights: Mapping[K, float]) -> dict[K, float]:
    """Longest path from each key to the end of the graph, its own weight (default 1) included."""
    dependents: dict[K, list[K]] = {k: [] for k in prerequisites}
    for key, pres in prerequisites.items():
        for pre in pres:
            if pre in dependents and pre != key:
                dependents[pre].append(key)
    result: dict[K, float] = {}
    for key in reversed(order_keys(prerequisites)):
        tail = max((result[d] for d in dependents[key] if d in result), default=0.0)
        result[key] = weights.get(key, 1.0) + tail
    return result


def _compact(graph: Graph, nodes: Iterable[str]) -> dict[str, list[str]]:
    """The compact prerequisites of ``nodes`` and of every barrier, for order_keys and longest_paths.

    Barriers come first, so that among equals in the order a barrier (which is no task) never
    holds a task back; their own keys are dropped from the results.
    """
    compact = {b: list(members) for b, members in graph.barriers.items()}
    compact.update({n: list(graph.compact_prerequisites(n)) for n in nodes})
    return compact


def topological(graph: Graph) -> list[str]:
    """Tasks in an order where every prerequisite comes first, file order among equals."""
    return priority_order(graph, graph.nodes, {})


def priority_order(graph: Graph, nodes: Iterable[str], priority: Mapping[str, float]) -> list[str]:
    """Order ``nodes`` so prerequisites come first; among free tasks, highest priority first.

    Edges to tasks outside ``nodes`` are ignored: those tasks are not part of this run.
    """
    compact = _compact(graph, nodes)
    # a barrier is passed the moment it is free: it must not wait behind a task of higher priority
    first = {**priority, **dict.fromkeys(graph.barriers, float("inf"))}
    return [n for n in order_keys(compact, first) if not is_barrier(n)]


def _remaining(graph: Graph, weights: Mapping[str, float]) -> dict[str, float]:
    """Longest path to the end from every task and barrier (a barrier weighs nothing)."""
    return longest_paths(_compact(graph, graph.nodes), {**weights, **dict.fromkeys(graph.barriers, 0.0)})


def remaining_path(graph: Graph, weights: Mapping[str, float] | None = None) -> dict[str, float]:
    """Longest path from each task to the end of the graph, its own weight included."""
    result = _remaining(graph, weights or {})
    return {n: result[n] for n in graph.nodes}


def critical_path(graph: Graph, weights: Mapping[str, float] | None = None,
                  nodes: Iterable[str] | None = None) -> tuple[list[str], float]:
    """The longest chain of tasks by weight (default 1 each) and its length, among ``nodes``
    (default: every task); edges to other tasks are left out. Walks the compact graph: linear."""
    if nodes is None:
        tasks = graph.nodes
    else:
        wanted = set(nodes)  # once: inside the comprehension it was built again for every node (quadratic)
        tasks = [n for n in graph.nodes if n in wanted]
    if not tasks:
        return [], 0.0
    compact = _compact(graph, tasks)
    result = longest_paths(compact, {**(weights or {}), **dict.fromkeys(graph.barriers, 0.0)})
    dependents: dict[str, list[str]] = {}
    for node, pres in compact.items():
        for pre in pres:
            if pre in compact:
                dependents.setdefault(pre, []).append(node)
    first = {n: i for i, n in enumerate(tasks)}
    node = max(tasks, key=lambda n: (result[n], -first[n]))  # the earliest of equals
    total = result[node]
    chain: list[str] = []
    while True:
        if not is_barrier(node):
            chain.append(node)
        later = [d for d in dependents.get(node, ()) if d in result]
        if not later:
            break
        node = max(later, key=lambda d: result[d])
    return chain, total
