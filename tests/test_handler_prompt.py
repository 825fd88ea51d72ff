"""Prompt tasks end to end: a real chat-completions server on 127.0.0.1 and a real stub CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from prompt_support import PYTHON, ChatServer, write_stub_cli

from conftest import assert_tasks


@pytest.fixture
def server():
    with ChatServer() as chat:
        yield chat


def http_plan(url: str, tasks: str, limits: str = "{per_second: 50}", extra: str = "") -> str:
    return textwrap.dedent("""\
        providers:
          local:
            http: {url: "%s", model: llama3%s}
            rate_limit: %s
            backoff_base: 0.05
        phase: 1
        vars: {PROJECT: demo}
        groups:
          - id: docs
            tasks:
        """) % (url, extra, limits) + textwrap.indent(textwrap.dedent(tasks), "      ")


def run_json(pytester: pytest.Pytester) -> dict:
    return json.loads((pytester.path / "reports" / "run.json").read_text())


def events(pytester: pytest.Pytester, kind: str) -> list[dict]:
    lines = (pytester.path / ".orch" / "events.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == kind]


ONE_TASK = """\
- id: "1.1"
  type: prompt
  provider: local
  template: summarise.md.j2
  inputs: ["src/*.ts"]
  target: docs/services.md
  expect: {contains: "# Answer"}
