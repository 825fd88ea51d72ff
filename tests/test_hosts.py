"""The host table and the rules of where a task may run (pure), and the plan keys that pin tasks to hosts."""

from __future__ import annotations

import json

import execnet
import pytest

from conftest import assert_tasks, handler_conftest
from pytest_orch.xdist.hosts import LOCAL, HostTable, Placement, Worker, host_of_spec, pinned_hosts, placement_of
from pytest_orch.xdist.specs import configure_tx, keepalive_options


def worker(gid: str, host: str = LOCAL, has_project: bool | None = None) -> Worker:
    names = {gid, host} | ({LOCAL} if host == LOCAL else {f"root@{host}"})
    return Worker(gid, host, f"spec-{gid}", has_project=host == LOCAL if has_project is None else has_project,
                  names=frozenset(names))


def table(*workers: Worker) -> HostTable:
    made = HostTable()
    for w in workers:
        made.add(w)
    return made


def test_host_names_come_from_the_spec() -> None:
    assert host_of_spec("-oServerAliveInterval=2 root@build1", None) == "build1"
    assert host_of_spec("build2", None) == "build2"
    assert host_of_spec(None, "10.0.0.5:8888") == "10.0.0.5"
    assert host_of_spec(None, None) == LOCAL


def test_a_file_writing_task_runs_only_where_the_project_is() -> None:
    here, shared, away = worker("gw0"), worker("gw1", "nfs1", has_project=True), worker("gw2", "build1")
    needs = Placement(needs_project=True)
    assert [needs.allows(w) for w in (here, shared, away)] == [True, True, False]
    assert all(Placement().allows(w) for w in (here, shared, away))


def test_pins_name_hosts_and_local() -> None:
    here, b1, b2 = worker("gw0"), worker("gw1", "build1"), worker("gw2", "build2")
    assert [Placement(hosts=frozenset({"build1"})).allows(w) for w in (here, b1, b2)] == [False, True, False]
    assert [Placement(hosts=frozenset({LOCAL})).allows(w) for w in (here, b1, b2)] == [True, False, False]
    assert Placement(hosts=frozenset({"root@build2"})).allows(b2)  # user@host names it too
    assert Placement(hosts=frozenset({"gw1"})).allows(b1)  # so does the gateway id


def test_task_pins_win_over_the_group_and_pools_narrow_them() -> None:
    pools = {"gpu": ("g1", "g2")}
    assert pinned_hosts(("b1",), ("b2",), None, pools) == {"b1"}
    assert pinned_hosts((), ("b2",), None, pools) == {"b2"}
    assert pinned_hosts(("any",), ("b2",), None, pools) == set()
    assert pinned_hosts((), (), "gpu", pools) == {"g1", "g2"}
    assert pinned_hosts(("g2", "b1"), (), "gpu", pools) == {"g2"}


def test_a_task_downstream_of_a_local_change_needs_the_project() -> None:
    tainted: dict[str, bool] = {}
    changed = {"edit"}

    def place(task: str, prerequisites: list[str]) -> Placement:
        return placement_of(task, prerequisites, writes_files=lambda t: t == "edit", pins=lambda t: frozenset(),
                            changed_here=lambda p: p in changed, tainted=tainted)

    assert place("edit", []).needs_project  # its handler writes files
    assert place("build", ["edit"]).needs_project  # the edit changed a file here
    assert place("test", ["build"]).needs_project  # ... and through the tasks after it
    assert not place("lint", ["other"]).needs_project
    assert place(None, ["edit"]) == Placement()  # a plain test goes anywhere


def test_a_lost_host_takes_its_workers_and_is_counted_once() -> None:
    hosts = table(worker("gw0"), worker("gw1", "b1"), worker("gw2", "b1"), worker("gw3", "b2"))
    pinned = Placement(hosts=frozenset({"b1"}))
    assert hosts.placeable(pinned) is None
    assert hosts.lose("gw0", "x") is None  # a local worker is xdist's to restart
    loss = hosts.lose("gw1", "connection closed")
    assert loss is not None and hosts.lose("gw2", "later") is loss
    assert [w.gateway_id for w in hosts.live()] == ["gw0", "gw3"]
    why = hosts.placeable(pinned)
    assert why is not None and "is pinned to b1" in why and "b1 (lost: connection closed)" in why
    assert hosts.placeable(Placement()) is None
    assert hosts.generation == 2


def test_an_empty_table_judges_nothing() -> None:
    assert HostTable().placeable(Placement(hosts=frozenset({"b1"}))) is None


