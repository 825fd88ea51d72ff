"""Every kind of plan mistake stops the run before any task, with one file:line line and no traceback."""

import pytest

GOOD_TASK = '{id: "1.1", type: command, run: "touch ran.txt"}'


def run_bad_plan(pytester, text, *args):
    pytester.makefile(".yaml", **{"phases/p1": text})
    result = pytester.runpytest(*args)
    result.stdout.no_fnmatch_line("*Traceback*")
    assert not (pytester.path / "ran.txt").exists(), "a task ran despite the plan error"
    return result


@pytest.mark.parametrize("text, expected", [
    pytest.param(
        f"""
        phase: 1
        groups:
          - id: a
            tasks:
              - {GOOD_TASK}
              - {{id: "1.2", type: command, run: [unclosed
        """,
        "*phases/p1.yaml:6: YAML syntax error*", id="yaml-syntax"),
    pytest.param(
        f"""
        phase: 1
        groups:
          - id: a
            tasks:
              - {GOOD_TASK}
              - id: "1.2"
                type: command
                run: "true"
                depend_on: ["1.1"]
        """,
        "*phases/p1.yaml:9: unknown key 'depend_on' in task '1.2'; did you mean 'depends_on'?*", id="typo-key"),
    pytest.param(
        f"""
        phase: 1
        groups:
          - id: a
            tasks:
              - {GOOD_TASK}
              - {{id: "1.1", type: command, run: "true"}}
        """,
        "*phases/p1.yaml:6: duplicate task id '1.1' (first at phases/p1.yaml:5)*", id="duplicate-id"),
    pytest.param(
        f"""
        phase: 1
        groups:
          - id: a
            tasks:
              - {GOOD_TASK}
              - {{id: "1.2", type: command, run: "true", depends_on: ["9.9"]}}
        """,
        "*phases/p1.yaml:6: task '1.2' depends on unknown task '9.9'*", id="unknown-task"),
    pytest.param(
        f"""
        phase: 1
        groups:
          - id: a
            depends_on: [zz]
            tasks:
              - {GOOD_TASK}
        """,
        "*phases/p1.yaml:4: group 'a' depends on unknown group 'zz' of phase '1'*", id="unknown-group"),
    pytest.param(
        f"""
        phase: 1
        depends_on: [7]
        groups:
          - id: a
            tasks:
              - {GOOD_TASK}
        """,
        "*phases/p1.yaml:2: phase '1' depends on unknown phase '7'*", id="unknown-phase"),
    pytest.param(
        f"""
        phase: 1
        groups:
          - id: a
            tasks:
              - {GOOD_TASK}
              - {{id: "1.2", type: comand, run: "true"}}
        """,
        "*phases/p1.yaml:6: task '1.2': unknown handler type 'comand' (known: command, config_edit, "
        "file_generation, manual, prompt, test_generation); did you mean 'command'?*", id="unknown-handler"),
    pytest.param(
        f"""
        phase: 1
        groups:
          - id: a
            tasks:
              - {GOOD_TASK}
              - {{id: "1.2", type: command, run: "true", depends_on: ["1.4"]}}
              - {{id: "1.3", type: command, run: "true", depends_on: ["1.2"]}}
              - {{id: "1.4", type: command, run: "true", depends_on: ["1.3"]}}
        """,
        "*: dependency cycle: 1.? -> 1.? -> 1.? -> 1.?*", id="cycle"),
    pytest.param(
        f"""
        phase: 1
        groups:
          - id: a
            tasks:
              - {GOOD_TASK}
              - {{id: "1.2", type: command, run: "true", timeout: -5}}
        """,
        "*phases/p1.yaml:6: task '1.2': timeout: must be > 0, got -5*", id="negative-timeout"),
    pytest.param(
        f"""
        phase: 1
        groups:
          - id: a
            tasks:
              - {GOOD_TASK}
              - {{id: "1.2", type: command, run: "true", on_failure: explode}}
        """,
        "*phases/p1.yaml:6: task '1.2': on_failure: 'explode' is not one of skip_dependents, continue, abort*",
        id="bad-on-failure"),
    pytest.param(
        f"""
        phase: 1
        groups:
          - id: a
            tasks:
              - {GOOD_TASK}
              - {{id: "1.2", type: command, run: "echo ${{MISSING}}"}}
        """,
        "*phases/p1.yaml:6: unknown variable ${MISSING} (defined: none)*", id="unknown-variable"),
    pytest.param(
        f"""
        phase: 1
        groups:
          - id: a
            tasks:
              - {GOOD_TASK}
              - {{id: "1.2", type: command, retries: "twice", run: "true"}}
        """,
        "*phases/p1.yaml:6: task '1.2': retries: expected a whole number, got 'twice'*", id="wrong-type"),
])
def test_plan_error_names_file_line_and_problem(pytester, text, expected):
    result = run_bad_plan(pytester, text)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([expected])


def test_cycle_names_every_task_on_it(pytester):
    result = run_bad_plan(pytester, """
        phase: 1
        groups:
          - id: a
            tasks:
              - {id: "1.1", type: command, run: "true", depends_on: ["1.3"]}
              - {id: "1.2", type: command, run: "true", depends_on: ["1.1"]}
              - {id: "1.3", type: command, run: "true", depends_on: ["1.2"]}
        """)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    line = next(text for text in result.stdout.lines if "dependency cycle" in text)
    path = line.split("dependency cycle: ")[1].split(" (")[0].split(" -> ")
    assert path[0] == path[-1] and sorted(path[:-1]) == ["1.1", "1.2", "1.3"]


