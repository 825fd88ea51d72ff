"""The plan's graph as text (``--orch-graph mermaid|dot|json``): phases, groups, tasks, edges, critical path.

Edges are printed as the plan declares them (task -> task, group -> group, phase -> phase; ordering
edges of sequential groups and checkpoints dashed), not expanded task by task: a phase dependency
expanded is every task of one phase times every task of the next. The critical path is the longest
chain of the selected tasks, weighted by their last durations (1 each without a history).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from pytest_orch.dag import Graph
from pytest_orch.plan.model import Plan
from pytest_orch.reports.timeline import COLOURS
from pytest_orch.reports.view import critical_path

FORMATS = ("mermaid", "dot", "json")


@dataclass(frozen=True)
class Edge:
    kind: str  # requires | after
    level: str  # task | group | phase
    source: str
    target: str


@dataclass(frozen=True)
class PlanGraph:
    """The selected part of a plan, ready to print."""

    plan: Plan
    selected: tuple[str, ...]  # task ids in plan order
    edges: tuple[Edge, ...]
    critical: tuple[str, ...]
    last: Mapping[str, str]  # task id -> last outcome

    def phases(self) -> list[tuple[str, str, list[tuple[str, str, list[str]]]]]:
        """(phase id, name, [(group key, group name, task ids)]) of the selected tasks, in plan order."""
        wanted = set(self.selected)
        out = []
        for phase in self.plan.phases:
            groups = [(g.id, g.name, [t.id for t in g.tasks if t.id in wanted]) for g in phase.groups]
            groups.append(("checkpoints", "checkpoints", [t.id for t in phase.checkpoints if t.id in wanted]))
            groups = [g for g in groups if g[2]]
            if groups:
                out.append((phase.id, phase.name, groups))
        return out


def plan_graph(plan: Plan, graph: Graph, selected: Collection[str], last: Mapping[str, str] | None = None,
               durations: Mapping[str, float] | None = None) -> PlanGraph:
    wanted = set(selected)
    order = tuple(t for t in plan.tasks if t in wanted)
    edges: list[Edge] = []
    present_groups = {(plan.tasks[t].phase, plan.tasks[t].group) for t in order}
    present_phases = {p for p, _ in present_groups}
    for task_id in order:
        task = plan.tasks[task_id]
        edges += [Edge("requires", "task", dep, task_id) for dep in task.depends_on if dep in wanted]
        if not task.is_checkpoint:
            group = plan.group(task.phase, task.group)
            if group.execution == "sequential":
                edges += [Edge("after", "task", p, task_id) for p in sorted(graph.after.get(task_id, ()))
                          if p in wanted]
    for phase in plan.phases:
        if phase.id not in present_phases:
            continue
        edges += [Edge("requires", "phase", dep, phase.id) for dep in phase.depends_on if dep in present_phases]
        for group in phase.groups:
            if (phase.id, group.id) in present_groups:
                edges += [Edge("requires", "group", f"{phase.id}.{dep}", f"{phase.id}.{group.id}")
                          for dep in group.depends_on if (phase.id, dep) in present_groups]
        if (phase.id, "checkpoints") in present_groups:
            # a checkpoint runs after the whole phase has ended: from each of its groups
            edges += [Edge("after", "group", f"{phase.id}.{g.id}", f"{phase.id}.checkpoints")
                      for g in phase.groups if (phase.id, g.id) in present_groups]
    weights = {t: (durations or {}).get(t, 1.0) for t in order}
    return PlanGraph(plan, order, tuple(edges), tuple(critical_path(graph, order, weights)), dict(last or {}))


def _steps(graph: PlanGraph) -> set[tuple[str, str]]:
    return set(zip(graph.critical, graph.critical[1:], strict=False))


# -- Mermaid ----------------------------------------------------------------------------------------
def _mermaid_label(text: str) -> str:
    """Mermaid's entity codes for the characters that end or confuse a quoted label."""
    out = text
    for char, code in (("#", "#35;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;")):
        out = out.replace(char, code)
    return "".join(c if c.isprintable() else " " for c in out)


