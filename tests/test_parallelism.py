"""-n N is an upper bound: the run starts the workers its estimated schedule can use, or none."""

import json

from pytest_orch.parallelism import UNKNOWN_TASK_SECONDS, choose_workers, estimator


def chain(n):
    return {f"t{i}": [f"t{i - 1}"] if i else [] for i in range(n)}


def wide(n):
    return {f"t{i}": [] for i in range(n)}


def choose(graph, seconds, asked):
    return choose_workers(graph, lambda t: graph[t], lambda t: seconds, asked)


def test_milliseconds_of_work_stay_in_one_process():
    assert choose(wide(60), 0.005, 4).workers == 0


def test_a_chain_gains_nothing_from_workers():
    assert choose(chain(10), 1.0, 4).workers == 0


def test_wide_slow_work_takes_every_worker_asked():
    assert choose(wide(40), 0.5, 4).workers == 4


def test_no_more_workers_than_the_graph_can_use():
    assert choose(wide(2), 5.0, 4).workers == 2


def test_a_task_that_never_ran_is_estimated_by_its_handler_else_as_unknown():
    estimate = estimator({"a": 2.0}, lambda t: 0.01 if t == "b" else None)
    assert (estimate("a"), estimate("b"), estimate("c")) == (2.0, 0.01, UNKNOWN_TASK_SECONDS)


EDITS = "phase: 1\ngroups:\n  - id: a\n    tasks:\n" + "".join(
    f'      - {{id: "1.{i}", type: config_edit, file: conf.json, set: {{k{i}: {i}}}}}\n' for i in range(8))


def workers_of(pytester):
    tasks = json.loads((pytester.path / "reports" / "run.json").read_text())["tasks"]
    return {t["worker"] for t in tasks}


def test_n4_on_a_plan_of_config_edits_runs_in_process_and_says_why(pytester):
    pytester.makefile(".yaml", **{"phases/p1": EDITS})
    (pytester.path / "conf.json").write_text("{}\n")
    result = pytester.runpytest_subprocess("-n", "4", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=8)
    result.stdout.fnmatch_lines(["pytest-orch: -n 4: running in process, estimated * s here against * s on "
                                 "workers (--orch-parallel=always keeps the workers)"])
    assert workers_of(pytester) == {None}


def test_orch_parallel_always_keeps_the_workers(pytester):
    pytester.makefile(".yaml", **{"phases/p1": EDITS})
    (pytester.path / "conf.json").write_text("{}\n")
    result = pytester.runpytest_subprocess("-n", "2", "--orch-parallel=always", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=8)
    result.stdout.no_fnmatch_line("pytest-orch: -n *")
    result.stdout.fnmatch_lines(["created: 2/2 workers"])
    # the controller runs the edits while the workers start: with 8 edits of a few ms, often all of them
    assert workers_of(pytester) <= {"gw0", "gw1", "controller"}


def test_slow_tasks_get_the_workers_the_graph_can_use(pytester):
    pytester.makefile(".yaml", **{"phases/p1": """
        phase: 1
        groups:
          - id: a
            tasks:
              - {id: "1.1", type: command, run: "sleep 0.6"}
              - {id: "1.2", type: command, run: "sleep 0.6"}
              - {id: "1.3", type: command, run: "sleep 0.6"}
        """})
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=3)  # durations to estimate from
    result = pytester.runpytest_subprocess("-n", "4", "--force", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["pytest-orch: -n 4: starting 3 workers, all the plan's graph can use*"])
    assert workers_of(pytester) <= {"gw0", "gw1", "gw2", "controller"}  # the first may start on the controller


def test_a_session_of_plain_tests_beside_a_plan_keeps_its_workers(pytester):
    pytester.makefile(".yaml", **{"phases/p1": EDITS})
    pytester.makepyfile(test_unit="import os\n\ndef test_where():\n    assert os.environ.get('PYTEST_XDIST_WORKER')\n")
    result = pytester.runpytest_subprocess("test_unit.py", "-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("pytest-orch: -n *")