def test_keepalives_are_added_unless_the_user_set_them(tmp_path) -> None:
    spec = execnet.XSpec("ssh=root@b1")
    assert keepalive_options(spec, 2) == ["-oServerAliveInterval=2", "-oServerAliveCountMax=3", "-oConnectTimeout=10"]
    assert keepalive_options(spec, 0) == []
    config = tmp_path / "ssh_config"
    config.write_text("Host *\n  ServerAliveInterval 30\n")
    spec = execnet.XSpec(f"ssh=root@b1//ssh_config={config}")
    assert keepalive_options(spec, 2) == ["-oServerAliveCountMax=3", "-oConnectTimeout=10"]
    assert keepalive_options(execnet.XSpec("popen"), 2) == []


@pytest.mark.parametrize(("tx", "dist", "expected_tx", "expected_dist"), [
    (["ssh=root@b1"], "no", ["ssh=root@b1", "popen"], "load"),   # --tx alone distributes, a local worker added
    (["2*popen"], "no", ["2*popen"], "load"),
    (["ssh=root@b1", "popen"], "each", ["ssh=root@b1", "popen"], "each"),
    (["popen//chdir=/srv/x"], "no", ["popen//chdir=/srv/x", "popen"], "load"),  # not where the project is
    ([], "no", [], "no"),
])
def test_tx_alone_distributes_and_a_local_worker_is_added(tx, dist, expected_tx, expected_dist) -> None:
    class Option:
        pass

    config = type("Config", (), {})()
    config.option = Option()
    config.option.tx, config.option.dist = list(tx), dist
    configure_tx(config)
    assert (config.option.tx, config.option.dist) == (expected_tx, expected_dist)


@pytest.mark.parametrize(("value", "problem"), [
    ("[]", "runs_on: expected 'local', 'any', a host name or a list of host names"),
    ("[any, b1]", "runs_on: 'any' cannot be combined with host names"),
    ("{a: 1}", "runs_on: expected a list of strings"),
])
def test_bad_runs_on_is_a_plan_error(pytester: pytest.Pytester, value: str, problem: str) -> None:
    pytester.makefile(".yaml", **{"phases/p1": f"""
        phase: 1
        groups:
          - id: g
            tasks:
              - {{id: a, type: command, run: "true", runs_on: {value}}}
        """})
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([f"phases/p1.yaml:5: task 'a': {problem}*"])
    result.stdout.no_fnmatch_line("*Traceback*")


def test_pins_are_accepted_and_do_not_change_a_task_s_fingerprint(pytester: pytest.Pytester) -> None:
    plan = """
        phase: 1
        pool_hosts: {{gpu: [g1]}}
        groups:
          - id: g
            runs_on: local
            tasks:
              - {{id: a, type: command, run: "true"{pin}}}
        """
    pytester.makefile(".yaml", **{"phases/p1": plan.format(pin="")})
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    pytester.makefile(".yaml", **{"phases/p1": plan.format(pin=", runs_on: [b1, b2], pool: gpu")})
    result = pytester.runpytest("-p", "no:cacheprovider")  # in process: pins apply to remote workers only
    assert_tasks(result, up_to_date=1)


CRASH_CONFTEST = handler_conftest("crash", "        os._exit(1)", imports="import os")

NO_WORKER_LEFT = """
phase: 1
groups:
  - id: g
    tasks:
      - {id: boom, type: crash}
      - {id: d1, type: command, run: "true", depends_on: [boom]}
      - {id: d2, type: command, run: "true", depends_on: [d1]}
      - {id: ok1, type: command, run: "true"}
      - {id: ok2, type: command, run: "true"}
"""


def test_when_no_worker_is_left_the_rest_is_reported_not_run(pytester: pytest.Pytester,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_EARLY_START", "0")  # the commands would run on the controller before gw0 is up
    pytester.makeconftest(CRASH_CONFTEST)
    pytester.makefile(".yaml", **{"phases/p1": NO_WORKER_LEFT})
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "1", "--max-worker-restart=0", "-rs",
                                           "--orch-parallel=always")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    result.assert_outcomes(failed=1, skipped=4)
    tasks = {t["id"]: t for t in json.loads((pytester.path / "reports" / "run.json").read_text())["tasks"]}
    assert tasks["boom"]["outcome"] == "failed"
    assert {tasks[t]["message"] for t in ("ok1", "ok2")} == {"not run: no worker is left to run it"}
    assert tasks["d1"]["outcome"] == tasks["d2"]["outcome"] == "skipped"


def test_a_host_still_connecting_may_take_the_tasks_pinned_to_it() -> None:
    hosts = table(worker("gw0"))
    connecting = worker("gw1", "b1")
    hosts.expect(connecting)
    pinned = Placement(needs_project=True, hosts=frozenset({"b1"}))
    assert hosts.placeable(pinned) is None  # it may yet turn out to share the checkout
    hosts.expected.pop("gw1")
    hosts.down_at_start["b1"] = "ssh could not connect"
    assert "b1 (down at start)" in (hosts.placeable(pinned) or "")
