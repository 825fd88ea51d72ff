"""DagScheduling against fake worker nodes, and the pure ready-set logic of sched_core."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest

from pytest_orch.collect import SESSION_KEY
from pytest_orch.dag import longest_paths as remaining_paths
from pytest_orch.ratelimit import TokenBucket
from pytest_orch.xdist import scheduler
from pytest_orch.xdist import worker as placeholder
from pytest_orch.xdist.ready import ReadySet
from pytest_orch.xdist.scheduler import CONTROLLER_KEY, DagScheduling


class MockNode:
    """Records what the scheduler sends, like xdist's own tests' MockNode."""

    def __init__(self, name: str = "gw0", config=None) -> None:
        self.config = config
        self.sent: list[int] = []
        self.gateway = SimpleNamespace(id=name)
        self._shutdown = False
        self.events: list = []

    @property
    def shutting_down(self) -> bool:
        return self._shutdown

    def send_runtest_some(self, indices: list[int]) -> None:
        self.sent.extend(indices)

    def shutdown(self) -> None:
        self._shutdown = True

    def putevent(self, event) -> None:
        self.events.append(event)


class Harness:
    """A configured session with a plan, a scheduler and fake nodes."""

    def __init__(self, pytester: pytest.Pytester, plan: str, plain: dict | None = None, workers: int = 2) -> None:
        pytester.makefile(".yaml", **{"phases/p1": plan})
        self.config = pytester.parseconfigure("-p", "no:cacheprovider", "-p", "no:terminal",
                                             "--tx", f"{workers}*popen")
        self.runtime = self.config.stash[SESSION_KEY]
        self.controller = self.config.stash[CONTROLLER_KEY]
        self.sched = DagScheduling(self.config, self.controller)
        self.ids = list(self.runtime.nodeids) + list(plain or {}) + [
            placeholder.PLACEHOLDER_ID, placeholder.MANIFEST_PREFIX + json.dumps(plain or {})]
        self.task_node = {t: n for n, t in self.runtime.nodeids.items()}

    def add(self, name: str = "gw0") -> MockNode:
        node = MockNode(name, self.config)
        self.sched.add_node(node)
        ids = list(self.ids)  # what a worker sends; the controller's hook takes the extras off
        scheduler.pytest_xdist_node_collection_finished(node=node, ids=ids)
        self.sched.add_node_collection(node, ids)
        self.sched.schedule()
        return node

    def running(self, node: MockNode) -> list[str]:
        """Task ids (or node ids) sent to ``node`` and not completed, placeholder left out."""
        return [self.runtime.task_id_of(n) or n for n in self.sched.node2pending[node]]

    def finish(self, node: MockNode, key: str, outcome: str = "passed") -> None:
        """The worker's reports for one item, then its protocol-complete event."""
        nodeid = self.task_node.get(key, key)
        for when in ("setup", "call", "teardown"):
            out = outcome if when == "call" else "passed"
            report = pytest.TestReport(nodeid=nodeid, location=(nodeid, 0, key), keywords={},
                                       outcome=out, longrepr="boom" if out == "failed" else None,
                                       when=when, start=time.time(), stop=time.time())
            report.worker_id = node.gateway.id
            self.config.hook.pytest_runtest_logreport(report=report)
        self.sched.mark_test_complete(node, self.ids.index(nodeid), 0.01)

    def outcome(self, task_id: str) -> str | None:
        result = self.controller.collector.results.get(self.task_node[task_id])
        return result.status.value if result else None


DIAMOND = """
phase: 1
groups:
  - id: g
    tasks:
      - {id: a, type: command, run: "true"}
      - {id: b, type: command, run: "true", depends_on: [a]}
      - {id: c, type: command, run: "true", depends_on: [a]}
      - {id: d, type: command, run: "true", depends_on: [b, c]}
"""


def test_one_ready_task_is_sent_with_the_placeholder(pytester: pytest.Pytester) -> None:
    h = Harness(pytester, DIAMOND)
    node = h.add()
    assert node.sent == [h.ids.index(h.task_node["a"]), h.ids.index(placeholder.PLACEHOLDER_ID)]
    assert h.running(node) == ["a"]
    assert not h.sched.tests_finished


