"""Remote xdist workers on real SSH hosts: network namespaces with their own sshd (tests/ssh_hosts.py).

Needs root (network namespaces) and openssh-server; elsewhere these tests are skipped and say why,
and under ORCH_REQUIRE_BROWSER=1 (set by .ci/run, which runs as root and installs openssh-server)
such a skip is a failure, so CI cannot pass without hosts having been lost for real. Each host's
"remote" python is this venv's (the filesystem is shared) and its checkout a clone of the test
project at the same commit. Only the namespaces' addresses and loopback are contacted.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from browser import missing
from ssh_hosts import SshHosts, why_not_available

pytest.importorskip("xdist")

PYTHON = sys.executable


@pytest.fixture
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshHosts]:
    why = why_not_available()
    if why is not None:
        missing(why)
    made = None
    try:
        made = SshHosts(tmp_path_factory.mktemp("hosts"))
        made.add("h1")
        made.add("h2")
        yield made
    finally:
        if made is not None:
            made.close()


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args], cwd=cwd,
                          check=True, capture_output=True, text=True).stdout.strip()


def make_project(pytester: pytest.Pytester, plan: str, clones: list[str]) -> dict[str, Path]:
    """The plan in a committed git project, and one clone of it per name (a host's checkout)."""
    pytester.makefile(".yaml", **{"phases/p1": plan})
    (pytester.path / "conf.json").write_text('{"level": 1}\n')
    (pytester.path / ".gitignore").write_text("reports/\n.orch/\n")
    git(pytester.path, "init", "-q")
    git(pytester.path, "add", "-A")
    git(pytester.path, "commit", "-qm", "plan")
    out = {}
    for name in clones:
        target = pytester.path.parent / f"{pytester.path.name}-{name}"
        git(pytester.path.parent, "clone", "-q", str(pytester.path), str(target))
        out[name] = target
    return out


def run_json(pytester: pytest.Pytester) -> dict[str, dict]:
    data = json.loads((pytester.path / "reports" / "run.json").read_text())
    return {t["id"]: t for t in data["tasks"]}


@pytest.fixture
def start(pytester: pytest.Pytester) -> Iterator[Callable[..., tuple[subprocess.Popen[bytes], Path]]]:
    """pytest in the project as a process the test can act on while it runs; killed at the test's end."""
    procs: list[subprocess.Popen[bytes]] = []

    def launch(*args: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = pytester.path.parent / f"{pytester.path.name}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([PYTHON, "-m", "pytest", "-p", "no:cacheprovider", "--force", "-rA", *args],
                                    cwd=pytester.path, stdout=out, stderr=subprocess.STDOUT)
        procs.append(proc)
        return proc, log

    yield launch
    for proc in procs:
        proc.kill()
        proc.wait()


def wait_for(path: Path, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"{path.name} never appeared; pytest said:\n{log.read_text()}")
        time.sleep(0.05)


PLAN = """
phase: 1
groups:
  - id: g
    tasks:
      - {{id: q1, type: command, run: "sh -c 'hostname > q1.host; sleep 0.3'"}}
      - {{id: q2, type: command, run: "sh -c 'hostname > q2.host; sleep 0.3'"}}
      - {{id: q3, type: command, run: "sh -c 'sleep 0.3'", depends_on: [q1]}}
      - id: flaky
        type: command
        run: "sh -c 'test -e flaky.once || {{ touch flaky.once; exit 1; }}'"
        retries: 2
        runs_on: [{h1}]
      - {{id: edit, type: config_edit, file: conf.json, set: {{level: 2}}}}
      - id: reads-edit
        type: command
        run: "grep -q '\\"level\\": 2' conf.json"
        depends_on: [edit]
  - id: pinned
    runs_on: [{h2}]
    tasks:
      - {{id: p1, type: command, run: "sh -c 'hostname > p1.host'"}}
      - {{id: p2, type: command, run: "sh -c 'hostname > p2.host'", depends_on: [q2]}}
"""


def test_plan_across_two_hosts_and_a_local_worker(pytester: pytest.Pytester, hosts: SshHosts) -> None:
    h1, h2 = hosts.hosts["h1"].address, hosts.hosts["h2"].address
    clones = make_project(pytester, PLAN.format(h1=h1, h2=h2), ["h1", "h2"])
    # --tx alone distributes (no -d), and a local worker is added for the config edit
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--force", "-rA",
        "--tx", hosts.tx("h1", PYTHON, clones["h1"]), "--tx", hosts.tx("h2", PYTHON, clones["h2"]))
    result.assert_outcomes(passed=8)
    result.stdout.fnmatch_lines([f"host {h1}: gw0, ok"])  # each in the order its connection was made
    result.stdout.fnmatch_lines([f"host {h2}: gw1, ok"])
    tasks = run_json(pytester)
    assert tasks["flaky"]["attempts"] == 2  # retried on the remote worker: rerunfailures works there
    assert (clones["h1"] / "flaky.once").exists()
    assert (clones["h2"] / "p1.host").read_text().strip() == "h2"  # the pinned group ran on h2
    assert (clones["h2"] / "p2.host").read_text().strip() == "h2"
    assert {tasks["p1"]["worker"], tasks["p2"]["worker"]} == {"gw1"}
    # the edit and the task reading it ran where the project is: the local worker
    assert tasks["edit"]["worker"] == tasks["reads-edit"]["worker"] == "gw2"
    assert json.loads((pytester.path / "conf.json").read_text()) == {"level": 2}
    assert {tasks[t]["worker"] for t in tasks} == {"gw0", "gw1", "gw2"}
    # nothing of xdist's own (pytest/, _pytest/) was left in the checkouts; the edit is only local
    for clone in clones.values():
        assert not (clone / "_pytest").exists() and not (clone / "pytest").exists()
        assert json.loads((clone / "conf.json").read_text()) == {"level": 1}
    # the same outcomes as a run on this machine alone
    shutil.rmtree(pytester.path / ".orch")
    git(pytester.path, "checkout", "conf.json")
    local = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--force", "-n", "2")
    local.assert_outcomes(passed=8)
    assert {t: v["outcome"] for t, v in run_json(pytester).items()} == {t: v["outcome"] for t, v in tasks.items()}


