"""Early start under -n: the controller runs tasks while its workers start, then the workers go on.

The workers are held back on purpose in these tests (a conftest that sleeps in a worker's
pytest_configure), and the controller is told they take long to start (ORCH_WORKER_START_SECONDS),
so which process runs what does not depend on how loaded the machine is.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import xmlschema

from conftest import handler_conftest

pytest.importorskip("xdist")

JUNIT_SCHEMA = xmlschema.XMLSchema(str(Path(__file__).parent / "data" / "junit-10.xsd"))

SLOW_WORKERS = '''
import os, time

def pytest_configure(config):
    if hasattr(config, "workerinput"):
        time.sleep(float(os.environ.get("SLOW_WORKER_START", "1.5")))  # the workers come up late
'''

# a shell command that appends its name and the pid of the process that started it to a log
LOGGING = "echo {name} $PPID >> log.txt"


def chain(names: list[str], command: str = "sleep 0.2") -> str:
    lines = ["phase: 1", "groups:", "  - id: g", "    tasks:"]
    for i, name in enumerate(names):
        needs = f", depends_on: [{names[i - 1]}]" if i else ""
        run = LOGGING.format(name=name) + f" && {command}"
        lines.append(f'      - {{id: {name}, type: command, shell: true, run: {json.dumps(run)}{needs}}}')
    return "\n".join(lines) + "\n"


@pytest.fixture(autouse=True)
def workers_take_long_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_WORKER_START_SECONDS", "30")


def independent(**commands: str) -> str:
    """A plan of one group of independent command tasks: id=command."""
    lines = ["phase: 1", "groups:", "  - id: g", "    tasks:"]
    lines += [f"      - {{id: {name}, type: command, run: {json.dumps(run)}}}" for name, run in commands.items()]
    return "\n".join(lines) + "\n"


def run(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, dict]]:
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--orch-parallel=always", *args)
    report = pytester.path / "reports" / "run.json"
    tasks = {t["id"]: t for t in json.loads(report.read_text())["tasks"]} if report.exists() else {}
    return result, tasks


def logged(pytester: pytest.Pytester) -> list[tuple[str, int]]:
    return [(name, int(pid)) for name, pid in
            (line.split() for line in (pytester.path / "log.txt").read_text().splitlines())]


def test_the_controller_starts_the_chain_and_the_workers_finish_it(pytester: pytest.Pytester) -> None:
    names = [f"c{i:02d}" for i in range(20)]  # 4 s of chain against workers that take 1.5 s to start
    pytester.makeconftest(SLOW_WORKERS)
    pytester.makefile(".yaml", **{"phases/p1": chain(names)})
    result, tasks = run(pytester, "-n", "2")
    result.assert_outcomes(passed=20)
    where = [tasks[n]["worker"] for n in names]
    assert where[0] == "controller"  # nothing to wait for: the first task starts before any worker is up
    first_on_worker = next(i for i, w in enumerate(where) if w != "controller")
    assert set(where[first_on_worker:]) <= {"gw0", "gw1"}  # once a worker is up, the controller hands over
    log = logged(pytester)
    assert [name for name, _ in log] == names  # each task once, in the chain's order
    controller_pids = {pid for name, pid in log[:first_on_worker]}
    worker_pids = {pid for name, pid in log[first_on_worker:]}
    assert len(controller_pids) == 1 and not controller_pids & worker_pids
    for before, after in zip(names, names[1:], strict=False):
        assert tasks[after]["started"] >= tasks[before]["finished"]


def test_only_contained_tasks_run_on_the_controller(pytester: pytest.Pytester) -> None:
    """A project handler may take its process down: it waits for a worker, the commands beside it do not."""
    pytester.makeconftest(SLOW_WORKERS + handler_conftest(
        "record", "        open('record.txt', 'w').write(str(os.getpid()))\n        return Outcome('passed')",
        imports="import os"))
    pytester.makefile(".yaml", **{"phases/p1": """
        phase: 1
        groups:
          - id: g
            tasks:
              - {id: mine, type: record}
              - {id: cmd, type: command, run: "true"}
        """})
    result, tasks = run(pytester, "-n", "2")
    result.assert_outcomes(passed=2)
    assert tasks["cmd"]["worker"] == "controller"
    assert tasks["mine"]["worker"] in ("gw0", "gw1")
    assert int((pytester.path / "record.txt").read_text()) != os.getpid()


def test_a_session_with_plain_tests_leaves_everything_to_the_workers(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(SLOW_WORKERS)
    pytester.makefile(".yaml", **{"phases/p1": chain(["a", "b"], command="true")})
    pytester.makepyfile(test_unit="""
        import os, pytest

        @pytest.mark.dependency(depends=["a"], scope="session")
        def test_after_a():
            assert os.environ.get("PYTEST_XDIST_WORKER")

        def test_free():
            assert os.environ.get("PYTEST_XDIST_WORKER")
        """)
    result, tasks = run(pytester, "-n", "2")
    result.assert_outcomes(passed=4)
    # the controller would have to import the test modules to know the session: it leaves it all to workers
    assert {t["worker"] for t in tasks.values()} <= {"gw0", "gw1"}


def test_a_failure_on_the_controller_stops_the_run_under_x(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(SLOW_WORKERS)
    pytester.makefile(".yaml", **{"phases/p1": independent(bad="exit 3", other="true", third="true")})
    result, tasks = run(pytester, "-n", "2", "-x")
    assert result.ret == 1
    assert tasks["bad"]["outcome"] == "failed" and tasks["bad"]["worker"] == "controller"
    assert [t for t in tasks.values() if t["outcome"] == "passed"] == []  # -x: nothing starts after it


def test_without_early_start_every_task_waits_for_a_worker(pytester: pytest.Pytester,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_EARLY_START", "0")
    pytester.makefile(".yaml", **{"phases/p1": chain(["a", "b", "c"], command="true")})
    result, tasks = run(pytester, "-n", "2")
    result.assert_outcomes(passed=3)
    assert {t["worker"] for t in tasks.values()} <= {"gw0", "gw1"}


def test_a_task_known_to_be_long_waits_for_a_worker(pytester: pytest.Pytester,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """While the controller runs a task it hands out no work: a long one would hold the workers back."""
    monkeypatch.setenv("ORCH_WORKER_START_SECONDS", "0.5")  # the workers are expected within 0.5 s
    pytester.makeconftest(SLOW_WORKERS)  # and are late: without the rule build1 would start on the controller
    pytester.makefile(".yaml", **{"phases/p1": independent(build1="sleep 1", build2="sleep 1")})
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)  # durations to go by
    result, tasks = run(pytester, "-n", "2", "--force")
    result.assert_outcomes(passed=2)
    assert tasks["build1"]["worker"] in ("gw0", "gw1") and tasks["build2"]["worker"] in ("gw0", "gw1")


def test_reporters_see_every_task_wherever_it_ran(pytester: pytest.Pytester) -> None:
    names = [f"c{i:02d}" for i in range(12)]
    pytester.makeconftest(SLOW_WORKERS)
    pytester.makefile(".yaml", **{"phases/p1": chain(names, command="sleep 0.3")})
    result, tasks = run(pytester, "-n", "2", "--json-report", "--json-report-file=report.json",
                        "--junitxml=out.xml", "-v")
    result.assert_outcomes(passed=12)
    assert {t["worker"] for t in tasks.values()} >= {"controller"} and len({t["worker"] for t in tasks.values()}) > 1
    for name in names:  # a line per task, from a worker ("[gw0] ... PASSED ... c01") or not ("c00 PASSED")
        assert re.search(rf"(PASSED.*::{name} |::{name} PASSED)", result.stdout.str()), name
    json_report = json.loads((pytester.path / "report.json").read_text())
    seen = {t["nodeid"]: t["outcome"] for t in json_report["tests"]}
    assert seen == {f"phases/p1.yaml::1::g::{n}": "passed" for n in names}
    for path in (pytester.path / "out.xml", pytester.path / "reports" / "junit.xml"):
        JUNIT_SCHEMA.validate(str(path))
        assert path.read_text().count("<testcase ") == 12, path


def test_an_abort_on_the_controller_stops_the_run(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(SLOW_WORKERS)
    plan = independent(stop="false", a="true", b="true", c="true")
    pytester.makefile(".yaml", **{"phases/p1": plan.replace('run: "false"', 'run: "false", on_failure: abort')})
    result, tasks = run(pytester, "-n", "2")
    assert result.ret == 1
    assert tasks["stop"]["outcome"] == "failed" and tasks["stop"]["worker"] == "controller"
    for name in "abc":  # found ready before the failure, never started: not on the controller, not on a worker
        assert tasks[name]["outcome"] == "skipped" and tasks[name]["worker"] is None
        assert "on_failure is abort" in tasks[name]["message"]
