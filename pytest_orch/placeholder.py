"""Worker side of the DAG scheduler: the idle placeholder item and the dependency manifest.

An xdist worker takes the index of its next item before it runs the current one (pytest needs
``nextitem`` to tear fixtures down to the right level), so a worker sent a single item waits
forever. Every worker therefore collects one extra item, the *placeholder*: the controller sends
``[task, placeholder]``, the worker runs the task at once (its next item is known), then holds the
placeholder as its current item while it waits for more work. When the next batch arrives the
placeholder "runs" (a no-op without reports) and the new task starts. At shutdown the placeholder
is the last item: it tears the session's fixtures down and reports an error there, if any.

The controller never collects, so it cannot see a plain test's ``@pytest.mark.dependency``.
Each worker resolves those markers the way pytest-dependency does (names per scope) and appends a
second extra item, the *manifest*, whose node id carries the resolved dependencies as JSON. It is
never run; it reaches the controller in the ordinary ``collectionfinish`` list of node ids.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from pytest_orch.collect import RUNTIME_KEY, TaskItem

PLACEHOLDER_ID = "pytest-orch::idle"
MANIFEST_PREFIX = "pytest-orch::dependencies::"
RESOLVED_KEY = pytest.StashKey[list[str]]()


class Placeholder(pytest.Item):
    """Lets a worker start a task without knowing the one after it; never reported."""

    def runtest(self) -> None:  # pragma: no cover - its protocol never calls runtest
        pass

    def reportinfo(self):  # type: ignore[override]
        return self.session.path, None, "pytest-orch idle placeholder"

    def finish_session(self, nextitem: pytest.Item | None) -> None:
        """As the last item, tear the session down; report a teardown error, else stay silent."""
        ihook = self.ihook
        # what the runner's pytest_runtest_teardown does, without the per-item hooks of plugins
        # (logging, capture) that expect a setup this item never had
        call = pytest.CallInfo.from_call(
            lambda: self.session._setupstate.teardown_exact(nextitem), when="teardown")
        if call.excinfo is None:
            return
        # built directly: other plugins' makereport hooks expect state only real items carry
        report = pytest.TestReport.from_item_and_call(self, call)
        ihook.pytest_runtest_logstart(nodeid=self.nodeid, location=self.location)
        ihook.pytest_runtest_logreport(report=report)
        ihook.pytest_runtest_logfinish(nodeid=self.nodeid, location=self.location)


class Manifest(Placeholder):
    """Carries the dependency manifest in its node id; the controller never sends it."""


def is_placeholder_id(nodeid: str) -> bool:
    return nodeid == PLACEHOLDER_ID or nodeid.startswith(MANIFEST_PREFIX)


def manifest_of(ids: list[str]) -> dict[str, dict[str, list[str]]]:
    """The dependencies a worker sent: {nodeid: {"nodes": [nodeid...], "tasks": [task id...]}}."""
    for nodeid in ids:
        if nodeid.startswith(MANIFEST_PREFIX):
            return json.loads(nodeid[len(MANIFEST_PREFIX):])
    return {}


# -- resolving pytest-dependency names, as pytest_dependency.DependencyManager does -------------
def _scope_classes() -> dict[str, type]:
    try:
        from pytest_dependency import DependencyManager
    except ImportError:  # pragma: no cover - a declared dependency
        return {}
    return dict(DependencyManager.ScopeCls)


def _default_name(nodeid: str, scope: str) -> str | None:
    nodeid = nodeid.replace("::()::", "::")
    if scope in ("session", "package"):
        return nodeid
    parts = nodeid.split("::", 2 if scope == "class" else 1)
    return parts[-1] if len(parts) == (3 if scope == "class" else 2) else None


def resolve_dependencies(items: list[pytest.Item], task_ids: set[str]) -> dict[str, dict[str, list[str]]]:
    """For each item marked ``dependency(depends=...)``, the node ids (or plan task ids) it needs.

    A name that is a plan task id means that task, whatever the scope (as in-process runs do).
    Unknown names are left out: pytest-dependency on the worker reports them as it always does.
    """
    scopes = _scope_classes()
    automark = bool(items) and items[0].config.getini("automark_dependency") if scopes else False
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
    manifest: dict[str, dict[str, list[str]]] = {}
    for item in items:
        if isinstance(item, TaskItem):
            continue  # a task's edges come from the plan's graph
        marker = item.get_closest_marker("dependency")
        depends = list(marker.kwargs.get("depends") or []) if marker is not None else []
        if not depends:
            continue
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
                entry["nodes"].append(target)
                entry["names"].append(name)
        if entry["nodes"] or entry["tasks"]:
            manifest[item.nodeid] = entry
            item.stash[RESOLVED_KEY] = entry["names"]
    return manifest


# -- worker hooks (registered by xdist_sched on workers only) -------------------------------------
@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> Any:
    """After every other plugin has filtered and ordered, add the placeholder and the manifest."""
    result = yield
    runtime = config.stash.get(RUNTIME_KEY, None)
    if runtime is None or not runtime.ok or config.option.collectonly:
        return result
    manifest = resolve_dependencies(items, set(runtime.plan.tasks))
    items.append(Placeholder.from_parent(session, name="idle", nodeid=PLACEHOLDER_ID))
    items.append(Manifest.from_parent(session, name="dependencies",
                                      nodeid=MANIFEST_PREFIX + json.dumps(manifest, sort_keys=True)))
    return result


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    if isinstance(item, Placeholder):
        if nextitem is None:
            item.finish_session(nextitem)
        return True
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """The controller sent this item only after its dependencies passed, on whichever worker.

    pytest-dependency only knows results from this process, in the marker's scope; record the
    resolved dependencies there as passed so it does not skip the item.
    """
    names = item.stash.get(RESOLVED_KEY, None)
    if not names:
        return
    from pytest_orch.policy import mark_dependencies_done

    marker = item.get_closest_marker("dependency")
    scope = marker.kwargs.get("scope", "module") if marker is not None else "module"
    for scoped in {scope, "session"}:
        mark_dependencies_done(item, names, scope=scoped)
