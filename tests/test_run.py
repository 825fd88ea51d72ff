"""Running a plan in process: failure policy, criticality, retries, timeouts, manual steps, exit status."""

import json
import os
import time

import pytest

from conftest import handler_conftest
from pytest_orch.collect import TaskItem


def plan(pytester, tasks, extra=""):
    body = "\n".join(f"      - {t}" for t in tasks)
    pytester.makefile(".yaml", **{"phases/p1": f"phase: 1\n{extra}groups:\n  - id: a\n    tasks:\n{body}\n"})


def run_json(pytester, folder="reports"):
    data = json.loads((pytester.path / folder / "run.json").read_text())
    return data, {t["id"]: t for t in data["tasks"]}


def test_failed_dependency_skips_dependents_naming_it(pytester):
    plan(pytester, [
        '{id: "1.1", type: command, run: "false"}',
        '{id: "1.2", type: command, run: "touch ran-1.2", depends_on: ["1.1"]}',
        '{id: "1.3", type: command, run: "touch ran-1.3", depends_on: ["1.2"]}',
    ])
    result = pytester.runpytest("-rs")
    result.assert_outcomes(failed=1, skipped=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*phases/p1.yaml:6: dependency 1.1 failed*",
                                 "*phases/p1.yaml:7: dependency 1.2 was not done: dependency 1.1 failed*"])
    assert not list(pytester.path.glob("ran-*"))
    _, tasks = run_json(pytester)
    assert [tasks[t]["outcome"] for t in ("1.1", "1.2", "1.3")] == ["failed", "skipped", "skipped"]


def test_on_failure_continue_lets_dependents_run(pytester):
    plan(pytester, [
        '{id: "1.1", type: command, run: "false", on_failure: continue}',
        '{id: "1.2", type: command, run: "true", depends_on: ["1.1"]}',
    ])
    result = pytester.runpytest()
    result.assert_outcomes(failed=1, passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_on_failure_abort_reports_the_rest_as_not_run(pytester):
    plan(pytester, [
        '{id: "1.1", type: command, run: "false", on_failure: abort}',
        '{id: "1.2", type: command, run: "touch ran-1.2"}',
        '{id: "1.3", type: command, run: "touch ran-1.3"}',
    ])
    result = pytester.runpytest("-rs")
    result.assert_outcomes(failed=1, skipped=2)
    result.stdout.fnmatch_lines(["*not run: task 1.1 failed and its on_failure is abort*"])
    assert not list(pytester.path.glob("ran-*"))


def test_non_critical_failure_keeps_exit_status_zero(pytester):
    plan(pytester, [
        '{id: "1.1", type: command, run: "false", critical: false}',
        '{id: "1.2", type: command, run: "true"}',
    ])
    result = pytester.runpytest()
    result.assert_outcomes(failed=1, passed=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*non-critical tasks failed*1.1*"])
    data, _ = run_json(pytester)
    assert data["outcome"] == "passed"


def test_policy_travels_as_plugin_markers(pytester):
    plan(pytester, [
        '{id: "1.1", type: command, run: "true"}',
        '{id: "1.2", type: command, run: "true", depends_on: ["1.1"], timeout: 30, retries: 2, '
        'retry_delay: 0.5, backoff: 3}',
    ])
    items, _ = pytester.inline_genitems()
    item = next(i for i in items if isinstance(i, TaskItem) and i.task.id == "1.2")
    dep = item.get_closest_marker("dependency")
    assert dep.kwargs == {"name": "1.2", "depends": ["1.1"], "scope": "session"}
    # the handler owns the 30 s deadline; pytest-timeout is its backstop, a grace period later
    assert item.get_closest_marker("timeout").args == (33.0,)
    flaky = item.get_closest_marker("flaky")
    assert flaky.kwargs == {"reruns": 2, "reruns_delay": 0.5, "reruns_delay_backoff_factor": 3.0}


def test_retries_then_success_is_one_passed_task_with_attempts(pytester):
    plan(pytester, ['{id: "1.1", type: command, shell: true, retries: 2, '
                    'run: "n=$(cat n 2>/dev/null || echo 0); echo $((n+1)) > n; test $n -ge 2"}'])
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert result.parseoutcomes()["rerun"] == 2
    _, tasks = run_json(pytester)
    assert tasks["1.1"]["attempts"] == 3 and tasks["1.1"]["outcome"] == "passed"


def test_retry_delay_grows_by_backoff(pytester):
    plan(pytester, ['{id: "1.1", type: command, shell: true, retries: 2, retry_delay: 0.2, backoff: 4, '
                    'run: "date +%s.%N >> stamps; false"}'])
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    assert result.parseoutcomes()["rerun"] == 2
    stamps = [float(s) for s in (pytester.path / "stamps").read_text().split()]
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    # 0.2 s before the first retry, 0.8 s before the second: the second gap is clearly longer
    assert gaps[0] >= 0.2 and gaps[1] >= 0.8 and gaps[1] > gaps[0] + 0.4


def test_timeout_kills_the_whole_process_tree(pytester):
    plan(pytester, ['{id: "1.1", type: command, shell: true, timeout: 1, '
                    'run: "sleep 60 & echo $! > child.pid; echo $$ > shell.pid; wait"}'])
    started = time.monotonic()
    result = pytester.runpytest_subprocess()
    assert time.monotonic() - started < 30
    result.assert_outcomes(failed=1)
    # the handler's own deadline: one line, and pytest-timeout (its backstop) never fired
    result.stdout.fnmatch_lines(["*task 1.1 (command) failed: timed out after 1 s"])
    result.stdout.no_fnmatch_line("*Timeout*")
    result.stdout.no_fnmatch_line("*Stack of*")
    for name in ("child.pid", "shell.pid"):
        pid = int((pytester.path / name).read_text())
        deadline = time.monotonic() + 5
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(pid), f"{name} {pid} survived the timeout"


STUCK_HANDLER = handler_conftest("stuck", """\
        threading.Thread(target=time.sleep, args=(60,), daemon=True).start()  # a second thread
        time.sleep(60)  # stuck in Python: only the backstop can stop it
        return Outcome("passed")""", imports="import threading\nimport time")


def test_a_handler_stuck_in_python_is_stopped_by_the_backstop_in_one_line(pytester):
    pytester.makeconftest(STUCK_HANDLER)
    plan(pytester, ['{id: "1.1", type: stuck, timeout: 1}',
                    '{id: "1.2", type: command, run: "true"}'])
    started = time.monotonic()
    result = pytester.runpytest_subprocess()
    assert time.monotonic() - started < 30
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["*task 1.1 (stuck) failed: timed out after 1 s (the handler did not return; "
                                 "stopped after 3 s)"])
    result.stdout.no_fnmatch_line("*Stack of*")  # pytest-timeout's dump of every thread
    result.stdout.no_fnmatch_line("*+++++*Timeout*")


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is dead, only not yet reaped
        return stat.read().split()[2] != "Z"


def test_unconfirmed_manual_step_blocks_dependents_until_confirmed(pytester):
    plan(pytester, [
        '{id: "1.1", type: manual, instructions: "Enable branch protection on main"}',
        '{id: "1.2", type: command, run: "touch ran-1.2", depends_on: ["1.1"]}',
    ])
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "*1.1: manual step not confirmed: Enable branch protection on main  -> pytest --confirm 1.1*",
    ])
    assert not (pytester.path / "ran-1.2").exists()
    result = pytester.runpytest("--confirm", "1.1")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.OK


