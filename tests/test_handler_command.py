"""command: real processes, output capture, creates, ok_codes, timeouts that kill the whole tree."""

from __future__ import annotations

import signal
import sys
import threading
import time

import psutil
import pytest
from handler_support import assert_status, make_ctx, make_task, snapshot, write
from pytest_orch.handlers.command import OUTPUT_LIMIT, CommandHandler

from pytest_orch.errors import HandlerError, PlanError

HANDLER = CommandHandler()


def run(root, dry_run=False, timeout=None, **params):
    task = make_task("command", **params)
    HANDLER.validate(task)
    return HANDLER.run(task, make_ctx(root, dry_run=dry_run, timeout=timeout))


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_for(path, seconds=5.0):
    deadline = time.monotonic() + seconds
    while not (path.exists() and path.read_text().strip()):
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)
    return int(path.read_text())


def test_string_is_split_like_a_shell_and_output_is_kept(tmp_path):
    outcome = run(tmp_path, run="printf '%s|' 'a b' c")
    assert_status(outcome, "passed")
    assert outcome.output == "a b|c|"


def test_list_form_and_stderr_in_output(tmp_path):
    outcome = run(tmp_path, run=[sys.executable, "-c",
                                 "import sys; print('out'); sys.stderr.write('err\\n')"])
    assert_status(outcome, "passed")
    assert "out\n" in outcome.output and "err\n" in outcome.output


def test_shell_only_when_asked(tmp_path):
    assert run(tmp_path, run="echo $HOME && echo two").output.startswith("$HOME && echo two")
    assert run(tmp_path, run="echo a && echo b", shell=True).output == "a\nb\n"


def test_cwd_and_env(tmp_path):
    (tmp_path / "sub").mkdir()
    outcome = run(tmp_path, run="sh -c 'pwd; echo $ORCH_X'", cwd="sub", env={"ORCH_X": 42})
    assert outcome.output == f"{(tmp_path / 'sub').resolve()}\n42\n"


