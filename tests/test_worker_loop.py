"""The worker's idle placeholder is invisible to every other plugin; counts are the tasks' own."""

import json

import pytest

pytest.importorskip("xdist")

RECORDER = """
import json
import os

import pytest


def _record(config, hook, nodeid):
    if hasattr(config, "workerinput"):
        with open(os.path.join(str(config.rootpath), "seen.jsonl"), "a") as out:
            out.write(json.dumps([hook, nodeid]) + "\\n")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _record(item.config, "protocol", item.nodeid)
    yield


def pytest_runtest_logstart(nodeid, location):
    _record(pytest_runtest_logstart.config, "logstart", nodeid)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    _record(item.config, "makereport", item.nodeid)
    yield


def pytest_configure(config):
    pytest_runtest_logstart.config = config


def pytest_sessionfinish(session):
    if not hasattr(session.config, "workerinput"):
        with open(os.path.join(str(session.config.rootpath), "collected.txt"), "w") as out:
            out.write(str(session.testscollected))
"""

PLAN = "phase: 1\ngroups:\n  - id: a\n    tasks:\n" + "".join(
    f'      - {{id: "1.{i}", type: command, run: "true"' + (f', depends_on: ["1.{i - 1}"]' if i % 2 else "") + "}\n"
    for i in range(6))


@pytest.mark.parametrize("workers", ["2", "4"])
def test_other_plugins_see_the_tasks_only(pytester, monkeypatch, workers):
    # every task on a worker, none on the controller while the workers start: the worker loop is under test
    monkeypatch.setenv("ORCH_EARLY_START", "0")
    pytester.makeconftest(RECORDER)
    pytester.makefile(".yaml", **{"phases/p1": PLAN})
    result = pytester.runpytest_subprocess("-n", workers, "--orch-parallel=always", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=6)
    seen = [json.loads(line) for line in (pytester.path / "seen.jsonl").read_text().splitlines()]
    tasks = {f"phases/p1.yaml::1::a::1.{i}" for i in range(6)}
    for hook in ("protocol", "logstart", "makereport"):
        assert {nodeid for h, nodeid in seen if h == hook} == tasks, hook
    assert not [nodeid for _, nodeid in seen if "pytest-orch::" in nodeid]
    assert (pytester.path / "collected.txt").read_text() == "6"
