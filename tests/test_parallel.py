"""The DAG scheduler on real xdist workers (-n 2 / -n 4), checked from reports/run.json."""

from __future__ import annotations

import json
import random
from datetime import datetime

import pytest

from conftest import handler_conftest

pytest.importorskip("xdist")


def run(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, dict]]:
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--force", "--orch-parallel=always", *args)
    report = pytester.path / "reports" / "run.json"
    tasks = {t["id"]: t for t in json.loads(report.read_text())["tasks"]} if report.exists() else {}
    return result, tasks


def ts(text: str | None) -> float:
    assert text is not None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def plan(tasks: list[str], extra: str = "", groups: str = "") -> str:
    body = "\n".join(f"      - {t}" for t in tasks)
    return f"phase: 1\n{extra}groups:\n  - id: g\n    tasks:\n{body}\n{groups}"


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one moment (an end and a start at the same instant do not overlap)."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals], key=lambda x: (x[0], x[1]))
    most = open_ = 0
    for _, step in events:
        open_ += step
        most = max(most, open_)
    return most


@pytest.mark.parametrize(("seed", "workers"), [(1, 4), (2, 4), (3, 2)])
def test_no_task_starts_before_its_dependencies_end(pytester: pytest.Pytester, seed: int, workers: int) -> None:
    rng = random.Random(seed)
    names = [f"t{i:02d}" for i in range(24)]
    deps = {n: sorted(set(rng.sample(names[:i], min(i, rng.randint(0, 3))))) for i, n in enumerate(names)}
    tasks = [f'{{id: {n}, type: command, run: "sleep {rng.uniform(0.02, 0.12):.3f}", '
             f'depends_on: {json.dumps(deps[n])}}}'
             for n in names]
    pytester.makefile(".yaml", **{"phases/p1": plan(tasks)})
    result, run_json = run(pytester, "-n", str(workers))
    result.assert_outcomes(passed=len(names))
    workers_used = {t["worker"] for t in run_json.values()}
    assert len(workers_used) > 1  # about 1.7 s of work: the later workers are up long before the end
    for name, needs in deps.items():
        for dep in needs:
            assert ts(run_json[name]["started"]) >= ts(run_json[dep]["finished"]), (name, dep)


LIMITS = """
phase: 1
pools: {llm: 1}
groups:
  - id: capped
    max_parallel: 2
    tasks:
%s
  - id: seq
    execution: sequential
    tasks:
%s
  - id: pooled
    tasks:
%s
"""


def test_max_parallel_sequential_and_pools_are_never_exceeded(pytester: pytest.Pytester) -> None:
    def block(prefix: str, count: int, pool: str = "") -> str:
        return "\n".join(f'      - {{id: {prefix}{i}, type: command, run: "sleep 0.08"{pool}}}' for i in range(count))

    pytester.makefile(".yaml", **{"phases/p1": LIMITS % (block("c", 5), block("s", 3), block("p", 3, ", pool: llm"))})
    result, run_json = run(pytester, "-n", "4")
    result.assert_outcomes(passed=11)

    def intervals(prefix: str) -> list[tuple[float, float]]:
        return [(ts(t["started"]), ts(t["finished"])) for k, t in run_json.items() if k.startswith(prefix)]

    assert max_overlap(intervals("c")) <= 2  # never more; fewer when workers start late
    assert max_overlap(intervals("s")) == 1
    assert max_overlap(intervals("p")) == 1
    seq = [run_json[f"s{i}"] for i in range(3)]
    assert ts(seq[0]["finished"]) <= ts(seq[1]["started"]) and ts(seq[1]["finished"]) <= ts(seq[2]["started"])


def test_pool_limit_from_the_command_line(pytester: pytest.Pytester) -> None:
    tasks = [f'{{id: q{i}, type: command, run: "sleep 0.3", pool: gpu}}' for i in range(6)]
    pytester.makefile(".yaml", **{"phases/p1": plan(tasks)})
    result, run_json = run(pytester, "-n", "4", "--pool", "gpu=2")
    result.assert_outcomes(passed=6)
    # never more than the limit; how many workers are up by then varies with the machine's load
    assert max_overlap([(ts(t["started"]), ts(t["finished"])) for t in run_json.values()]) <= 2


def test_rate_limit_is_shared_by_all_workers(pytester: pytest.Pytester) -> None:
    tasks = [f'{{id: r{i}, type: command, run: "true", pool: api}}' for i in range(4)]
    pytester.makefile(".yaml", **{"phases/p1": plan(tasks, extra='rate_limits: {api: "2/second"}\n')})
    result, run_json = run(pytester, "-n", "2")
    result.assert_outcomes(passed=4)
    starts = sorted(ts(t["started"]) for t in run_json.values())
    # a burst of two, then one token every 0.5 s from the bucket's creation (just before starts[0])
    assert starts[2] - starts[0] >= 0.3
    assert starts[3] - starts[0] >= 0.8