def test_cycle_entered_from_a_task_off_it_is_a_plan_error_and_nothing_runs(pytester):
    result = run_bad_plan(pytester, """
        phase: 1
        groups:
          - id: a
            tasks:
              - {id: "1.0", type: command, run: "touch ran-1.0", depends_on: ["1.1"]}
              - {id: "1.1", type: command, run: "touch ran-1.1", depends_on: ["1.2"]}
              - {id: "1.2", type: command, run: "touch ran-1.2", depends_on: ["1.3"]}
              - {id: "1.3", type: command, run: "touch ran-1.3", depends_on: ["1.1"]}
        """)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    line = next(text for text in result.stdout.lines if "dependency cycle" in text)
    path = line.split("dependency cycle: ")[1].split(" (")[0].split(" -> ")
    assert path[0] == path[-1] and sorted(path[:-1]) == ["1.1", "1.2", "1.3"]
    assert not list(pytester.path.glob("ran-*"))
    result.stdout.no_fnmatch_line("*skipped*")


def test_errors_in_two_files_are_all_reported(pytester):
    pytester.makefile(".yaml", **{
        "phases/p1": ('phase: 1\ngroups:\n  - id: a\n    tasks:\n'
                      '      - {id: "1.1", type: command, run: "true", retrys: 1}\n'),
        "phases/p2": 'phase: 2\ndepends_on: [3]\ngroups: []\n',
    })
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*phases/p1.yaml:5: unknown key 'retrys'*did you mean 'retries'?*"])
    result.stdout.fnmatch_lines(["*phases/p2.yaml:2: phase '2' depends on unknown phase '3'*"])


def test_var_flag_overrides_plan_variable(pytester):
    pytester.makefile(".yaml", **{"phases/p1": """
        phase: 1
        vars: {NAME: from-plan}
        groups:
          - id: a
            tasks:
              - {id: "1.1", type: command, run: "touch ${NAME}.txt"}
        """})
    pytester.runpytest("--var", "NAME=from-flag").assert_outcomes(passed=1)
    assert (pytester.path / "from-flag.txt").exists()
    assert not (pytester.path / "from-plan.txt").exists()


def test_var_flag_supplies_missing_variable_and_escapes_stay_literal(pytester):
    pytester.makefile(".yaml", **{"phases/p1": """
        phase: 1
        groups:
          - id: a
            tasks:
              - {id: "1.1", type: command, shell: true, run: "echo '$${KEEP} ${{ ci.expr }}' > ${OUT}"}
        """})
    pytester.runpytest("--var", "OUT=out.txt").assert_outcomes(passed=1)
    assert (pytester.path / "out.txt").read_text() == "${KEEP} ${{ ci.expr }}\n"


def test_bad_var_flag_is_a_usage_error(pytester):
    pytester.makefile(".yaml", **{"phases/p1": f"phase: 1\ngroups:\n  - id: a\n    tasks:\n      - {GOOD_TASK}\n"})
    result = pytester.runpytest("--var", "NOEQUALS")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--var 'NOEQUALS': expected KEY=VALUE*"])


def test_unknown_phase_flag_is_a_usage_error(pytester):
    pytester.makefile(".yaml", **{"phases/p1": f"phase: 1\ngroups:\n  - id: a\n    tasks:\n      - {GOOD_TASK}\n"})
    result = pytester.runpytest("--phase", "9")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--phase 9: no such phase in the plan (phases: 1)*"])
    assert not (pytester.path / "ran.txt").exists()


def test_a_value_that_is_one_variable_keeps_a_number_type(pytester):
    pytester.makefile(".toml", pyproject='[tool.coverage.report]\nfail_under = 60\n')
    pytester.makefile(".yaml", **{"phases/p1": """
        phase: 1
        vars: {MIN: "85"}
        groups:
          - id: a
            tasks:
              - {id: "1.1", type: config_edit, file: pyproject.toml, set: {tool.coverage.report.fail_under: "${MIN}"}}
        """})
    pytester.runpytest().assert_outcomes(passed=1)
    assert (pytester.path / "pyproject.toml").read_text() == "[tool.coverage.report]\nfail_under = 85"


@pytest.mark.parametrize("task, message", [
    ('{id: "1.2", type: config_edit, file: ../outside.json, set: {a: 1}}', "file: '../outside.json'"),
    ('{id: "1.2", type: file_generation, target: /etc/orch-test, content: "x"}', "target: '/etc/orch-test'"),
    ('{id: "1.2", type: command, run: "true", cwd: sub/../..}', "cwd: 'sub/../..'"),
    ('{id: "1.2", type: command, run: "true", inputs: ["../**/*.ts"]}', "inputs: '../**/*.ts'"),
])
def test_path_outside_the_root_is_a_plan_error(pytester, task, message):
    result = run_bad_plan(pytester, f"phase: 1\ngroups:\n  - id: a\n    tasks:\n      - {GOOD_TASK}\n      - {task}\n")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([f"*phases/p1.yaml:6: task '1.2': {message} is outside the project root*"])