LOSS_PLAN = """
phase: 1
groups:
  - id: g
    tasks:
      - id: long
        type: command
        run: "sh -c 'touch {marker}; sleep 60'"
        runs_on: [{h1}]
      - {{id: after-long, type: command, run: "true", depends_on: [long]}}
      - {{id: waits-for-h1, type: command, run: "true", runs_on: [{h1}]}}
      - {{id: o1, type: command, run: "sleep 0.2"}}
      - {{id: o2, type: command, run: "sleep 0.2"}}
      - {{id: o3, type: command, run: "sleep 0.2", depends_on: [o1, o2]}}
"""


def test_a_host_killed_mid_task_fails_only_that_task(pytester: pytest.Pytester, hosts: SshHosts, start) -> None:
    h1 = hosts.hosts["h1"].address
    marker = pytester.path.parent / f"{pytester.path.name}.started"
    clones = make_project(pytester, LOSS_PLAN.format(h1=h1, marker=marker), ["h1", "h2"])
    proc, log = start("--tx", hosts.tx("h1", PYTHON, clones["h1"]),
                      "--tx", hosts.tx("h2", PYTHON, clones["h2"]), "--max-worker-restart=0")
    wait_for(marker, proc, log)
    hosts.kill("h1")  # its sshd and the worker in the middle of 'long'
    assert proc.wait(timeout=60) == 1  # a critical task failed
    out = log.read_text()
    assert "INTERNALERROR" not in out and "Traceback" not in out, out
    tasks = run_json(pytester)
    assert tasks["long"]["outcome"] == "failed"
    assert f"host {h1} was lost while running task long" in tasks["long"]["message"]
    assert tasks["after-long"]["outcome"] == "skipped"
    # ready for h1 (h1's one worker was busy) when h1 was lost: no other worker may run it
    assert tasks["waits-for-h1"]["outcome"] == "skipped"
    assert "no live worker may run it: it is pinned to " in tasks["waits-for-h1"]["message"]
    assert {tasks[t]["outcome"] for t in ("o1", "o2", "o3")} == {"passed"}
    assert f"host {h1} LOST at " in out and "took down long" in out, out
    assert f"host {hosts.hosts['h2'].address}: gw1, ok" in out


RETRY_PLAN = """
phase: 1
groups:
  - id: g
    tasks:
      - id: long
        type: command
        run: "sh -c 'test -e {shared}/tried && exit 0; touch {shared}/tried; hostname > {shared}/started; sleep 60'"
        retries: 1
        runs_on: [{h1}, {h2}]
      - {{id: after-long, type: command, run: "true", depends_on: [long]}}
      - {{id: o1, type: command, run: "sleep 0.2"}}
"""


def test_a_lost_task_with_retries_runs_again_on_another_host(pytester: pytest.Pytester, hosts: SshHosts, start) -> None:
    shared = pytester.path.parent / f"{pytester.path.name}-shared"
    shared.mkdir()
    plan = RETRY_PLAN.format(shared=shared, h1=hosts.hosts["h1"].address, h2=hosts.hosts["h2"].address)
    clones = make_project(pytester, plan, ["h1", "h2"])
    proc, log = start("--tx", hosts.tx("h1", PYTHON, clones["h1"]),
                      "--tx", hosts.tx("h2", PYTHON, clones["h2"]))
    wait_for(shared / "started", proc, log)
    time.sleep(0.2)  # the hostname is written
    lost = (shared / "started").read_text().strip()
    hosts.kill(lost)
    assert proc.wait(timeout=60) == 0  # the retry passed: every task is done
    out = log.read_text()
    assert "INTERNALERROR" not in out, out
    tasks = run_json(pytester)
    assert tasks["long"]["outcome"] == "passed" and tasks["long"]["attempts"] == 2
    assert tasks["after-long"]["outcome"] == "passed"
    address = hosts.hosts[lost].address
    assert f"host {address} LOST at " in out and "retried elsewhere: long" in out, out