def test_a_confirmed_manual_step_passes_on_a_worker_and_its_dependents_run(pytester):
    plan(pytester, [
        '{id: "1.1", type: manual, instructions: "Enable branch protection on main"}',
        '{id: "1.2", type: command, run: "touch ran-1.2", depends_on: ["1.1"]}',
    ])
    result = pytester.runpytest_subprocess("-n", "2", "--orch-parallel=always", "--confirm", "1.1")
    result.assert_outcomes(passed=2)
    assert (pytester.path / "ran-1.2").exists()


def test_exitfirst_keeps_its_pytest_meaning(pytester):
    plan(pytester, [
        '{id: "1.1", type: command, run: "false", on_failure: continue}',
        '{id: "1.2", type: command, run: "touch ran-1.2"}',
    ])
    result = pytester.runpytest("-x")
    result.assert_outcomes(failed=1)
    assert not (pytester.path / "ran-1.2").exists()


def test_plain_test_depending_on_a_task_runs_after_it(pytester):
    plan(pytester, ['{id: "1.1", type: command, run: "touch made-by-task"}'])
    pytester.makepyfile(test_after="""
        import pytest, pathlib

        @pytest.mark.dependency(depends=["1.1"], scope="session")
        def test_sees_task_output():
            assert pathlib.Path("made-by-task").exists()
        """)
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2)


def test_rate_limit_holds_tasks_in_process_too(pytester):
    plan(pytester, [f'{{id: "1.{i}", type: command, shell: true, pool: api, run: "date +%s.%N >> stamps"}}'
                    for i in range(6)], extra='rate_limits: {api: "2/second"}\n')
    pytester.runpytest().assert_outcomes(passed=6)
    stamps = sorted(float(s) for s in (pytester.path / "stamps").read_text().split())
    # a burst of two, then one token every 0.5 s: the sixth starts at least 1.5 s after the first
    assert stamps[5] - stamps[0] >= 1.4


def test_the_collector_skips_the_plan_while_tasks_run_and_is_thawed_after(pytester):
    """In process, gc.freeze() keeps the garbage collector from scanning the plan and the items at
    every full collection while tasks run; the session's end thaws it (pytester runs in this process)."""
    import gc

    plan(pytester, ['{id: "1.1", type: command, run: "true"}', '{id: "1.2", type: command, run: "true"}'])
    pytester.makeconftest("""
        import gc, json
        seen = []
        def pytest_orch_task_finished(task, result):
            seen.append(gc.get_freeze_count())
        def pytest_unconfigure(config):
            with open("frozen.json", "w") as f:
                json.dump(seen, f)
    """)
    before = gc.get_freeze_count()
    pytester.runpytest().assert_outcomes(passed=2)
    frozen = json.loads((pytester.path / "frozen.json").read_text())
    assert len(frozen) == 2 and all(count > before for count in frozen)
    assert gc.get_freeze_count() == before
