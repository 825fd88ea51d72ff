"""The state store: runs, results across runs, confirmations, events, and surviving SIGKILL."""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from pytest_orch.fingerprint import FileHasher, compute, why_stale
from pytest_orch.state import StateStore

T0 = "2026-11-21T20:00:00Z"
T1 = "2026-11-21T20:01:02Z"


def fingerprint(root: Path, run: str = "true"):
    return compute({"id": "1.1", "type": "command", "run": run}, "1", [], root, {}, FileHasher())


def record(store, run_id, task_id, outcome, fp=None, *, written=None, changed=(), duration=1.5):
    return store.record_result(run_id, task_id, outcome, fp, T0, T1, duration, 1, "gw0",
                               list(changed), written or {}, "")


def test_runs_are_numbered_and_unfinished_ones_become_interrupted(tmp_path):
    with StateStore.open(tmp_path) as store:
        assert store.begin_run("r1", T0, ["pytest"], True) == 1
        assert store.begin_run("r2", T0, ["pytest", "--phase", "2"], None) == 2
        store.end_run("r2", T1, "passed")
        runs = store.runs()
    assert [(r.number, r.outcome, r.git_clean) for r in runs] == [(2, "passed", None), (1, "interrupted", True)]
    assert runs[0].argv == ["pytest", "--phase", "2"]
    assert (tmp_path / ".orch" / "state.db").exists()
    conn = sqlite3.connect(tmp_path / ".orch" / "state.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_rolled_back_result_leaves_nothing_the_next_one_relies_on(tmp_path):
    """The store remembers which input maps it wrote, to skip writing them again; a rollback must
    make it forget, or the next task with the same inputs would point at a map that is not there."""
    (tmp_path / "in.txt").write_text("x")
    fp = compute({"id": "1.1", "type": "command", "run": "true"}, "1", [tmp_path / "in.txt"], tmp_path, {},
                 FileHasher())
    with StateStore.open(tmp_path) as store:
        store.begin_run("r1", T0, [], True)
        try:
            with store.transaction():
                record(store, "r1", "1.1", "passed", fp)
                raise RuntimeError("killed between the result and the commit")
        except RuntimeError:
            pass
        assert "1.1" not in store.last_results()
        record(store, "r1", "1.2", "passed", fp)
        assert store.last_results()["1.2"].fingerprint == fp  # its input map included
    with StateStore.open(tmp_path) as store:
        assert store.last_results()["1.2"].fingerprint.inputs == {"in.txt": fp.inputs["in.txt"]}


def test_results_survive_reopening_and_skips_do_not_hide_a_pass(tmp_path):
    fp = fingerprint(tmp_path)
    with StateStore.open(tmp_path) as store:
        store.begin_run("r1", T0, [], True)
        record(store, "r1", "1.1", "passed", fp, duration=2.0)
        record(store, "r1", "1.2", "failed", fp)
        store.record_attempt("r1", "1.2", 1, T0, T1, "failed", "gw1", ["x"])
        store.record_attempt("r1", "1.2", 2, T0, T1, "failed", "gw1", [])
        store.end_run("r1", T1, "failed")
    with StateStore.open(tmp_path) as store:
        store.begin_run("r2", T0, [], True)
        record(store, "r2", "1.1", "skipped")  # e.g. its dependency was not done: it never ran
        last = store.last_results()
        assert last["1.1"].outcome == "passed" and last["1.1"].run == 1 and last["1.1"].fingerprint == fp
        assert last["1.2"].outcome == "failed"
        assert store.last_results(include_skipped=True)["1.1"].outcome == "skipped"
        assert store.last_success("1.1", last) is not None and store.last_success("1.2", last) is None
        assert store.durations() == {"1.1": 2.0}
        assert [a["attempt"] for a in store.attempts("r1", "1.2")] == [1, 2]
        assert why_stale(last["1.1"], fp, tmp_path, FileHasher()) is None
        assert why_stale(last["1.2"], fp, tmp_path, FileHasher()) == "last run failed"


def test_up_to_date_keeps_the_run_it_relies_on_and_the_dependents_token(tmp_path):
    (tmp_path / "out.txt").write_text("generated")
    fp = fingerprint(tmp_path)
    with StateStore.open(tmp_path) as store:
        store.begin_run("r1", T0, [], True)
        passed = record(store, "r1", "1.1", "passed", fp, changed=["out.txt"])
        assert passed.written["out.txt"] == FileHasher().sha(tmp_path / "out.txt")
        store.begin_run("r2", T0, [], True)
        again = record(store, "r2", "1.1", "up_to_date")  # fingerprint carried over
        assert (again.since_run, again.fingerprint, again.written) == (1, fp, passed.written)
        assert again.token == passed.token
        store.begin_run("r3", T0, [], True)
        forced = record(store, "r3", "1.1", "passed", fp, changed=["out.txt"])
        assert forced.since_run == 3 and forced.token != passed.token
        assert store.last_results()["1.1"].since_run == 3


def test_confirmations_and_harness_written_paths(tmp_path):
    (tmp_path / "gen.py").write_text("x = 1\n")
    with StateStore.open(tmp_path) as store:
        store.begin_run("r1", T0, [], True)
        store.confirm("3.1", T1)
        record(store, "r1", "1.1", "passed", fingerprint(tmp_path), changed=["gen.py", "gone.txt"])
        record(store, "r1", "1.2", "skipped", None, changed=["never.txt"])
    with StateStore.open(tmp_path, readonly=True) as store:
        assert store.confirmations() == {"3.1"}
        written = store.harness_written()
    assert written == {"gen.py": FileHasher().sha(tmp_path / "gen.py"), "gone.txt": None}


def test_events_go_to_table_and_jsonl(tmp_path):
    with StateStore.open(tmp_path) as store:
        store.begin_run("r1", T0, [], True)
        store.event("run_start", ts=T0, run_id="r1")
        store.event("task_start", ts=T0, run_id="r1", task="1.1", worker="gw0")
        store.event("task_end", ts=T1, run_id="r1", task="1.1", outcome="passed")
        assert [e["event"] for e in store.events()] == ["run_start", "task_start", "task_end"]
    lines = (tmp_path / ".orch" / "events.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines][2] == {
        "ts": T1, "event": "task_end", "run_id": "r1", "task": "1.1", "outcome": "passed"}


def test_readonly_never_creates_or_writes(tmp_path):
    with StateStore.open(tmp_path, readonly=True) as store:
        assert store.last_results() == {} and store.confirmations() == set()
        try:
            store.confirm("1.1", T0)
        except Exception as exc:
            assert "read-only" in str(exc)
        else:
            raise AssertionError("a read-only store accepted a write")
    assert not (tmp_path / ".orch").exists()
    with StateStore.open(tmp_path) as store:
        store.begin_run("r1", T0, [], True)
        record(store, "r1", "1.1", "passed", fingerprint(tmp_path))
    before = sorted((p.name, p.stat().st_size) for p in (tmp_path / ".orch").iterdir())
    with StateStore.open(tmp_path, readonly=True) as store:
        assert store.last_results()["1.1"].outcome == "passed"
    assert sorted((p.name, p.stat().st_size) for p in (tmp_path / ".orch").iterdir()) == before


def test_a_thousand_tasks_load_back_in_one_query(tmp_path):
    # how fast this is, is measured by benchmarks/bench_rerun.py, not asserted here
    fp = fingerprint(tmp_path)
    with StateStore.open(tmp_path) as store:
        store.begin_run("r1", T0, [], True)
        for i in range(1000):
            store.event("task_end", run_id="r1", task=f"t{i}")
            record(store, "r1", f"t{i}", "passed", fp)
    with StateStore.open(tmp_path) as store:
        last = store.last_results()
        assert len(store.events("task_end")) == 1000
    assert len(last) == 1000 and {r.outcome for r in last.values()} == {"passed"}


CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from pytest_orch.fingerprint import FileHasher, compute
    from pytest_orch.state import StateStore

    root = Path(sys.argv[1])
    fp = compute({"id": "x", "run": "true"}, "1", [], root, {}, FileHasher())
    store = StateStore.open(root)
    store.begin_run("r1", "2026-11-21T20:00:00Z", [], True)
    print("ready", flush=True)
    i = 0
    while True:
        store.event("task_end", run_id="r1", task=f"t{i}")
        store.record_result("r1", f"t{i}", "passed", fp, "a", "b", 0.1, 1, None, [], {}, "m" * 200)
        print(i, flush=True)
        i += 1
    """
)


def test_sigkill_at_a_random_moment_loses_no_committed_result(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    time.sleep(random.uniform(0.05, 0.4))
    child.send_signal(signal.SIGKILL)
    out = child.stdout.read()
    child.wait()
    acknowledged = [f"t{line}" for line in out.split()]
    assert len(acknowledged) > 10, "the child wrote too little to test anything"
    # --orch-status right after the kill reads the committed results without writing anything.
    with StateStore.open(tmp_path, readonly=True) as store:
        assert set(acknowledged) <= set(store.last_results())
    with StateStore.open(tmp_path) as store:
        assert store.integrity_check() == "ok"
        last = store.last_results()
        assert set(acknowledged) <= set(last)
        assert len(last) <= len(acknowledged) + 1  # at most the one committed before its print
        # The next run notices the killed one.
        store.begin_run("r2", T0, [], True)
        assert store.runs()[1].outcome == "interrupted"
    lines = (tmp_path / ".orch" / "events.jsonl").read_text().splitlines()
    assert all(json.loads(line)["event"] == "task_end" for line in lines)
    assert len(lines) >= len(acknowledged)


def test_runs_in_a_row_as_the_plugin_drives_them(tmp_path):
    """An edit task and a dependent, across runs: up to date, hand edits, a forced rerun."""
    (tmp_path / "cfg.json").write_text('{"strict": false}')
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "x.ts").write_text("x")
    tasks = {"A": ({"id": "A", "type": "config_edit", "file": "cfg.json"}, [], ["cfg.json"]),
             "B": ({"id": "B", "type": "command", "run": "tsc"}, ["A"], ["src/*.ts"])}

    def run(number, force=()):
        reasons = {}
        hasher = FileHasher()
        with StateStore.open(tmp_path) as store:
            last = store.last_results()
            store.begin_run(f"r{number}", T0, [], True)
            tokens = {}
            for task_id, (definition, deps, globs) in tasks.items():
                inputs = [tmp_path / g for g in globs if "*" not in g]
                inputs += hasher.expand([g for g in globs if "*" in g], tmp_path)
                fp = compute(definition, "1", inputs, tmp_path, {d: tokens[d] for d in deps}, hasher)
                reason = why_stale(last.get(task_id), fp, tmp_path, hasher, force=task_id in force,
                                   harness_written=store.harness_written())
                reasons[task_id] = reason
                if reason is None:
                    rec = store.record_result(f"r{number}", task_id, "up_to_date", None, T0, T1, 0, 0,
                                              None, [], {}, "")
                else:
                    changed = []
                    if task_id == "A":
                        (tmp_path / "cfg.json").write_text('{"strict": true}')
                        changed = ["cfg.json"]
                    hasher.invalidate()
                    rec = record(store, f"r{number}", task_id, "passed", fp, changed=changed)
                tokens[task_id] = rec.token
            store.end_run(f"r{number}", T1, "passed")
        return reasons

    assert run(1) == {"A": "never ran", "B": "never ran"}
    assert run(2) == {"A": None, "B": None}
    (tmp_path / "src" / "x.ts").write_text("y")
    assert run(3) == {"A": None, "B": "input src/x.ts changed"}
    assert run(4, force={"A"}) == {"A": "forced", "B": "dependency A ran again"}
    assert run(5) == {"A": None, "B": None}
    (tmp_path / "cfg.json").write_text('{"strict": "by hand"}')
    assert run(6)["A"] == "output cfg.json changed since it was written"  # a hand edit of what A wrote
