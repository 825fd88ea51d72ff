"""notify: after the reports, a project script or a webhook (a real HTTP server on 127.0.0.1) hears the outcome."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

SECRET = "s3cr3t-T0KEN-do-not-print"
PASSING = """
    phase: 1
    notify:
      - when: [always]
        webhook: {url_env: ORCH_TEST_HOOK}
        retries: 2
        retry_delay: 0.05
    groups:
      - id: a
        tasks:
          - {id: "1.1", name: Say hi, type: command, run: "true"}
    """
BLOCKED = """
    phase: 1
    notify:
      - when: [failure, blocked]
        command: [scripts/notify.sh, extra-arg]
      - when: [success]
        command: scripts/never.sh
    groups:
      - id: a
        tasks:
          - {id: "1.1", type: command, run: "true"}
          - {id: "1.2", type: manual, instructions: "Press the button"}
    """


class Hook:
    """A webhook receiver on 127.0.0.1 that answers 500 to the first ``fail`` requests."""

    def __init__(self, fail: int) -> None:
        self.fail = fail
        self.bodies: list[dict] = []
        self.paths: list[str] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the name http.server calls
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.bodies.append(json.loads(body))
                hook.paths.append(self.path)
                status = 500 if len(hook.bodies) <= hook.fail else 200
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook/{SECRET}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook(request, monkeypatch):
    server = Hook(fail=getattr(request, "param", 1))
    monkeypatch.setenv("ORCH_TEST_HOOK", server.url)
    yield server
    server.close()


def everything_written(root):
    texts = []
    for path in [*root.joinpath("reports").iterdir(), root / ".orch" / "events.jsonl"]:
        texts.append(path.read_text(errors="replace"))
    texts.append(root.joinpath(".orch", "state.db").read_bytes().decode("latin-1"))
    return "\n".join(texts)


def test_a_webhook_that_fails_once_is_retried_and_the_url_never_shows(pytester, hook):
    pytester.makefile(".yaml", **{"phases/p1": PASSING})
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert result.ret == 0
    assert len(hook.bodies) == 2 and hook.paths == [f"/hook/{SECRET}"] * 2
    body = hook.bodies[-1]
    assert body["text"].startswith("pytest-orch run ") and "passed" in body["text"]
    assert body["run"]["outcome"] == "passed" and body["run"]["counts"] == {"passed": 1}
    result.stdout.fnmatch_lines(["notify: webhook $ORCH_TEST_HOOK: sent (2 attempts)"])
    run = json.loads((pytester.path / "reports" / "run.json").read_text())
    assert run["notifications"] == [{"notifier": "webhook $ORCH_TEST_HOOK", "ok": True, "attempts": 2, "error": ""}]
    assert SECRET not in result.stdout.str() + result.stderr.str()
    assert SECRET not in everything_written(pytester.path)


@pytest.mark.parametrize("hook", [99], indirect=True)
def test_a_notifier_that_keeps_failing_is_reported_and_the_exit_status_stays(pytester, hook):
    pytester.makefile(".yaml", **{"phases/p1": PASSING})
    result = pytester.runpytest()
    assert result.ret == 0 and len(hook.bodies) == 3  # one attempt and two retries
    result.stdout.fnmatch_lines(["notify: webhook $ORCH_TEST_HOOK: FAILED (3 attempts): HTTP 500 *"
                                 "(the exit status is unchanged)"])
    run = json.loads((pytester.path / "reports" / "run.json").read_text())
    assert run["notifications"][0]["ok"] is False and run["notifications"][0]["error"].startswith("HTTP 500")
    assert SECRET not in result.stdout.str() + everything_written(pytester.path)


def test_a_webhook_nobody_listens_to_names_no_url(pytester, monkeypatch):
    monkeypatch.setenv("ORCH_TEST_HOOK", f"http://127.0.0.1:9/{SECRET}")  # the discard port: refused
    pytester.makefile(".yaml", **{"phases/p1": PASSING})
    result = pytester.runpytest()
    assert result.ret == 0
    result.stdout.fnmatch_lines(["notify: webhook $ORCH_TEST_HOOK: FAILED (3 attempts): cannot connect*"])
    assert SECRET not in result.stdout.str() + result.stderr.str() + everything_written(pytester.path)


def test_a_command_hears_blocked_and_reads_run_json(pytester):
    pytester.makefile(".yaml", **{"phases/p1": BLOCKED})
    script = pytester.path / "scripts" / "notify.sh"
    script.parent.mkdir()
    script.write_text('#!/bin/sh\necho "$ORCH_OUTCOME $1" > heard.txt\n'
                      'python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[\'outcome\'])" '
                      '"$ORCH_RUN_JSON" >> heard.txt\n')
    script.chmod(0o755)
    result = pytester.runpytest()
    assert result.ret == 1  # the manual step blocks; notifying does not change that
    heard = (pytester.path / "heard.txt").read_text().split()
    assert heard[:2] == ["blocked", "extra-arg"] and heard[2] in ("failed", "blocked")
    result.stdout.fnmatch_lines(["notify: command scripts/notify.sh extra-arg: sent"])
    result.stdout.no_fnmatch_line("*never.sh*")


@pytest.mark.parametrize("args", [["--dry-run"], ["--collect-only"], ["--orch-status"], ["--orch-graph", "json"]])
def test_nothing_is_sent_when_nothing_ran(pytester, hook, args):
    pytester.makefile(".yaml", **{"phases/p1": PASSING})
    pytester.runpytest(*args)
    assert hook.bodies == []


@pytest.mark.parametrize("notify, line, message", [
    ("[{when: [sometimes], webhook: {url_env: ORCH_TEST_HOOK}}]", 2,
     "notify: unknown when 'sometimes' (known: success, failure, blocked, always)"),
    ("[{when: [always], webhook: {url_env: ORCH_NOT_SET_ANYWHERE}}]", 2,
     "notify: environment variable ORCH_NOT_SET_ANYWHERE (webhook url_env) is not set"),
    ("[{when: [always], command: [/usr/bin/curl, x]}]", 2,
     "notify: command '/usr/bin/curl' is outside the project root"),
    ("[{when: [always], command: [../elsewhere.sh]}]", 2,
     "notify: command '../elsewhere.sh' is outside the project root"),
    ("[{when: [always], command: curl x}]", 2, "notify: command 'curl' is outside the project*"),
    ("[{when: [always], webhook: {url: 'http://x'}}]", 2, "notify: unknown key 'url' in webhook*"),
    ("[{when: [always]}]", 2, "a notifier needs exactly one of 'command' and 'webhook'"),
])
def test_bad_notify_input_is_a_plan_error_with_file_and_line(pytester, hook, notify, line, message):
    pytester.makefile(".yaml", **{"phases/p1": f"""
        phase: 1
        notify: {notify}
        groups:
          - id: a
            tasks:
              - {{id: "1.1", type: command, run: "true"}}
        """})
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([f"*phases/p1.yaml:{line}: {message}*"])
    result.stdout.no_fnmatch_line("*Traceback*")
    assert hook.bodies == []


def test_the_ini_option_works_like_the_plan_key_and_its_mistakes_are_usage_errors(pytester, hook):
    pytester.makefile(".yaml", **{"phases/p1": """
        phase: 1
        groups:
          - id: a
            tasks:
              - {id: "1.1", type: command, run: "true"}
        """})
    # ini files drop the indentation of continuation lines: the value is YAML in flow style
    pytester.makeini("""
        [pytest]
        orch_notify = [{when: [success], webhook: {url_env: ORCH_TEST_HOOK},
                        retry_delay: 0.05}]
        """)
    result = pytester.runpytest()
    assert result.ret == 0 and len(hook.bodies) == 2
    pytester.makeini("""
        [pytest]
        orch_notify = [{when: [later], webhook: {url_env: ORCH_TEST_HOOK}}]
        """)
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*tox.ini:1: orch_notify: notify: unknown when 'later'*"])
    assert len(hook.bodies) == 2
