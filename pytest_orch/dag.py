"""The task graph: edges from phases and groups, cycles as a path, and the one topological sort.

The preview, the in-process order and the xdist ready set all order keys with ``order_keys``.
No pytest here.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from pytest_orch.plan.model import Plan


@dataclass
class Graph:
    """Tasks and two kinds of edge.

    ``requires[t]``: tasks that must be *done* (passed or up to date) before ``t`` may run.
    ``after[t]``: tasks that must only have *ended* before ``t`` starts (a checkpoint after its
    phase's tasks, the next task of a sequential group); their failure does not block ``t``.
    """

    nodes: list[str]
    requires: dict[str, set[str]] = field(default_factory=dict)
    after: dict[str, set[str]] = field(default_factory=dict)

    def prerequisites(self, node: str) -> set[str]:
        """Every task that must have ended before ``node`` starts."""
        return self.requires.get(node, set()) | self.after.get(node, set())

    def dependents(self) -> dict[str, set[str]]:
        """Reverse edges: for each task, the tasks that wait for it."""
        reverse: dict[str, set[str]] = {n: set() for n in self.nodes}
        for node in self.nodes:
            for pre in self.prerequisites(node):
                reverse.setdefault(pre, set()).add(node)
        return reverse


def build_graph(plan: Plan) -> Graph:
    """Expand task, group and phase dependencies of a valid plan into task edges."""
    graph = Graph(nodes=list(plan.tasks))
    phase_tasks = {p.id: [t.id for t in p.all_tasks] for p in plan.phases}
    for phase in plan.phases:
        from_phases = {t for dep in phase.depends_on for t in phase_tasks.get(dep, ())}
        group_tasks = {g.id: [t.id for t in g.tasks] for g in phase.groups}
        for group in phase.groups:
            from_groups = {t for dep in group.depends_on for t in group_tasks.get(dep, ())}
            previous = None
            for task in group.tasks:
                graph.requires[task.id] = set(task.depends_on) | from_groups | from_phases
                if group.execution == "sequential" and previous is not None:
                    graph.after[task.id] = {previous}
                previous = task.id
        phase_body = [t for g in phase.groups for t in group_tasks[g.id]]
        for checkpoint in phase.checkpoints:
            graph.requires[checkpoint.id] = set(checkpoint.depends_on) | from_phases
            graph.after[checkpoint.id] = set(phase_body)
    return graph


def find_cycle(graph: Graph) -> list[str] | None:
    """Return a cycle as a path that starts and ends at the same task, or None."""
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(graph.nodes, white)
    for start in graph.nodes:
        if colour[start] != white:
            continue
        stack: list[tuple[str, Iterable[str]]] = [(start, iter(sorted(graph.prerequisites(start))))]
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
                cycle = path[path.index(child):] + [child]
                return list(reversed(cycle))  # dependency order: first runs first
            if state == white:
                colour[child] = grey
                path.append(child)
                stack.append((child, iter(sorted(graph.prerequisites(child)))))
    return None


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


def remaining_path(graph: Graph, weights: Mapping[str, float] | None = None) -> dict[str, float]:
    """Longest path from each task to the end of the graph, its own weight included."""
    return longest_paths({n: graph.prerequisites(n) for n in graph.nodes}, weights or {})


def topological(graph: Graph) -> list[str]:
    """Tasks in an order where every prerequisite comes first, file order among equals."""
    return order_keys({n: graph.prerequisites(n) for n in graph.nodes})


def priority_order(graph: Graph, nodes: Iterable[str], priority: Mapping[str, float]) -> list[str]:
    """Order ``nodes`` so prerequisites come first; among free tasks, highest priority first."""
    return order_keys({n: graph.prerequisites(n) for n in nodes}, priority)


def critical_path_length(graph: Graph, weights: Mapping[str, float]) -> float:
    """The longest chain of task weights: a lower bound of any schedule's span."""
    return max(remaining_path(graph, weights).values(), default=0.0)
