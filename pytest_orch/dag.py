"""The task graph: edges, cycles as a path, priority order and the ready set. No pytest here."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

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


def remaining_path(graph: Graph, weights: Mapping[str, float] | None = None) -> dict[str, float]:
    """Longest path from each task to the end of the graph, its own weight included."""
    weights = weights or {}
    dependents = graph.dependents()
    result: dict[str, float] = {}
    for node in reversed(topological(graph)):
        tail = max((result[d] for d in dependents.get(node, ()) if d in result), default=0.0)
        result[node] = weights.get(node, 1.0) + tail
    return result


def topological(graph: Graph) -> list[str]:
    """Tasks in an order where every prerequisite comes first, file order among equals."""
    return priority_order(graph, graph.nodes, {})


def priority_order(
    graph: Graph, nodes: Iterable[str], priority: Mapping[str, float]
) -> list[str]:
    """Order ``nodes`` so prerequisites come first; among free tasks, highest priority first.

    Edges to tasks outside ``nodes`` are ignored: those tasks are not part of this run.
    """
    wanted = list(nodes)
    index = {n: i for i, n in enumerate(wanted)}
    waiting = {n: {p for p in graph.prerequisites(n) if p in index} for n in wanted}
    dependents: dict[str, list[str]] = {n: [] for n in wanted}
    for node, pres in waiting.items():
        for pre in pres:
            dependents[pre].append(node)
    heap = [(-priority.get(n, 0.0), index[n], n) for n in wanted if not waiting[n]]
    heapq.heapify(heap)
    ordered: list[str] = []
    while heap:
        _, _, node = heapq.heappop(heap)
        ordered.append(node)
        for dep in dependents[node]:
            waiting[dep].discard(node)
            if not waiting[dep]:
                heapq.heappush(heap, (-priority.get(dep, 0.0), index[dep], dep))
    if len(ordered) != len(wanted):  # a cycle: validation reports it; keep the rest in file order
        ordered += [n for n in wanted if n not in set(ordered)]
    return ordered


def critical_path_length(graph: Graph, weights: Mapping[str, float]) -> float:
    """The longest chain of task weights: a lower bound of any schedule's span."""
    return max(remaining_path(graph, weights).values(), default=0.0)