def test_a_cut_link_is_noticed_and_the_run_ends(pytester: pytest.Pytester, hosts: SshHosts, start) -> None:
    h1 = hosts.hosts["h1"].address
    marker = pytester.path.parent / f"{pytester.path.name}.started"
    clones = make_project(pytester, LOSS_PLAN.format(h1=h1, marker=marker), ["h1", "h2"])
    proc, log = start("--tx", hosts.tx("h1", PYTHON, clones["h1"]),
                      "--tx", hosts.tx("h2", PYTHON, clones["h2"]))
    wait_for(marker, proc, log)
    hosts.cut("h1")
    cut = time.monotonic()
    try:
        status = proc.wait(timeout=90)  # generous: the bound is asserted below, the slack is for a loaded machine
    finally:
        proc.kill()
    assert time.monotonic() - cut < 30, log.read_text()  # the bound, not a speed measurement
    assert status == 1
    tasks = run_json(pytester)
    assert tasks["long"]["outcome"] == "failed"
    assert {tasks[t]["outcome"] for t in ("o1", "o2", "o3")} == {"passed"}
    assert f"host {h1} LOST at " in log.read_text()


START_PLAN = """
phase: 1
groups:
  - id: g
    tasks:
      - {{id: a, type: command, run: "true"}}
      - {{id: b, type: command, run: "true", depends_on: [a]}}
      - {{id: on-h1, type: command, run: "true", runs_on: {h1}}}
      - {{id: edit, type: config_edit, file: conf.json, set: {{level: 3}}, runs_on: [{h2}]}}
"""


def test_down_at_start_refused_and_shared_checkouts(pytester: pytest.Pytester, hosts: SshHosts) -> None:
    h1, h2 = hosts.hosts["h1"].address, hosts.hosts["h2"].address
    clones = make_project(pytester, START_PLAN.format(h1=h1, h2=h2), ["stale"])
    (clones["stale"] / "more").write_text("x")
    git(clones["stale"], "add", "more")
    git(clones["stale"], "commit", "-qm", "not the controller's commit")
    head = git(pytester.path, "rev-parse", "HEAD")
    bare = pytester.path.parent / f"{pytester.path.name}-bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)  # no project in it
    bare_python = str(bare / "bin" / "python")
    hosts.kill("h1")  # down before the run starts
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--force", "-rA",
        "--tx", hosts.tx("h1", PYTHON, pytester.path),
        "--tx", hosts.tx("h2", PYTHON, clones["stale"]),  # refused: another commit
        "--tx", hosts.tx("h2", PYTHON, pytester.path),    # the controller's own checkout: shared
        "--tx", hosts.tx("h2", bare_python, clones["stale"]))  # a python without the project: refused
    assert result.ret == 1  # on-h1 could not run anywhere: blocked
    for line in [  # in the order the connections were made
        f"host {h2}: gw2 (shares the controller's checkout), ok",
        f"host {h1} DOWN at start, not used: ssh could not connect*",
        f"host {h2} (gw1) REFUSED, not used: its checkout {clones['stale']} is at *, the controller's at "
        f"{head[:12]}; update it: git -C {clones['stale']} checkout {head}",
        f"host {h2} (gw3) REFUSED, not used: its python {bare_python} cannot import what a worker needs "
        f"(No module named 'pytest_orch'*); install the project there: {bare_python} -m pip install -e *",
    ]:
        result.stdout.fnmatch_lines([line])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    tasks = run_json(pytester)
    assert tasks["a"]["outcome"] == tasks["b"]["outcome"] == "passed"
    assert tasks["on-h1"]["outcome"] == "skipped"
    assert "no live worker may run it: it is pinned to " in tasks["on-h1"]["message"]
    # a config edit pinned to a host that shares the checkout runs there, and changes the project
    assert tasks["edit"]["worker"] == "gw2"
    assert json.loads((pytester.path / "conf.json").read_text()) == {"level": 3}


def test_an_unreachable_host_at_start_leaves_the_run_to_the_others(pytester: pytest.Pytester) -> None:
    """No root needed: ssh to a loopback port where nothing listens is refused at once."""
    if shutil.which("ssh") is None:
        missing("ssh is not installed (apt-get install -y openssh-client)")
    make_project(pytester, START_PLAN.format(h1="local", h2="local"), [])
    config = pytester.path.parent / "ssh_config"
    config.write_text("Host *\n  BatchMode yes\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n"
                      "  Port 1\n  LogLevel ERROR\n")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--force", "--tx", f"ssh=nobody@127.0.0.1//ssh_config={config}//python={PYTHON}")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["host 127.0.0.1 DOWN at start, not used: ssh could not connect*"])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
