"""Hostile and odd plans (issue 10, items 1-3, 5 and 9): each is one plan error, exit 2, nothing written.

The companion of test_plan_errors.py, for input that once crashed, hung or passed silently.
"""

import pytest

GOOD_TASK = '{id: "1.1", type: command, run: "touch ran.txt"}'


def one_task_plan(task: str = GOOD_TASK, head: str = "") -> str:
    return f"{head}phase: 1\ngroups:\n  - id: a\n    tasks:\n      - {task}\n"


def assert_plan_error(pytester, *expected, files=None, args=()):
    """Run pytest on the plan; it must stop with exit 2 and the expected lines, and change nothing."""
    if files:
        pytester.makefile(".yaml", **files)
    before = _tree(pytester.path)
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.INTERRUPTED, result.stdout.str()
    result.stdout.fnmatch_lines(list(expected))
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    assert _tree(pytester.path) == before, "the failed run left files behind"
    return result


def _tree(root):
    """Every path under root but pytest's and Python's own caches."""
    return sorted(p.relative_to(root) for p in root.rglob("*")
                  if not {"__pycache__", ".pytest_cache"} & set(p.relative_to(root).parts))


def alias_bomb(indent: str = "  ") -> str:
    lines = [f"{indent}a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"{indent}a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("where", ["vars", "task"])
def test_alias_bomb_is_refused_at_once(pytester, where):
    if where == "vars":
        text = "vars:\n" + alias_bomb() + one_task_plan()
    else:
        text = one_task_plan('{id: "1.1", type: command, run: "touch ran.txt", env: {X: *a9}}',
                             head="x-bomb:\n" + alias_bomb())
    # before, this took minutes and gigabytes; the size is now measured on the parser's nodes, unexpanded
    assert_plan_error(pytester, "*phases/p1.yaml:*: YAML aliases expand this value to more than 1,000,000 values*",
                      files={"phases/p1": text})


def test_aliases_of_ordinary_size_still_work(pytester):
    pytester.makefile(".yaml", **{"phases/p1": """
        phase: 1
        groups:
          - id: a
            tasks:
              - &base {id: "1.1", type: command, run: "touch one.txt", timeout: 30}
              - {<<: *base, id: "1.2", run: "touch two.txt"}
        """})
    pytester.runpytest().assert_outcomes(passed=2)
    assert (pytester.path / "two.txt").exists()


def test_recursive_alias_is_a_plan_error(pytester):
    assert_plan_error(pytester, "*phases/p1.yaml:1: YAML alias refers to itself*",
                      files={"phases/p1": "x: &x [*x]\n" + one_task_plan()})


@pytest.mark.parametrize("value, message", [
    ("1" + "0" * 5000, "a number of 5001 digits is far out of range"),
    ("1.0e+400", "task '1.2': timeout: must be at most 604800 (7 days), got inf"),
    (".nan", "task '1.2': timeout: must be at most 604800 (7 days), got nan"),
    ("10000000", "task '1.2': timeout: must be at most 604800 (7 days), got 10000000"),
])
def test_timeout_out_of_range(pytester, value, message):
    task = f'{{id: "1.2", type: command, run: "true", timeout: {value}}}'
    assert_plan_error(pytester, f"*phases/p1.yaml:6: {message}*",
                      files={"phases/p1": one_task_plan() + f"      - {task}\n"})


@pytest.mark.parametrize("keys, message", [
    ("retries: 1, retry_delay: 1.0e+400", "retry_delay: must be at most 86400 (1 day), got inf"),
    ("retries: 101", "retries: must be at most 100, got 101"),
    ("retries: 1, backoff: 11", "backoff: must be at most 10, got 11"),
    ("retries: 20, retry_delay: 10, backoff: 5",
     "the last retry would wait 1.91e+14 s (retry_delay x backoff ** (retries - 1)); at most 86400 s (1 day)"),
])
def test_retry_numbers_out_of_range(pytester, keys, message):
    task = f'{{id: "1.2", type: command, run: "true", {keys}}}'
    assert_plan_error(pytester, f"*phases/p1.yaml:6: task '1.2': {message}*",
                      files={"phases/p1": one_task_plan() + f"      - {task}\n"})


@pytest.mark.parametrize("head, message", [
    ("pools: {llm: 10001}\n", "phases/p1.yaml:1: phases/p1.yaml: pools: must be at most 10000, got 10001"),
    ("pools: {llm: 0}\n", "phases/p1.yaml:1: phases/p1.yaml: pools: must be >= 1, got 0"),
    ('rate_limits: {llm: "5/0s"}\n', "*rate '5/0s' is out of range: between 1/day and 10000/second"),
    ('rate_limits: {llm: "1/2day"}\n', "*rate '1/2day' is out of range*"),
    ('rate_limits: {llm: "20000/second"}\n', "*rate '20000/second' is out of range*"),
])
def test_pool_and_rate_out_of_range(pytester, head, message):
    assert_plan_error(pytester, f"*{message}*", files={"phases/p1": head + one_task_plan()})


def test_max_parallel_out_of_range(pytester):
    text = "phase: 1\ngroups:\n  - id: a\n    max_parallel: 100000\n    tasks:\n      - " + GOOD_TASK + "\n"
    assert_plan_error(pytester, "*phases/p1.yaml:4: group 'a': max_parallel: must be at most 10000, got 100000*",
                      files={"phases/p1": text})


def test_a_rate_per_day_is_accepted(pytester):
    pytester.makefile(".yaml", **{"phases/p1": 'rate_limits: {llm: "100/day"}\n' + one_task_plan(
        '{id: "1.1", type: command, run: "touch ran.txt", pool: llm}')})
    pytester.runpytest().assert_outcomes(passed=1)


def test_rate_with_zero_period_under_xdist_is_a_plan_error(pytester):
    pytester.makefile(".yaml", **{"phases/p1": 'rate_limits: {llm: "5/0s"}\n' + one_task_plan(
        '{id: "1.1", type: command, run: "touch ran.txt", pool: llm}')})
    result = pytester.runpytest_subprocess("-n", "2")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*rate '5/0s' is out of range*"])
    assert not (pytester.path / "ran.txt").exists()


# -- empty plans (item 5) -------------------------------------------------------------------------
def test_empty_plan_file_is_named(pytester):
    assert_plan_error(pytester, "*phases/1.yaml:1: the plan file is empty*", files={"phases/1": ""})


def test_empty_file_beside_a_valid_one_is_named(pytester):
    result = assert_plan_error(pytester, "*phases/2.yaml:1: the plan file is empty*",
                               files={"phases/1": one_task_plan(), "phases/2": "# later\n"})
    assert "phases/1.yaml" not in result.stdout.str().replace("phases/1.yaml:", "")  # no empty block for it


def test_plan_folder_without_plan_files_is_named(pytester):
    pytester.mkdir("phases")
    (pytester.path / "phases" / "README.md").write_text("the plan goes here\n")
    assert_plan_error(pytester, "*phases/: the plan folder holds no plan file (*.yaml or *.yml)*")


def test_plan_errors_do_not_stop_a_run_of_the_projects_own_tests(pytester):
    # checkpoints run `pytest tests/unit` beside a plan: the plan is not theirs to check
    pytester.makefile(".yaml", **{"phases/1": ""})
    pytester.makepyfile(**{"tests/test_x": "def test_x():\n    pass\n"})
    pytester.runpytest("tests").assert_outcomes(passed=1)


def test_phases_without_tasks_that_depend_on_each_other_are_a_cycle(pytester):
    assert_plan_error(pytester, "*dependency cycle between phases: * -> * -> *",
                      files={"phases/1": "phase: 1\ndepends_on: [2]\ngroups: []\n",
                             "phases/2": "phase: 2\ndepends_on: [1]\ngroups: []\n"})


def test_groups_without_tasks_that_depend_on_each_other_are_a_cycle(pytester):
    text = "phase: 1\ngroups:\n  - {id: a, depends_on: [b]}\n  - {id: b, depends_on: [a]}\n"
    assert_plan_error(pytester, "*phases/p1.yaml:*: dependency cycle between groups of phase '1': * -> * -> *",
                      files={"phases/p1": text})


# -- smaller (item 9) -----------------------------------------------------------------------------
def test_group_that_depends_on_itself_says_so(pytester):
    text = "phase: 1\ngroups:\n  - id: a\n    depends_on: [a]\n    tasks:\n      - " + GOOD_TASK + "\n"
    result = assert_plan_error(pytester, "*phases/p1.yaml:4: group 'a' of phase '1' depends on itself*",
                               files={"phases/p1": text})
    result.stdout.no_fnmatch_line("*did you mean*")


def test_phase_that_depends_on_itself_says_so(pytester):
    result = assert_plan_error(pytester, "*phases/p1.yaml:1: phase '1' depends on itself*",
                               files={"phases/p1": "depends_on: [1]\n" + one_task_plan()})
    result.stdout.no_fnmatch_line("*did you mean*")


def test_error_in_one_file_prints_no_empty_block_for_the_good_ones(pytester):
    result = assert_plan_error(pytester, "*phases/2.yaml:5: unknown key 'retrys'*", files={
        "phases/1": one_task_plan(),
        "phases/2": 'phase: 2\ngroups:\n  - id: a\n    tasks:\n      - {id: "2.1", type: command, run: x, retrys: 1}\n',
    })
    result.stdout.fnmatch_lines(["*1 error*"])
    result.stdout.no_fnmatch_line("*ERROR collecting phases/1.yaml*")


def test_yaml_syntax_error_in_a_block_points_at_the_bad_line(pytester):
    text = ('phase: 1\ngroups:\n  - id: a\n    tasks:\n      - id: "1.1"\n        type: command\n'
            "        run: 'true' and more\n")
    assert_plan_error(pytester, "*phases/p1.yaml:7: YAML syntax error*", files={"phases/p1": text})


def test_vars_type_error_is_printed_once(pytester):
    result = assert_plan_error(pytester, "*phases/p1.yaml:1: *vars: expected a mapping*",
                               files={"phases/p1": "vars: [1, 2]\n" + one_task_plan()})
    assert result.stdout.str().count("expected a mapping of NAME: value") == 1


@pytest.mark.parametrize("task_id, message", [
    ('"   "', "an id must not be blank"),
    ('"1.\\n1"', "an id must not contain a line break or control character"),
    ('" 1.1"', "an id must not begin or end with a space"),
])
def test_odd_ids_are_refused(pytester, task_id, message):
    task = f'{{id: {task_id}, type: command, run: "true"}}'
    assert_plan_error(pytester, f"*phases/p1.yaml:6: task: id: {message}*",
                      files={"phases/p1": one_task_plan() + f"      - {task}\n"})


@pytest.mark.parametrize("key, value", [("timeout", "1.0e+400"), ("retries", "1000"), ("retry_delay", "86400")])
def test_notifier_numbers_have_ranges_too(pytester, key, value):
    head = f"notify:\n  - {{when: [failure], command: [scripts/page.sh], {key}: {value}}}\n"
    assert_plan_error(pytester, f"*phases/p1.yaml:2: notify: {key} must be a * from * to *, not *",
                      files={"phases/p1": head + one_task_plan()})
