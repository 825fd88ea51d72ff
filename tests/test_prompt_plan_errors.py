"""Bad providers and prompt tasks are plan errors with file:line, and nothing runs."""

from __future__ import annotations

import textwrap

import pytest

PROVIDERS = """\
providers:
  gemini:
    command: [gemini, -p, "{prompt}"]
    rate_limit: {per_minute: 50, per_day: 1000}
    quota_patterns: ["429", "RESOURCE_EXHAUSTED"]
"""


def plan(task: str, providers: str = PROVIDERS) -> str:
    return providers + textwrap.dedent("""\
        phase: 1
        groups:
          - id: docs
            tasks:
        """) + textwrap.indent(textwrap.dedent(task), "      ")


@pytest.mark.parametrize("text, message", [
    pytest.param(plan('- {id: "1.1", type: prompt, provider: gemnii, prompt: "x", target: a.md}\n'),
                 "*phases/p1.yaml:10: task '1.1': unknown provider 'gemnii' (providers: gemini); "
                 "did you mean 'gemini'?*", id="unknown-provider"),
    pytest.param(plan('- {id: "1.1", type: prompt, prompt: "x", target: a.md}\n'),
                 "*phases/p1.yaml:10: task '1.1': prompt needs 'provider'*", id="no-provider"),
    pytest.param(plan('- {id: "1.1", type: prompt, provider: gemini, prompt: "x", template: t.j2, target: a.md}\n'),
                 "*phases/p1.yaml:10: task '1.1': give either 'template' or 'prompt', not both*",
                 id="prompt-and-template"),
    pytest.param(plan('- {id: "1.1", type: prompt, provider: gemini, prompt: "x", target: a.md}\n',
                      PROVIDERS.replace("per_minute: 50", "per_minute: 0")),
                 "*phases/p1.yaml:4: provider 'gemini': rate_limit: per_minute must be a whole number >= 1, "
                 "not 0*", id="zero-rate"),
    pytest.param(plan('- {id: "1.1", type: prompt, provider: gemini, prompt: "x", target: a.md}\n',
                      PROVIDERS.replace("per_day: 1000", "per_day: -5")),
                 "*phases/p1.yaml:4: provider 'gemini': rate_limit: per_day must be a whole number >= 1, "
                 "not -5*", id="negative-rate"),
    pytest.param(plan('- {id: "1.1", type: prompt, provider: gemini, prompt: "x", target: a.md}\n',
                      PROVIDERS.replace('"RESOURCE_EXHAUSTED"', '"(?i)quota (exceeded"')),
                 "*phases/p1.yaml:5: provider 'gemini': quota_patterns: '(?i)quota (exceeded' is not a valid "
                 "regular expression: missing ), unterminated subpattern*", id="bad-regex"),
    pytest.param(plan('- {id: "1.1", type: prompt, provider: gemini, prompt: "x", target: a.json,\n'
                      '   expect: {format: json, schema: schemas/missing.json}}\n'),
                 "*phases/p1.yaml:11: task '1.1': expect.schema 'schemas/missing.json': no such file*",
                 id="missing-schema"),
    pytest.param(plan('- {id: "1.1", type: prompt, provider: gemini, prompt: "x", target: a.md}\n',
                      "providers:\n  gemini:\n    rate_limit: {per_second: 1}\n"),
                 "*phases/p1.yaml:2: provider 'gemini' needs either 'command' or 'http', not neither*",
                 id="no-command-or-http"),
    pytest.param(plan('- {id: "1.1", type: prompt, provider: gemini, prompt: "x", target: a.md}\n',
                      PROVIDERS.replace('"{prompt}"', "hello")),
                 "*phases/p1.yaml:3: provider 'gemini': the command needs a '{prompt}' argument, or 'stdin: true'*",
                 id="no-prompt-argument"),
    pytest.param(plan('- {id: "1.1", type: prompt, provider: gemini, prompt: "x", target: a.md}\n',
                      PROVIDERS + "    concurency: 2\n"),
                 "*phases/p1.yaml:6: unknown key 'concurency' in provider 'gemini'; did you mean 'concurrency'?*",
                 id="misspelt-key"),
    pytest.param(plan('- {id: "1.1", type: prompt, provider: gemini, prompt: "x", target: a.md}\n',
                      "providers:\n  local:\n    http: {url: 'ftp://x', model: m}\n"),
                 "*phases/p1.yaml:3: provider 'local': http.url must be an http:// or https:// URL, not 'ftp://x'*",
                 id="bad-url"),
])
def test_bad_provider_or_prompt_task_is_a_plan_error(pytester, text, message):
    pytester.makefile(".yaml", **{"phases/p1": text})
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([message])
    result.stdout.no_fnmatch_line("*Traceback*")
    assert not (pytester.path / ".orch").exists()


def test_a_provider_name_is_unique_across_plan_files(pytester):
    pytester.makefile(".yaml", **{
        "phases/p1": plan('- {id: "1.1", type: prompt, provider: gemini, prompt: "x", target: a.md}\n'),
        "phases/p2": PROVIDERS + "phase: 2\ngroups: []\n",
    })
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*phases/p2.yaml:2: provider 'gemini' is defined twice (first at phases/p1.yaml:2)*"])


def test_providers_in_a_phases_list_file_and_plan_variables(pytester):
    text = textwrap.dedent("""\
        vars: {MODEL: gemini-2.5-pro}
        providers:
          gemini:
            command: [gemini, -m, "${MODEL}", -p, "{prompt}"]
        phases:
          - phase: 1
            groups:
              - id: g
                tasks:
                  - {id: "1.1", type: prompt, provider: gemini, prompt: "x", target: a.md}
        """)
    pytester.makefile(".yaml", **{"phases/all": text})
    result = pytester.runpytest("--collect-only", "--var", "MODEL=flash")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*1.1*prompt*"])