def test_failure_policies_are_decided_on_the_controller(pytester: pytest.Pytester) -> None:
    tasks = [
        '{id: bad, type: command, run: "false"}',
        '{id: after_bad, type: command, run: "true", depends_on: [bad]}',
        '{id: soft, type: command, run: "false", on_failure: continue}',
        '{id: after_soft, type: command, run: "true", depends_on: [soft]}',
        '{id: step, type: manual, instructions: "press the button"}',
        '{id: after_step, type: command, run: "true", depends_on: [step]}',
    ]
    pytester.makefile(".yaml", **{"phases/p1": plan(tasks)})
    result, run_json = run(pytester, "-n", "2")
    assert result.ret == 1
    assert run_json["bad"]["outcome"] == "failed"
    assert run_json["after_bad"]["outcome"] == "skipped"
    assert "dependency bad failed" in run_json["after_bad"]["message"]
    assert run_json["after_soft"]["outcome"] == "passed"
    assert run_json["step"]["outcome"] == "skipped"
    assert "press the button" in run_json["step"]["message"]
    assert run_json["after_step"]["outcome"] == "skipped"
    for never_sent in ("after_bad", "step", "after_step"):
        assert run_json[never_sent]["worker"] is None, never_sent


def test_abort_stops_handing_out_work(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    # both first tasks start on the two workers at once; with early start the controller would run gate
    # first (its path is longer) and stop only reach a worker after gate had released its dependents
    # (tests/test_early_start.py checks an abort on the controller)
    monkeypatch.setenv("ORCH_EARLY_START", "0")
    tasks = ['{id: stop, type: command, run: "false", on_failure: abort}'] + [
        f'{{id: w{i}, type: command, run: "sleep 0.05", depends_on: [gate]}}' for i in range(6)]
    tasks.insert(1, '{id: gate, type: command, run: "sleep 0.3"}')
    pytester.makefile(".yaml", **{"phases/p1": plan(tasks)})
    result, run_json = run(pytester, "-n", "2")
    assert result.ret == 1
    assert run_json["stop"]["outcome"] == "failed"
    for i in range(6):
        entry = run_json[f"w{i}"]
        assert entry["outcome"] == "skipped" and entry["worker"] is None
        assert "on_failure is abort" in entry["message"]


CRASH_CONFTEST = handler_conftest("crash", "        os._exit(1)", imports="import os")


@pytest.mark.parametrize("workers", ["2", "4"])
def test_a_crashed_worker_fails_its_task_and_the_run_goes_on(pytester: pytest.Pytester, workers: str) -> None:
    pytester.makeconftest(CRASH_CONFTEST)
    tasks = ['{id: boom, type: crash}', '{id: after_boom, type: command, run: "true", depends_on: [boom]}'] + [
        f'{{id: ok{i}, type: command, run: "sleep 0.05"}}' for i in range(6)]
    pytester.makefile(".yaml", **{"phases/p1": plan(tasks)})
    result, run_json = run(pytester, "-n", workers)
    assert result.ret == 1
    assert run_json["boom"]["outcome"] == "failed"
    assert "died while running task boom" in run_json["boom"]["message"]
    assert run_json["after_boom"]["outcome"] == "skipped"
    assert all(run_json[f"ok{i}"]["outcome"] == "passed" for i in range(6))
    result.stdout.fnmatch_lines(["*replacing crashed worker*"])
    assert result.stdout.str().count("PASSED") + result.parseoutcomes().get("passed", 0) >= 6
    assert result.parseoutcomes()["passed"] == 6  # nothing lost, nothing run twice


PLAIN_TESTS = """
import pytest

@pytest.mark.dependency(depends=["late"], scope="session")
def test_after_task():
    pass

@pytest.mark.dependency(depends=["broken"], scope="session")
def test_after_failed_task():
    pass

@pytest.mark.dependency()
def test_first():
    pass

@pytest.mark.dependency(depends=["test_first"])
def test_second():
    pass
"""


def test_plain_tests_with_dependency_markers_across_workers(pytester: pytest.Pytester) -> None:
    tasks = ['{id: early, type: command, run: "sleep 0.05"}',
             '{id: late, type: command, run: "sleep 0.2", depends_on: [early]}',
             '{id: broken, type: command, run: "false"}']
    pytester.makefile(".yaml", **{"phases/p1": plan(tasks)})
    pytester.makepyfile(test_plain=PLAIN_TESTS)
    result, run_json = run(pytester, "-n", "4", "-rs")
    outcomes = result.parseoutcomes()
    assert outcomes["passed"] == 5 and outcomes["failed"] == 1 and outcomes["skipped"] == 1
    after = run_json["test_plain.py::test_after_task"]
    assert after["outcome"] == "passed"
    assert ts(after["started"]) >= ts(run_json["late"]["finished"])
    assert run_json["test_plain.py::test_second"]["outcome"] == "passed"
    skipped = run_json["test_plain.py::test_after_failed_task"]
    assert skipped["outcome"] == "skipped" and skipped["worker"] is None
    assert "broken" in skipped["message"]
