"""Collection: the plan as pytest nodes, selection by -k, -m, --phase, --group, and order."""

import pytest

TWO_PHASES = {
    "phases/p1": """
        phase: 1
        name: Baseline
        groups:
          - id: setup
            name: Tooling
            tasks:
              - {id: "1.1", name: Install tools, type: command, run: "true", tags: [tools]}
              - {id: "1.2", name: Lint config, type: command, run: "true", tags: [lint]}
        checkpoints:
          - {id: "1.check", type: command, run: "true"}
        """,
    "phases/p2": """
        phase: 2
        name: Critical services
        depends_on: [1]
        groups:
          - id: svc
            name: Backend
            tasks:
              - {id: "2.1", name: Auth service tests, type: command, run: "true", tags: [services, jest]}
              - {id: "2.2", name: Billing service tests, type: command, run: "true", tags: [services]}
          - id: routes
            depends_on: [svc]
            tasks:
              - {id: "2.3", name: Route tests, type: command, run: "true", tags: [jest]}
        """,
}


@pytest.fixture
def plan(pytester):
    pytester.makefile(".yaml", **TWO_PHASES)
    return pytester


def test_collect_only_shows_the_tree_and_dependencies(plan):
    result = plan.runpytest("--collect-only")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines([
        "*<PlanFile p1.yaml>*", "*<PhaseNode 1>*", "*<GroupNode setup>*", "*<TaskItem 1.1>*",
        "*<TaskItem 1.2>*", "*<GroupNode checkpoints>*", "*<TaskItem 1.check>*",
        "*<PlanFile p2.yaml>*", "*<PhaseNode 2>*", "*<GroupNode svc>*", "*<TaskItem 2.1>*",
        "*plan preview*",
        "    1.check  command  *the tasks of phase 1  -",
        "    2.3      command  Route tests * -  * phase 1, group 2.svc",
        "*6 tests collected*",
    ])
    assert not (plan.path / "reports").exists(), "--collect-only wrote reports"


def test_collect_only_quiet_lists_one_node_id_per_task(plan):
    result = plan.runpytest("--collect-only", "-q")
    ids = [line for line in result.stdout.lines if "::" in line]
    assert ids == [
        "phases/p1.yaml::1::setup::1.1", "phases/p1.yaml::1::setup::1.2",
        "phases/p1.yaml::1::checkpoints::1.check", "phases/p2.yaml::2::svc::2.1",
        "phases/p2.yaml::2::svc::2.2", "phases/p2.yaml::2::routes::2.3",
    ]


@pytest.mark.parametrize("args, expected", [
    (["-k", "2.1"], {"2.1"}),
    (["-k", "billing"], {"2.2"}),  # the task's name, case-insensitive
    (["-k", "routes"], {"2.3"}),  # the group id
    (["-k", "backend"], {"2.1", "2.2"}),  # the group name
    (["-k", "Baseline"], {"1.1", "1.2", "1.check"}),  # the phase name
    (["-m", "jest"], {"2.1", "2.3"}),
    (["-m", "services and not jest"], {"2.2"}),
    (["--phase", "2"], {"2.1", "2.2", "2.3"}),
    (["--phase", "1,2"], {"1.1", "1.2", "1.check", "2.1", "2.2", "2.3"}),
    (["--group", "svc"], {"2.1", "2.2"}),
    (["--group", "1.setup"], {"1.1", "1.2"}),  # a checkpoint needs its whole phase
])
def test_selection(plan, args, expected):
    result = plan.runpytest("--collect-only", "-q", *args)
    ids = {line.rsplit("::", 1)[1] for line in result.stdout.lines if "::" in line}
    assert ids == expected
    deselected = 6 - len(expected)
    if deselected:
        result.stdout.fnmatch_lines([f"*{len(expected)}/6 tests collected ({deselected} deselected)*"])


def test_tags_are_registered_markers_under_strict_markers(plan):
    result = plan.runpytest("--strict-markers", "--collect-only", "-q", "-m", "lint")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["phases/p1.yaml::1::setup::1.2"])


def test_checkpoint_runs_after_every_task_of_its_phase(pytester):
    pytester.makefile(".yaml", **{"phases/p1": """
        phase: 1
        checkpoints:
          - {id: "1.check", type: command, run: "true"}
        groups:
          - id: a
            tasks:
              - {id: "1.1", type: command, run: "true"}
              - {id: "1.2", type: command, run: "true"}
        """})
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=3)
    order = [line.split("::")[-1].split()[0] for line in result.stdout.lines if " PASSED" in line]
    assert order[-1] == "1.check"


def test_items_run_longest_remaining_path_first(pytester):
    # 1.1 heads a chain of three; 1.4 and 1.5 are alone: the chain goes first, then file order
    pytester.makefile(".yaml", **{"phases/p1": """
        phase: 1
        groups:
          - id: a
            tasks:
              - {id: "1.4", type: command, run: "true"}
              - {id: "1.5", type: command, run: "true"}
              - {id: "1.3", type: command, run: "true", depends_on: ["1.2"]}
              - {id: "1.2", type: command, run: "true", depends_on: ["1.1"]}
              - {id: "1.1", type: command, run: "true"}
        """})
    result = pytester.runpytest("-v")
    ran = [line.split(" ")[0].rsplit("::", 1)[1] for line in result.stdout.lines if " PASSED" in line]
    assert ran == ["1.1", "1.2", "1.4", "1.5", "1.3"]
    preview = pytester.runpytest("--collect-only", "-q")  # a preview reads in plan order
    assert [line.rsplit("::", 1)[1] for line in preview.stdout.lines if "::" in line] == \
        ["1.4", "1.5", "1.3", "1.2", "1.1"]


def test_project_without_plan_is_untouched(pytester):
    pytester.makepyfile(test_plain="def test_ok():\n    assert True\n")
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*pytest-orch*")
    assert not (pytester.path / "reports").exists()


def test_plan_option_names_another_folder(pytester):
    pytester.makefile(".yaml", **{"roadmap/a": """
        phase: A
        groups:
          - id: g
            tasks:
              - {id: "A.1", type: command, run: "true"}
        """})
    result = pytester.runpytest("--plan", "roadmap", "-q")
    result.assert_outcomes(passed=1)


def test_orch_phases_ini_option_names_the_plan(pytester):
    pytester.makeini("[pytest]\norch_phases = plans/main.yaml\n")
    pytester.makefile(".yaml", **{"plans/main": """
        phases:
          - phase: 1
            groups:
              - id: g
                tasks:
                  - {id: "1.1", type: command, run: "true"}
          - phase: 2
            depends_on: [1]
            groups:
              - id: g
                tasks:
                  - {id: "2.1", type: command, run: "true"}
        """})
    result = pytester.runpytest("plans", "-q")
    result.assert_outcomes(passed=2)


@pytest.mark.parametrize("workers", [[], ["-n", "2", "--orch-parallel=always"]], ids=["in-process", "n2"])
def test_plain_tests_beside_an_uncollected_plan_leave_no_state_or_reports(plan, workers):
    plan.makepyfile(**{"tests/test_unit": "def test_ok():\n    assert True\n"})
    result = plan.runpytest_subprocess("tests", "--junitxml=out.xml", *workers)
    result.assert_outcomes(passed=1)
    assert not (plan.path / ".orch").exists() and not (plan.path / "reports").exists()
    assert "<testcase" in (plan.path / "out.xml").read_text()  # pytest's own junitxml, untouched
    result.stdout.no_fnmatch_line("*pytest-orch phases*")