def test_dependents_are_released_only_when_prerequisites_end(pytester: pytest.Pytester) -> None:
    h = Harness(pytester, DIAMOND)
    n0, n1 = h.add("gw0"), h.add("gw1")
    assert h.running(n0) == ["a"] and h.running(n1) == []
    h.finish(n0, "a")
    assert sorted(h.running(n0) + h.running(n1)) == ["b", "c"]
    first = n0 if h.running(n0) == ["b"] else n1
    h.finish(first, "b")
    assert "d" not in h.running(n0) + h.running(n1)
    other = n1 if first is n0 else n0
    h.finish(other, "c")
    assert "d" in h.running(n0) + h.running(n1)
    h.finish(n0 if h.running(n0) else n1, "d")
    assert h.sched.tests_finished


def test_placeholder_completion_is_ignored(pytester: pytest.Pytester) -> None:
    h = Harness(pytester, DIAMOND)
    node = h.add()
    h.sched.mark_test_complete(node, h.ids.index(placeholder.PLACEHOLDER_ID), 0.0)
    assert h.running(node) == ["a"]


def test_skip_dependents_are_reported_without_dispatch(pytester: pytest.Pytester) -> None:
    h = Harness(pytester, DIAMOND)
    node = h.add()
    h.finish(node, "a", "failed")
    assert h.running(node) == []
    assert [h.outcome(t) for t in "abcd"] == ["failed", "skipped", "skipped", "skipped"]
    assert "dependency a failed" in h.controller.collector.results[h.task_node["b"]].message
    assert h.sched.tests_finished
    assert len(node.sent) == 2  # only a and the placeholder


ABORT = """
phase: 1
groups:
  - id: g
    tasks:
      - {id: a, type: command, run: "true", on_failure: abort}
      - {id: a2, type: command, run: "true", depends_on: [a]}
      - {id: b, type: command, run: "true"}
      - {id: c, type: command, run: "true"}
      - {id: d, type: command, run: "true", depends_on: [b]}
"""


def test_abort_stops_handing_out_work(pytester: pytest.Pytester) -> None:
    h = Harness(pytester, ABORT)
    node = h.add()
    assert h.running(node)[0] == "a"  # longest remaining path, then file order
    h.finish(node, "a", "failed")
    sent_before = list(node.sent)
    while h.running(node):  # only what the worker already holds may still run
        h.finish(node, h.running(node)[0])
    assert node.sent == sent_before
    assert h.sched.tests_finished
    skipped = [t for t in ("a2", "b", "c", "d") if h.outcome(t) == "skipped"]
    assert {"a2", "b", "d"} <= set(skipped)
    for t in skipped:
        assert "on_failure is abort" in h.controller.collector.results[h.task_node[t]].message


LIMITS = """
phase: 1
pools: {llm: 1}
groups:
  - id: g
    max_parallel: 2
    tasks:
      - {id: a, type: command, run: "true"}
      - {id: b, type: command, run: "true"}
      - {id: c, type: command, run: "true"}
  - id: h
    tasks:
      - {id: p1, type: command, run: "true", pool: llm}
      - {id: p2, type: command, run: "true", pool: llm}
"""


def test_max_parallel_and_pools_are_never_exceeded(pytester: pytest.Pytester) -> None:
    h = Harness(pytester, LIMITS)
    nodes = [h.add(f"gw{i}") for i in range(5)]
    running = [k for n in nodes for k in h.running(n)]
    assert sum(k in "abc" for k in running) == 2
    assert sum(k in ("p1", "p2") for k in running) == 1
    for _ in range(10):
        busy = [n for n in nodes if h.running(n)]
        if not busy:
            break
        h.finish(busy[0], h.running(busy[0])[0])
        running = [k for n in nodes for k in h.running(n)]
        assert sum(k in "abc" for k in running) <= 2
        assert sum(k in ("p1", "p2") for k in running) <= 1
    assert h.sched.tests_finished