def to_mermaid(graph: PlanGraph) -> str:
    ids = {t: f"t{i}" for i, t in enumerate(graph.selected)}
    group_ids: dict[str, str] = {}
    phase_ids: dict[str, str] = {}
    lines = ["flowchart LR"]
    for p_index, (phase_id, phase_name, groups) in enumerate(graph.phases()):
        phase_ids[phase_id] = f"p{p_index}"
        lines.append(f'  subgraph p{p_index}["{_mermaid_label(f"phase {phase_id}: {phase_name}")}"]')
        lines.append("    direction TB")
        for g_index, (group_id, group_name, tasks) in enumerate(groups):
            key = f"p{p_index}g{g_index}"
            group_ids[f"{phase_id}.{group_id}"] = key
            lines.append(f'    subgraph {key}["{_mermaid_label(f"group {group_id}: {group_name}")}"]')
            for task_id in tasks:
                task = graph.plan.tasks[task_id]
                text = task_id if task.name == task_id else f"{task_id} {task.name}"
                lines.append(f'      {ids[task_id]}["{_mermaid_label(text)}"]')
            lines.append("    end")
        lines.append("  end")
    links: list[str] = []
    crit_links: list[int] = []
    steps = _steps(graph)
    for edge in graph.edges:
        table = {"task": ids, "group": group_ids, "phase": phase_ids}[edge.level]
        arrow = "-.->" if edge.kind == "after" else "-->"
        if (edge.source, edge.target) in steps and edge.level == "task":
            crit_links.append(len(links))
            steps.discard((edge.source, edge.target))
        links.append(f"  {table[edge.source]} {arrow} {table[edge.target]}")
    for source, target in sorted(steps):  # path steps implied by group or phase order
        crit_links.append(len(links))
        links.append(f"  {ids[source]} ==> {ids[target]}")
    lines += links
    for outcome, colour in COLOURS.items():
        lines.append(f"  classDef {outcome} fill:{colour},color:#fff")
    lines.append("  classDef critical stroke:#111,stroke-width:3px")
    for outcome in COLOURS:
        members = [ids[t] for t in graph.selected if graph.last.get(t) == outcome]
        if members:
            lines.append(f"  class {','.join(members)} {outcome}")
    if graph.critical:
        lines.append(f"  class {','.join(ids[t] for t in graph.critical)} critical")
    if crit_links:
        lines.append(f"  linkStyle {','.join(map(str, crit_links))} stroke:#d1453b,stroke-width:3px")
    return "\n".join(lines) + "\n"


# -- Graphviz DOT ------------------------------------------------------------------------------------
def _dot_str(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(c if c.isprintable() else " " for c in escaped) + '"'


def to_dot(graph: PlanGraph) -> str:
    lines = ["digraph plan {", "  rankdir=LR;", "  compound=true;",
             '  node [shape=box, style="rounded,filled", fillcolor=white, fontname="sans-serif"];']
    first: dict[str, str] = {}  # a cluster's first task: an edge between clusters needs real nodes
    for phase_id, phase_name, groups in graph.phases():
        lines.append(f"  subgraph {_dot_str('cluster_p_' + phase_id)} {{")
        lines.append(f"    label={_dot_str(f'phase {phase_id}: {phase_name}')};")
        first[f"p:{phase_id}"] = groups[0][2][0]
        for group_id, group_name, tasks in groups:
            key = f"{phase_id}.{group_id}"
            first[f"g:{key}"] = tasks[0]
            lines.append(f"    subgraph {_dot_str('cluster_g_' + key)} {{")
            lines.append(f"      label={_dot_str(f'group {group_id}: {group_name}')};")
            for task_id in tasks:
                task = graph.plan.tasks[task_id]
                attrs = [f"label={_dot_str(task_id if task.name == task_id else f'{task_id} {task.name}')}"]
                outcome = graph.last.get(task_id)
                if outcome in COLOURS:
                    attrs += [f'fillcolor="{COLOURS[outcome]}"', 'fontcolor="white"']
                if task_id in graph.critical:
                    attrs.append("penwidth=3")
                lines.append(f"      {_dot_str(task_id)} [{', '.join(attrs)}];")
            lines.append("    }")
        lines.append("  }")
    steps = _steps(graph)
    for edge in graph.edges:
        attrs = ['style="dashed"'] if edge.kind == "after" else []
        if edge.level == "task":
            source, target = edge.source, edge.target
            if (source, target) in steps:
                attrs += ['color="#d1453b"', "penwidth=3"]
                steps.discard((source, target))
        else:
            prefix = "g:" if edge.level == "group" else "p:"
            cluster = "cluster_g_" if edge.level == "group" else "cluster_p_"
            source, target = first[prefix + edge.source], first[prefix + edge.target]
            attrs += [f"ltail={_dot_str(cluster + edge.source)}", f"lhead={_dot_str(cluster + edge.target)}"]
        lines.append(f"  {_dot_str(source)} -> {_dot_str(target)}" + (f" [{', '.join(attrs)}];" if attrs else ";"))
    for source, target in sorted(steps):  # path steps implied by group or phase order
        lines.append(f'  {_dot_str(source)} -> {_dot_str(target)} [color="#d1453b", penwidth=3, constraint=false];')
    lines.append("}")
    return "\n".join(lines) + "\n"


# -- JSON -------------------------------------------------------------------------------------------------
def to_json(graph: PlanGraph) -> str:
    phases = []
    for phase_id, phase_name, groups in graph.phases():
        phases.append({"id": phase_id, "name": phase_name,
                       "depends_on": list(graph.plan.phase(phase_id).depends_on),
                       "groups": [{"id": g, "name": n, "tasks": tasks} for g, n, tasks in groups]})
    tasks = []
    for task_id in graph.selected:
        task = graph.plan.tasks[task_id]
        tasks.append({"id": task_id, "name": task.name, "phase": task.phase, "group": task.group,
                      "type": task.type, "tags": list(task.tags), "critical": task.critical,
                      "depends_on": list(task.depends_on), "last_outcome": graph.last.get(task_id)})
    document = {
        "schema": 1, "plan": graph.plan.name, "phases": phases, "tasks": tasks,
        "edges": [{"kind": e.kind, "level": e.level, "from": e.source, "to": e.target} for e in graph.edges],
        "critical_path": list(graph.critical),
    }
    return json.dumps(document, indent=2) + "\n"


def render(graph: PlanGraph, fmt: str) -> str:
    return {"mermaid": to_mermaid, "dot": to_dot, "json": to_json}[fmt](graph)