"""


def test_template_with_inputs_is_asked_once_and_written(pytester, server):
    pytester.makefile(".yaml", **{"phases/p1": http_plan(server.url, ONE_TASK)})
    template = pytester.path / "phases/templates/summarise.md.j2"
    template.parent.mkdir(parents=True)
    template.write_text("Summarise {{ PROJECT }}:\n"
                        "{% for path, text in inputs.items() %}== {{ path }}\n{{ text }}\n{% endfor %}")
    pytester.makefile(".ts", **{"src/auth": "export const auth = 1;", "src/billing": "export const bill = 2;"})
    pytester.runpytest().assert_outcomes(passed=1)
    assert len(server.prompts) == 1
    prompt = server.prompts[0]
    assert prompt.startswith("Summarise demo:\n== src/auth.ts\nexport const auth = 1;")
    assert "== src/billing.ts\nexport const bill = 2;" in prompt
    assert (pytester.path / "docs/services.md").read_text() == f"# Answer\n\n{prompt}\n"
    task = run_json(pytester)["tasks"][0]
    [call] = task["calls"]
    assert call["provider"] == "local" and call["model"] == "llama3" and call["http_status"] == 200
    assert call["attempt"] == 1 and call["waited_429s"] == 0
    assert call["tokens_in"] == len(prompt.split()) and call["tokens_out"] > 0
    assert events(pytester, "call")[0]["task_id"] == "1.1"

    # nothing changed: no call; a changed input asks again; --force asks again
    assert_tasks(pytester.runpytest(), up_to_date=1)
    assert len(server.prompts) == 1
    pytester.makefile(".ts", **{"src/auth": "export const auth = 3;"})
    pytester.runpytest().assert_outcomes(passed=1)
    assert len(server.prompts) == 2 and "auth = 3" in server.prompts[1]
    pytester.runpytest("--force").assert_outcomes(passed=1)
    assert len(server.prompts) == 3


def test_a_changed_model_asks_again(pytester, server):
    task = '- {id: "1.1", type: prompt, provider: local, prompt: "Hello {{ PROJECT }}", target: out.md}\n'
    pytester.makefile(".yaml", **{"phases/p1": http_plan(server.url, task)})
    pytester.runpytest().assert_outcomes(passed=1)
    assert_tasks(pytester.runpytest(), up_to_date=1)
    pytester.makefile(".yaml", **{"phases/p1": http_plan(server.url, task).replace("llama3", "llama4")})
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*PASSED (definition changed)*"])
    assert server.prompts == ["Hello demo"] * 2


def test_dry_run_shows_the_prompt_and_calls_nothing(pytester, server):
    task = '- {id: "1.1", type: prompt, provider: local, prompt: "Hello {{ PROJECT }}", target: out.md}\n'
    pytester.makefile(".yaml", **{"phases/p1": http_plan(server.url, task, extra=", api_key_env: ORCH_TEST_KEY")})
    result = pytester.runpytest("--dry-run", "-rA")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*--- prompt for provider local (http, llama3; 50/second) ---*", "Hello demo",
                                 "*would ask provider local (http, llama3; 50/second) and write out.md*"])
    assert server.prompts == []
    assert not (pytester.path / "out.md").exists()
    assert not (pytester.path / ".orch").exists()


def test_invalid_json_fails_the_attempt_and_retries_apply(pytester, server, tmp_path):
    schema = {"type": "object", "required": ["tests"], "properties": {"tests": {"type": "array"}}}
    pytester.makefile(".json", **{"schemas/plan": json.dumps(schema)})
    server.invalid_first = 1
    server.answer = lambda prompt: '```json\n{"tests": ["a", "b"]}\n```'
    task = """\
    - id: "1.1"
      type: prompt
      provider: local
      prompt: "List the tests as JSON"
      target: out/tests.json
      expect: {format: json, schema: schemas/plan.json}
      retries: 1
    """
    pytester.makefile(".yaml", **{"phases/p1": http_plan(server.url, task)})
    result = pytester.runpytest()
    assert result.parseoutcomes() == {"passed": 1, "rerun": 1}
    assert json.loads((pytester.path / "out/tests.json").read_text()) == {"tests": ["a", "b"]}
    entry = run_json(pytester)["tasks"][0]
    assert entry["attempts"] == 2
    assert [c["attempt"] for c in entry["calls"]] == [1, 2]


def test_an_answer_that_breaks_the_schema_fails_with_the_path(pytester, server):
    pytester.makefile(".json", **{"schemas/plan": json.dumps({"type": "object", "required": ["tests"]})})
    server.answer = lambda prompt: '{"other": 1}'
    task = ('- {id: "1.1", type: prompt, provider: local, prompt: "x", target: t.json, '
            'expect: {format: json, schema: schemas/plan.json}}\n')
    pytester.makefile(".yaml", **{"phases/p1": http_plan(server.url, task)})
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the answer of local does not match schemas/plan.json at /: "
                                 "'tests' is a required property*"])
    assert not (pytester.path / "t.json").exists()


def test_429_is_waited_out_without_using_retries(pytester, server):
    server.throttle_first = 2
    server.retry_after = "0.3"
    task = '- {id: "1.1", type: prompt, provider: local, prompt: "one two three", target: out.md}\n'
    plan = http_plan(server.url, task).replace(
        "backoff_base: 0.05", "backoff_base: 0.05\n    price_per_1k_tokens: {input: 1.0, output: 2.0}")
    pytester.makefile(".yaml", **{"phases/p1": plan})
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    # tokens: 3 in; the answer "# Answer\n\none two three\n" is 5 words out
    result.stdout.fnmatch_lines(["provider local: 3 calls, 2 429s, 3 tokens in, 5 out, cost 0.0130"])
    assert len(server.times) == 3
    # Retry-After honoured: no request came sooner than 0.3 s after a 429
    assert server.times[1] - server.times[0] >= 0.3 and server.times[2] - server.times[1] >= 0.3
    entry = run_json(pytester)["tasks"][0]
    assert entry["attempts"] == 1
    assert [c["http_status"] for c in entry["calls"]] == [429, 429, 200]
    assert entry["calls"][-1]["waited_429s"] == 2
    assert entry["calls"][-1]["cost"] == 0.013 and "cost" not in entry["calls"][0]


def test_back_off_is_bounded(pytester, server):
    server.throttle_first = 100
    server.retry_after = None  # exponential back-off with jitter, capped by max_backoff_wait
    task = '- {id: "1.1", type: prompt, provider: local, prompt: "x", target: out.md}\n'
    plan = http_plan(server.url, task).replace("backoff_base: 0.05", "backoff_base: 0.05\n    max_backoff_wait: 0.5")
    pytester.makefile(".yaml", **{"phases/p1": plan})
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*gave up after * quota answers from local and * s of back-off "
                                 "(max_backoff_wait 0.5 s): HTTP 429*"])
    assert 2 <= len(server.times) < 100


def test_the_days_quota_gone_stops_dispatch_for_the_run(pytester, server):
    server.throttle_first = 1
    server.throttle_body = '{"error": {"message": "daily quota exceeded for this key"}}'
    tasks = "".join(f'- {{id: "1.{i}", type: prompt, provider: local, prompt: "q{i}", target: out{i}.md}}\n'
                    for i in range(1, 4))
    pytester.makefile(".yaml", **{"phases/p1": http_plan(server.url, tasks)})
    result = pytester.runpytest("-rs")
    assert result.ret == 1
    result.assert_outcomes(failed=1, skipped=2)
    result.stdout.fnmatch_lines(["*local says its daily quota is spent: HTTP 429*",
                                 "*1.2: daily quota of local reached (HTTP 429: *daily quota exceeded*), "
                                 "resets at 00:00 UTC (in * h * min)*"])
    assert len(server.times) == 1


def test_daily_quota_holds_across_two_runs(pytester, server):
    tasks = "".join(f'- {{id: "1.{i}", type: prompt, provider: local, prompt: "q{i}", target: out{i}.md}}\n'
                    for i in range(1, 9))
    pytester.makefile(".yaml", **{"phases/p1": http_plan(server.url, tasks, "{per_second: 50, per_day: 5}")})
    first = pytester.runpytest()
    assert first.ret == 1
    first.assert_outcomes(passed=5, skipped=3)
    second = pytester.runpytest("-rs")
    assert second.ret == 1
    assert_tasks(second, up_to_date=5, skipped=3)  # three still over the quota
    second.stdout.fnmatch_lines(["*1.6: daily quota of local reached: 5/5, resets at 00:00 UTC (in * h * min)*"])
    assert len(server.times) == 5
    assert run_json(pytester)["outcome"] == "blocked"


def test_missing_api_key_stops_a_real_run_before_any_task(pytester, server, monkeypatch):
    monkeypatch.delenv("ORCH_TEST_KEY", raising=False)
    task = '- {id: "1.1", type: prompt, provider: local, prompt: "x", target: out.md}\n'
    pytester.makefile(".yaml", **{"phases/p1": http_plan(server.url, task, extra=", api_key_env: ORCH_TEST_KEY")})
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*provider 'local': the environment variable ORCH_TEST_KEY (its api_key_env) "
                                 "is not set*"])
    assert server.times == []
    assert pytester.runpytest("--collect-only").ret == 0


def test_the_key_is_sent_and_masked_everywhere(pytester, server, monkeypatch):
    key = "sk-test-0123456789abcdef"
    monkeypatch.setenv("ORCH_TEST_KEY", key)
    monkeypatch.setenv("OTHER_SECRET", "hunter2-hunter2")
    server.error_status = 401  # the server echoes the Authorization header in its error
    task = ('- {id: "1.1", type: prompt, provider: local, prompt: "x", target: out.md}\n'
            '- {id: "1.2", type: command, run: "echo hunter2-hunter2"}\n')
    plan = "secrets: [OTHER_SECRET]\n" + http_plan(server.url, task, extra=", api_key_env: ORCH_TEST_KEY")
    pytester.makefile(".yaml", **{"phases/p1": plan})
    pytester.makepyfile(test_plain="""
        import os

        def test_prints_the_secret():
            print("leaked:", os.environ["OTHER_SECRET"])
            assert False, os.environ["ORCH_TEST_KEY"]
        """)
    result = pytester.runpytest("-rA", "-p", "no:cacheprovider", "phases", "test_plain.py")
    result.assert_outcomes(failed=2, passed=1)
    assert server.auth == [f"Bearer {key}"]
    result.stdout.fnmatch_lines(["*HTTP 401 from *: {\"error\": \"bad key Bearer ***\"}*"])
    for path in ("reports/run.json", "reports/junit.xml", ".orch/events.jsonl"):
        text = (pytester.path / path).read_text()
        assert key not in text and "hunter2-hunter2" not in text, path
    assert "leaked: ***" in (pytester.path / "reports/junit.xml").read_text()


def stub_plan(stub: str, tasks: str, patterns: bool = True) -> str:
    quota = '    quota_patterns: ["429", "RESOURCE_EXHAUSTED"]\n' if patterns else ""
    return textwrap.dedent(f"""\
        providers:
          stub:
            command: ["{PYTHON}", "{stub}", -m, stub-1, -p, "{{prompt}}"]
            rate_limit: {{per_minute: 600}}
            backoff_base: 0.05
        """) + quota + textwrap.dedent("""\
        phase: 1
        groups:
          - id: g
            tasks:
        """) + textwrap.indent(textwrap.dedent(tasks), "      ")


def test_stub_cli_quota_errors_are_waited_out(pytester, monkeypatch):
    stub = write_stub_cli(pytester.path)
    monkeypatch.setenv("STUB_COUNTER", str(pytester.path / "calls.txt"))
    monkeypatch.setenv("STUB_QUOTA_FIRST", "2")
    task = ('- {id: "1.1", type: prompt, provider: stub, prompt: "Summarise it", target: s.md, '
            'expect: {format: markdown}}\n')
    pytester.makefile(".yaml", **{"phases/p1": stub_plan(stub, task)})
    pytester.runpytest().assert_outcomes(passed=1)
    assert (pytester.path / "calls.txt").read_text() == "3"
    assert (pytester.path / "s.md").read_text() == "# Summary\n\nSummarise it\n"
    calls = run_json(pytester)["tasks"][0]["calls"]
    assert [c["exit_code"] for c in calls] == [1, 1, 0] and [c["throttled"] for c in calls] == [True, True, False]


def test_stub_cli_failure_without_quota_pattern_fails(pytester, monkeypatch):
    stub = write_stub_cli(pytester.path)
    monkeypatch.setenv("STUB_COUNTER", str(pytester.path / "calls.txt"))
    monkeypatch.setenv("STUB_QUOTA_FIRST", "1")
    task = '- {id: "1.1", type: prompt, provider: stub, prompt: "x", target: s.md}\n'
    pytester.makefile(".yaml", **{"phases/p1": stub_plan(stub, task, patterns=False)})
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*exited with code 1: Error: 429 RESOURCE_EXHAUSTED*"])


def many_tasks(count: int) -> str:
    return "".join(f'- {{id: "1.{i}", type: prompt, provider: local, prompt: "question {i}", target: out/{i}.md}}\n'
                   for i in range(1, count + 1))


def test_four_workers_keep_per_second_and_never_ask_twice(pytester, server):
    pytester.makefile(".yaml", **{"phases/p1": http_plan(server.url, many_tasks(100), "{per_second: 10}")})
    result = pytester.runpytest_subprocess("-n", "4", "--orch-parallel=always")
    result.assert_outcomes(passed=100)
    assert server.max_in_window(1.0) <= 10, "the server saw more than 10 requests within one second"
    assert sorted(server.prompts) == sorted(f"question {i}" for i in range(1, 101))
    workers = {t["worker"] for t in run_json(pytester)["tasks"]}
    assert len(workers) > 1
    again = pytester.runpytest_subprocess("-n", "4", "--orch-parallel=always")
    assert_tasks(again, up_to_date=100)
    assert len(server.prompts) == 100


def test_concurrency_holds_over_all_workers(pytester, server):
    server.delay = 0.3
    limits = "{per_second: 100}\n    concurrency: 2"
    pytester.makefile(".yaml", **{"phases/p1": http_plan(server.url, many_tasks(8), limits)})
    pytester.runpytest_subprocess("-n", "4", "--orch-parallel=always").assert_outcomes(passed=8)
    assert 1 <= server.max_in_flight <= 2  # never more than the limit, whatever the timing


def test_daily_quota_under_four_workers(pytester, server):
    pytester.makefile(".yaml", **{"phases/p1": http_plan(server.url, many_tasks(8), "{per_second: 50, per_day: 5}")})
    result = pytester.runpytest_subprocess("-n", "4", "--orch-parallel=always", "-rs")
    assert result.ret == 1
    result.assert_outcomes(passed=5, skipped=3)
    result.stdout.fnmatch_lines(["*daily quota of local reached: *, resets at 00:00 UTC*"])
    assert len(server.times) == 5


def test_stdin_provider_and_a_timeout_that_kills_the_tool(pytester):
    tool = pytester.path / "slow_llm.py"
    tool.write_text(textwrap.dedent("""\
        import subprocess, sys
        prompt = sys.stdin.read()
        if "slow" in prompt:
            child = subprocess.Popen(["sleep", "30"])
            open("child.pid", "w").write(str(child.pid))
            child.wait()
        print("answer to " + prompt)
        """))
    plan = textwrap.dedent(f"""\
        providers:
          tool:
            command: ["{PYTHON}", slow_llm.py]
            stdin: true
            timeout: 1
        phase: 1
        groups:
          - id: g
            tasks:
              - {{id: "1.1", type: prompt, provider: tool, prompt: "quick question", target: a.md}}
              - {{id: "1.2", type: prompt, provider: tool, prompt: "slow question", target: b.md}}
        """)
    pytester.makefile(".yaml", **{"phases/p1": plan})
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    assert (pytester.path / "a.md").read_text() == "answer to quick question\n"
    result.stdout.fnmatch_lines(["*task 1.2 (prompt) failed: python slow_llm.py gave no answer within 1 s*"])
    pid = int((pytester.path / "child.pid").read_text())
    import psutil
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_a_run_killed_during_a_call_keeps_what_finished(pytester, server):
    server.slow_prompts = {"question 3": 60.0}
    pytester.makefile(".yaml", **{"phases/p1": http_plan(server.url, many_tasks(3))})
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider"], cwd=pytester.path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while "question 3" not in server.prompts:  # the third call is on the wire
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    server.slow_prompts = {}
    result = pytester.runpytest()
    assert_tasks(result, passed=1, up_to_date=2)  # the two answers that finished are kept
    assert server.prompts == ["question 1", "question 2", "question 3", "question 3"]
    assert (pytester.path / "out/3.md").read_text() == "# Answer\n\nquestion 3\n"