def test_worker_crash_fails_its_task_and_requeues_the_rest(pytester: pytest.Pytester) -> None:
    h = Harness(pytester, DIAMOND)
    n0 = h.add("gw0")
    crashed = h.sched.remove_node(n0)
    assert crashed == h.task_node["a"]
    report = pytest.TestReport(nodeid=crashed, location=(crashed, None, crashed), keywords={},
                               outcome="failed", longrepr="worker 'gw0' crashed", when="???")
    report.node = SimpleNamespace(workerinput={"workerid": "gw0"}, config=h.config,
                                  gateway=SimpleNamespace(id="gw0"), _workerinfocache="[gw0]")
    h.config.hook.pytest_runtest_logreport(report=report)
    assert h.outcome("a") == "failed"
    assert h.outcome("b") == "skipped"
    assert h.sched.tests_finished


def test_plain_test_waits_for_the_task_it_depends_on(pytester: pytest.Pytester) -> None:
    plain = {"test_x.py::test_after_d": {"nodes": [], "tasks": [], "names": ["d"]}}
    h = Harness(pytester, DIAMOND, plain)
    # the manifest names the dependency by the task's node id
    plain["test_x.py::test_after_d"]["nodes"] = [h.task_node["d"]]
    h.ids[-1] = placeholder.MANIFEST_PREFIX + json.dumps(plain)
    node = h.add()
    for _key in ["a", "b", "c"]:
        assert "test_x.py::test_after_d" not in h.running(node)
        h.finish(node, h.running(node)[0])
    assert h.running(node) == ["d"]
    h.finish(node, "d")
    assert h.running(node) == ["test_x.py::test_after_d"]


# -- sched_core ----------------------------------------------------------------------------------
def test_longest_remaining_path_goes_first() -> None:
    pre = {"long1": set(), "long2": {"long1"}, "long3": {"long2"}, "short": set()}
    ready = ReadySet(pre, remaining_paths(pre, {}))
    for key in ready.initially_due():
        ready.push(key)
    assert ready.pop() == "long1"
    assert ready.pop() == "short"
    assert ready.pop() is None


def test_rate_limit_holds_back_until_a_token_is_due() -> None:
    now = [0.0]
    bucket = TokenBucket(1, 1.0, clock=lambda: now[0])
    pre = {"a": set(), "b": set()}
    ready = ReadySet(pre, {}, rates={"a": ("api",), "b": ("api",)}, buckets={"api": bucket})
    for key in ready.initially_due():
        ready.push(key)
    assert ready.pop() == "a"
    assert ready.pop() is None
    assert ready.token_wait() == pytest.approx(1.0)
    now[0] = 1.0
    assert ready.pop() == "b"



CHAINS_AND_LEAVES = """
phase: 1
groups:
  - id: g
    tasks:
      - {id: p1, type: command, run: "true"}
      - {id: q1, type: command, run: "true", depends_on: [p1]}
      - {id: p2, type: command, run: "true"}
      - {id: q2, type: command, run: "true", depends_on: [p2]}
      - {id: p3, type: command, run: "true"}
      - {id: q3, type: command, run: "true", depends_on: [p3]}
"""

LEAVES = """
phase: 1
groups:
  - id: g
    tasks:
      - {id: l1, type: command, run: "true"}
      - {id: l2, type: command, run: "true"}
      - {id: l3, type: command, run: "true"}
"""


def test_a_task_with_dependents_is_never_queued_behind_a_running_one(pytester: pytest.Pytester) -> None:
    # queued, p2 would wait for p1's end even if another worker came free first, and q2 with it
    h = Harness(pytester, CHAINS_AND_LEAVES, workers=1)
    node = h.add()
    assert h.running(node) == ["p1"]  # p2 and p3 are ready too, but q2 and q3 wait on them
    h.finish(node, "p1")
    assert h.running(node) == ["p2", "q1"]  # q1 has no dependents: it may wait behind p2


def test_a_task_nothing_depends_on_is_queued_to_save_a_round_trip(pytester: pytest.Pytester) -> None:
    h = Harness(pytester, LEAVES, workers=1)
    node = h.add()
    assert h.running(node) == ["l1", "l3"]  # the lowest-priority ready task waits behind l1
    h.finish(node, "l1")
    assert h.running(node) == ["l3"]  # one ready task, no idle worker: it waits on the controller
