"""How xdist workers start: all at once, each with the plan the controller has already validated."""

from __future__ import annotations

import json
import pickle
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from pytest_orch.plan.validate import load_plan_and_graph
from pytest_orch.registry import HandlerTable
from pytest_orch.xdist import spawn as xdist_spawn

pytest.importorskip("xdist")

PLAN = """
phase: 1
groups:
  - id: g
    tasks:
      - {id: a, type: command, run: "true"}
      - {id: b, type: command, run: "true", depends_on: [a]}
      - {id: c, type: command, run: "true", depends_on: [a]}
"""

# records, on each worker, whether the plan's validation (and its YAML parser) was ever imported
WORKER_PROBE = """
import json, os, sys

def pytest_sessionfinish(session):
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        seen = {"validate": "pytest_orch.plan.validate" in sys.modules, "yaml": "yaml" in sys.modules}
        with open(f"probe-{worker}.json", "w") as f:
            json.dump(seen, f)

def pytest_xdist_newgateway(gateway):
    with open("gateways.txt", "a") as f:
        f.write(gateway.id + "\\n")
"""


def test_the_plan_survives_pickling(tmp_path: Path) -> None:
    from pytest_orch.handlers.command import CommandHandler

    (tmp_path / "phases").mkdir()
    (tmp_path / "phases" / "p1.yaml").write_text(PLAN)
    handlers = HandlerTable()
    handlers.add("command", CommandHandler, "test")
    plan, graph = load_plan_and_graph(tmp_path / "phases", tmp_path, handlers)
    copy, graph_copy = pickle.loads(pickle.dumps((plan, graph)))
    assert copy == plan
    assert list(copy.tasks) == ["a", "b", "c"]  # the derived index is rebuilt
    assert graph_copy.prerequisites("b") == graph.prerequisites("b")


def test_workers_take_the_controllers_plan_instead_of_parsing_it(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", **{"phases/p1": PLAN})
    pytester.makeconftest(WORKER_PROBE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--force", "-n", "3", "--orch-parallel=always")
    result.assert_outcomes(passed=3)
    probes = sorted(pytester.path.glob("probe-gw*.json"))
    assert len(probes) == 3
    for probe in probes:
        assert json.loads(probe.read_text()) == {"validate": False, "yaml": False}, probe.name
    assert sorted((pytester.path / "gateways.txt").read_text().split()) == ["gw0", "gw1", "gw2"]


def test_a_bad_plan_under_n_exits_as_it_does_without(pytester: pytest.Pytester) -> None:
    # plain xdist turns a collection error into exit 1; the plan contract says 2, with or without -n
    pytester.makefile(".yaml", **{"phases/p1": PLAN.replace("depends_on: [a]}", "depends_on: [zz]}", 1)})
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "--orch-parallel=always")
    assert result.ret == 2
    result.stdout.fnmatch_lines(["*phases/p1.yaml:6: task 'b' depends on unknown task 'zz'*"])
    assert "Traceback" not in result.stdout.str()


class FakeGroup:
    """An execnet group whose gateways are plain objects; one spec id can be made to fail."""

    def __init__(self, failing: str | None = None) -> None:
        self.failing = failing
        self.made: list[tuple[str, str]] = []  # (spec id, thread name)

    def makegateway(self, spec):
        self.made.append((spec.id, threading.current_thread().name))
        if spec.id == self.failing:
            raise OSError("cannot start python")
        return SimpleNamespace(id=spec.id)


def fake_config(group: FakeGroup) -> SimpleNamespace:
    dsession = SimpleNamespace(nodemanager=SimpleNamespace(group=group))
    return SimpleNamespace(pluginmanager=SimpleNamespace(getplugin=lambda name: dsession), stash=pytest.Stash())


def specs(*ids: str) -> list[SimpleNamespace]:
    return [SimpleNamespace(id=i, popen=True, via=None) for i in ids]


def test_gateways_are_made_on_threads_and_handed_out_by_id() -> None:
    group = FakeGroup()
    wanted = specs("gw0", "gw1", "gw2")
    xdist_spawn.pytest_xdist_setupnodes(fake_config(group), wanted)
    assert sorted(i for i, _ in group.made) == ["gw0", "gw1", "gw2"]
    assert all(thread.startswith("orch-spawn") for _, thread in group.made)
    handed = [group.makegateway(spec).id for spec in wanted]  # what xdist's loop then asks for
    assert handed == ["gw0", "gw1", "gw2"]
    assert len(group.made) == 3  # nothing was started twice
    assert "makegateway" not in vars(group)  # the group is xdist's own again


def test_a_gateway_that_failed_on_a_thread_is_made_again_by_xdist() -> None:
    group = FakeGroup(failing="gw1")
    wanted = specs("gw0", "gw1")
    xdist_spawn.pytest_xdist_setupnodes(fake_config(group), wanted)
    assert group.makegateway(wanted[0]).id == "gw0"
    with pytest.raises(OSError, match="cannot start python"):  # xdist reports it as it would
        group.makegateway(wanted[1])
    assert [i for i, _ in group.made].count("gw1") == 2


def test_one_worker_is_left_to_xdist() -> None:
    group = FakeGroup()
    xdist_spawn.pytest_xdist_setupnodes(fake_config(group), specs("gw0"))
    assert group.made == [] and "makegateway" not in vars(group)