def test_default_cwd_is_the_project_root_with_symlinks_resolved(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    outcome = run(tmp_path / "link", run=[sys.executable, "-c", "import os; print(os.getcwd())"])
    assert outcome.output == f"{(tmp_path / 'real').resolve()}\n"


def test_stdin_is_empty_and_the_program_holds_only_its_three_descriptors(tmp_path):
    """stdin is /dev/null, stdout and stderr one pipe; nothing else of this process leaks into it."""
    probe = ("import os, sys; fds = os.listdir('/proc/self/fd'); "  # the listing holds one descriptor itself
             "print(repr(sys.stdin.read()), os.readlink('/proc/self/fd/0'), "
             "os.readlink('/proc/self/fd/1') == os.readlink('/proc/self/fd/2'), len(fds))")
    for _ in range(2):  # the second command gets the same: the process's /dev/null stays its own
        outcome = run(tmp_path, run=[sys.executable, "-c", probe])
        assert_status(outcome, "passed")
        assert outcome.output == "'' /dev/null True 4\n"


def test_a_background_child_holding_the_output_does_not_hold_the_task(tmp_path):
    """The program exits while a child it started keeps the output pipe open: the task ends with
    what was written, DRAIN_WAIT after the exit, without waiting for the child."""
    started = time.monotonic()
    outcome = run(tmp_path, run="echo before; sleep 120 & echo $! > bg.pid", shell=True)
    took = time.monotonic() - started
    try:
        assert_status(outcome, "passed")
        assert outcome.output == "before\n"
        assert took < 100, "the task waited for its background child"
    finally:
        psutil.Process(int((tmp_path / "bg.pid").read_text())).kill()


def test_non_ok_exit_fails_with_last_line(tmp_path):
    outcome = run(tmp_path, run="sh -c 'echo first; echo boom >&2; exit 3'")
    assert_status(outcome, "failed")
    assert outcome.message == "exit code 3 (expected 0): boom"
    assert_status(run(tmp_path, run="sh -c 'exit 3'", ok_codes=[0, 3]), "passed")


def test_missing_program_fails_cleanly(tmp_path):
    outcome = run(tmp_path, run="no-such-program-orch --x")
    assert_status(outcome, "failed")
    assert outcome.message.startswith("cannot run 'no-such-program-orch'")


def test_creates_makes_a_second_run_up_to_date(tmp_path):
    params = dict(run="sh -c 'echo built > out.txt'", creates="out.txt")
    first = run(tmp_path, **params)
    assert_status(first, "passed")
    assert first.changed == ["out.txt"]
    (tmp_path / "out.txt").write_text("kept\n")
    second = run(tmp_path, **params)
    assert_status(second, "up_to_date")
    assert (tmp_path / "out.txt").read_text() == "kept\n"


def test_dry_run_runs_nothing(tmp_path):
    before = snapshot(tmp_path)
    outcome = run(tmp_path, dry_run=True, run=["sh", "-c", "echo x > made.txt"])
    assert_status(outcome, "passed")
    assert outcome.message == "would run: sh -c 'echo x > made.txt'"
    assert snapshot(tmp_path) == before


def test_output_keeps_the_tail(tmp_path):
    size = OUTPUT_LIMIT + 5000
    outcome = run(tmp_path, run=[sys.executable, "-c",
                                 f"import sys; sys.stdout.write('a' * {size - 3} + 'END')"])
    assert outcome.output.startswith("[... 5000 bytes cut ...]\n")
    assert outcome.output.endswith("END")
    assert len(outcome.output) == OUTPUT_LIMIT + len("[... 5000 bytes cut ...]\n")


def test_timeout_kills_the_whole_group(tmp_path):
    script = "sleep 60 & echo $! > bg.pid; echo $$ > sh.pid; sleep 60"
    started = time.monotonic()
    outcome = run(tmp_path, timeout=1, run=["sh", "-c", script])
    assert_status(outcome, "failed")
    assert outcome.message == "timed out after 1 s"
    assert time.monotonic() - started < 5
    for name in ("bg.pid", "sh.pid"):
        assert gone(int((tmp_path / name).read_text())), f"{name} still running"


def test_timeout_also_kills_a_child_that_left_the_group(tmp_path):
    script = "setsid sleep 60 & echo $! > escaped.pid; sleep 60"
    outcome = run(tmp_path, timeout=1, run=["sh", "-c", script])
    assert_status(outcome, "failed")
    assert gone(int((tmp_path / "escaped.pid").read_text()))


def test_interrupt_while_waiting_kills_the_group_and_propagates(tmp_path):
    """A signal handler raising inside the wait (pytest-timeout's signal method) kills the tree."""

    class Interrupted(BaseException):
        pass

    def on_alarm(signum, frame):
        raise Interrupted()

    pid_file = tmp_path / "bg.pid"
    task = make_task("command", run=["sh", "-c", "sleep 60 & echo $! > bg.pid; sleep 60"])
    main = threading.get_ident()

    def interrupt():
        wait_for(pid_file)
        signal.pthread_kill(main, signal.SIGALRM)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    helper = threading.Thread(target=interrupt)
    started = time.monotonic()
    try:
        helper.start()
        with pytest.raises(Interrupted):
            HANDLER.run(task, make_ctx(tmp_path))
    finally:
        signal.signal(signal.SIGALRM, previous)
        helper.join()
    assert time.monotonic() - started < 5
    assert gone(int(pid_file.read_text()))


def test_cwd_outside_the_root_is_refused(tmp_path):
    with pytest.raises(HandlerError, match="cwd: '..' is outside the project root"):
        run(tmp_path / "", run="true", cwd="..")


@pytest.mark.parametrize(("params", "message"), [
    ({}, "command needs 'run'"),
    ({"run": ""}, "'run' must not be empty"),
    ({"run": []}, "'run' must not be an empty list"),
    ({"run": "echo 'open"}, "'run' cannot be split like a shell"),
    ({"run": ["a", {"b": 1}]}, "every item of 'run' must be a string"),
    ({"run": ["a"], "shell": True}, "'shell: true' needs 'run' as a string"),
    ({"run": "a", "shell": "yes"}, "'shell' must be true or false"),
    ({"run": "a", "ok_codes": ["0"]}, "'ok_codes' must be a non-empty list of integers"),
    ({"run": "a", "env": ["A=1"]}, "'env' must be a mapping"),
])
def test_validate(params, message):
    with pytest.raises(PlanError) as info:
        HANDLER.validate(make_task("command", **params))
    assert f"task '1.1': {message}" in str(info.value)


def test_inputs_are_project_scripts_it_names(tmp_path):
    write(tmp_path, "scripts/gen.py", "print(1)\n")
    task = make_task("command", run="python scripts/gen.py --out missing.txt")
    assert HANDLER.inputs(task, make_ctx(tmp_path)) == [(tmp_path / "scripts/gen.py").resolve()]


def test_keys_match_the_contract():
    assert HANDLER.keys == {"run", "shell", "cwd", "env", "creates", "ok_codes"}
    assert HANDLER.writes_files is False
