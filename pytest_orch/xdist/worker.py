"""Worker side of the DAG scheduler: the idle placeholder, the dependency manifest, plain tests' needs.

An xdist worker takes the index of its next item before it runs the current one (pytest needs
``nextitem`` to tear fixtures down to the right level), so a worker sent a single item waits
forever. Every worker therefore collects one extra item, the *placeholder*: the controller sends
``[task, placeholder]``, the worker runs the task at once (its next item is known), then holds the
placeholder as its current item while it waits for more work. The worker's run loop steps over
the placeholder without calling any hook (``compat.skip_items_in_worker_loop``), so no other
plugin ever sees it; as the last item it tears the session's fixtures down.

The controller never collects, so it cannot see a plain test's ``@pytest.mark.dependency``.
Each worker resolves those markers the way pytest-dependency does (names per scope) and appends a
second extra item, the *manifest*, whose node id carries the resolved dependencies as JSON. It is
never run; the controller takes both extra ids off the collection it receives
(``take_extra_ids``), so every count and report sees the tasks and tests only.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from pytest_orch import compat
from pytest_orch.collect import SESSION_KEY, TaskItem
from pytest_orch.outcomes import PlainNeeds

PLACEHOLDER_ID = "pytest-orch::idle"
MANIFEST_PREFIX = "pytest-orch::dependencies::"
RESOLVED_KEY = pytest.StashKey[list[str]]()
NEEDS_KEY = pytest.StashKey[PlainNeeds]()


class Placeholder(pytest.Item):
    """Lets a worker start a task without knowing the one after it; never run, never reported."""

    def runtest(self) -> None:  # pragma: no cover - the worker loop never runs it
        pass

    def reportinfo(self):  # type: ignore[override]
        return self.session.path, None, "pytest-orch idle placeholder"

    def finish_session(self, nextitem: pytest.Item | None) -> None:
        """As the last item, tear the session down; report a teardown error, else stay silent."""
        ihook = self.ihook
        call = pytest.CallInfo.from_call(lambda: compat.teardown_to(self, nextitem), when="teardown")
        if call.excinfo is None:
            return
        # built directly: other plugins' makereport hooks expect state only real items carry
        report = pytest.TestReport.from_item_and_call(self, call)
        ihook.pytest_runtest_logstart(nodeid=self.nodeid, location=self.location)
        ihook.pytest_runtest_logreport(report=report)
        ihook.pytest_runtest_logfinish(nodeid=self.nodeid, location=self.location)


class Manifest(Placeholder):
    """Carries the dependency manifest in its node id; the controller never sends it."""


def take_extra_ids(ids: list[str]) -> tuple[int | None, dict[str, dict[str, list[str]]]]:
    """Remove the placeholder and the manifest from a worker's collection, in place.

    Returns the placeholder's index on that worker (None when the worker has none) and the manifest:
    {nodeid: {"nodes": [nodeid...], "tasks": [task id...], "names": [...]}}.
    """
    manifest: dict[str, dict[str, list[str]]] = {}
    placeholder = None
    while ids and (ids[-1] == PLACEHOLDER_ID or ids[-1].startswith(MANIFEST_PREFIX)):
        last = ids.pop()
        if last == PLACEHOLDER_ID:
            placeholder = len(ids)
        else:
            manifest = json.loads(last[len(MANIFEST_PREFIX):])
    return placeholder, manifest


def needs_from(entry: dict[str, list[str]]) -> PlainNeeds:
    return PlainNeeds(tasks=tuple(entry.get("tasks", ())), nodes=tuple(entry.get("nodes", ())))


def needs_of(item: pytest.Item) -> PlainNeeds | None:
    """What a plain test marked with pytest-dependency waits for (see ``resolve_dependencies``)."""
    return item.stash.get(NEEDS_KEY, None)


# -- resolving pytest-dependency names, as pytest_dependency.DependencyManager does -------------
def _default_name(nodeid: str, scope: str) -> str | None:
    nodeid = nodeid.replace("::()::", "::")
    if scope in ("session", "package"):
        return nodeid
    parts = nodeid.split("::", 2 if scope == "class" else 1)
    return parts[-1] if len(parts) == (3 if scope == "class" else 2) else None


def resolve_dependencies(items: list[pytest.Item], task_ids: set[str]) -> dict[str, dict[str, list[str]]]:
    """For each item marked ``dependency(depends=...)``, the node ids (or plan task ids) it needs.

    A name that is a plan task id means that task, whatever the scope. Unknown names are left
    out: pytest-dependency reports them as it always does. Each such item's needs are stashed on
    it too (``needs_of``), for the in-process coordinator.
    """
    depending = [item for item in items if not isinstance(item, TaskItem) and _depends_on_something(item)]
    if not depending:
        return {}  # a task's edges come from the plan's graph: nothing to resolve (the usual plan session)
    scopes = compat.dependency_scopes()
    automark = bool(items) and items[0].config.getini("automark_dependency")
    names: dict[tuple[str, int, str], str] = {}
    task_nodes: dict[str, str] = {}
    for item in items:
        if isinstance(item, TaskItem):
            task_nodes[item.task.id] = item.nodeid
        marker = item.get_closest_marker("dependency")
        if marker is None and not automark:
            continue
        given = marker.kwargs.get("name") if marker is not None else None
        for scope, cls in scopes.items():
            node = item.getparent(cls)
            if node is None:
                continue
            name = given or _default_name(item.nodeid, scope)
            if name:
                names[(scope, id(node), name)] = item.nodeid
    task_of_node = {nodeid: task_id for task_id, nodeid in task_nodes.items()}
    manifest: dict[str, dict[str, list[str]]] = {}
    for item in depending:
        marker = item.get_closest_marker("dependency")
        depends = list(marker.kwargs.get("depends") or [])
        scope = marker.kwargs.get("scope", "module")
        node = item.getparent(scopes[scope]) if scope in scopes else None
        entry: dict[str, list[str]] = {"nodes": [], "tasks": [], "names": []}
        for name in depends:
            target = names.get((scope, id(node), name)) if node is not None else None
            if target is None and name in task_ids:
                target = task_nodes.get(name)
                if target is None:
                    entry["tasks"].append(name)  # a task not in this session: its history decides
                    entry["names"].append(name)
                    continue
            if target is not None and target != item.nodeid:
                task_of_target = task_of_node.get(target)
                if task_of_target is not None:
                    entry["tasks"].append(task_of_target)
                entry["nodes"].append(target)
                entry["names"].append(name)
        if entry["nodes"] or entry["tasks"]:
            manifest[item.nodeid] = entry
            item.stash[RESOLVED_KEY] = entry["names"]
            item.stash[NEEDS_KEY] = PlainNeeds(
                tasks=tuple(entry["tasks"]),
                nodes=tuple(n for n in entry["nodes"] if n not in task_of_node))
    return manifest


def _depends_on_something(item: pytest.Item) -> bool:
    marker = item.get_closest_marker("dependency")
    return marker is not None and bool(marker.kwargs.get("depends"))


# -- worker hooks (registered on workers only) ----------------------------------------------------
@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> Any:
    """After every other plugin has filtered and ordered, add the placeholder and the manifest."""
    result = yield
    orch = config.stash.get(SESSION_KEY, None)
    if orch is None or not orch.ok or config.option.collectonly:
        return result
    manifest = resolve_dependencies(items, set(orch.plan.tasks))
    items.append(Placeholder.from_parent(session, name="idle", nodeid=PLACEHOLDER_ID))
    items.append(Manifest.from_parent(session, name="dependencies",
                                      nodeid=MANIFEST_PREFIX + json.dumps(manifest, sort_keys=True)))
    return result


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    """Before xdist's loop starts, make it step over the placeholder and the manifest unseen."""
    compat.skip_items_in_worker_loop(session.config, lambda item: isinstance(item, Placeholder),
                                     lambda item, nextitem: item.finish_session(nextitem))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """The controller sent this item only after its dependencies passed, on whichever worker.

    pytest-dependency only knows results from this process, in the marker's scope; record the
    resolved dependencies there as passed so it does not skip the item.
    """
    if isinstance(item, TaskItem):
        orch = item.config.stash[SESSION_KEY]
        compat.mark_dependencies_done(item, sorted(orch.graph.direct.get(item.task.id, ())))  # as its marker lists
        return
    mark_resolved_done(item)


def mark_resolved_done(item: pytest.Item) -> None:
    """Tell pytest-dependency that a plain test's resolved dependencies passed, in its scope."""
    names = item.stash.get(RESOLVED_KEY, None)
    if not names:
        return
    marker = item.get_closest_marker("dependency")
    scope = marker.kwargs.get("scope", "module") if marker is not None else "module"
    for scoped in {scope, "session"}:
        compat.mark_dependencies_done(item, names, scope=scoped)
