"""config_edit: edits that keep comments and order, idempotence, dry runs and one-line errors."""

from __future__ import annotations

import os

import pytest
from handler_support import assert_status, make_ctx, make_task, snapshot, write
from pytest_orch.handlers import dotted_path
from pytest_orch.handlers.config_edit import ConfigEditHandler

from pytest_orch.errors import HandlerError, PlanError

HANDLER = ConfigEditHandler()

WORKFLOW = """\
# CI for the web app
name: CI
on:
  push:
    branches: [main]
  pull_request:

jobs:
  test:
    runs-on: ubuntu-latest   # the cheapest runner
    steps:
      - uses: actions/checkout@v4
      - name: "Install"
        run: npm ci
      # the scan is noisy, don't block on it yet
      - name: Security scan
        run: npm audit --audit-level=high
        continue-on-error: true
      - name: Test
        run: |
          npm test -- --coverage
        env:
          CI: 'true'
"""

PYPROJECT = """\
# project metadata
[project]
name = "svc"   # the service
version = "1.0"

[tool.coverage.run]
branch = true
source = ["src"]  # only our code

[tool.coverage.report]
# raised in phase 2
fail_under = 60
show_missing = true
"""

PACKAGE_JSON = """\
{
  "name": "web",
  "scripts": {
    "test": "jest"
  },
  "jest": {
    "collectCoverageFrom": [
      "src/**/*.ts"
    ]
  }
}
"""


def edit(root, dry_run=False, **params):
    task = make_task("config_edit", **params)
    HANDLER.validate(task)
    return HANDLER.run(task, make_ctx(root, dry_run=dry_run))


def test_yaml_remove_keeps_every_other_byte(tmp_path):
    path = write(tmp_path, ".github/workflows/ci.yml", WORKFLOW)
    outcome = edit(tmp_path, file=".github/workflows/ci.yml",
                   remove=["jobs.test.steps.2.continue-on-error"])
    assert_status(outcome, "passed")
    assert outcome.changed == [".github/workflows/ci.yml"]
    assert path.read_text() == WORKFLOW.replace("        continue-on-error: true\n", "")
    assert "-        continue-on-error: true" in outcome.diff
    again = edit(tmp_path, file=".github/workflows/ci.yml",
                 remove=["jobs.test.steps.2.continue-on-error"])
    assert_status(again, "up_to_date")
    assert again.message == ".github/workflows/ci.yml already up to date"
    assert again.changed == [] and again.diff == ""


BLANK_AFTER_LIST = """jobs:
  test:
    steps:
      - run: a
      - name: b
        run: b   # soft

    timeout-minutes: 10
items:
  - x  # last

other: 1
"""


def test_yaml_append_keeps_the_blank_line_after_the_list(tmp_path):
    path = write(tmp_path, "ci.yml", BLANK_AFTER_LIST)
    outcome = edit(tmp_path, file="ci.yml", append={"jobs.test.steps": [{"run": "c"}], "items": ["y"]})
    assert_status(outcome, "passed")
    assert path.read_text() == BLANK_AFTER_LIST.replace(
        "        run: b   # soft\n", "        run: b   # soft\n      - run: c\n").replace(
        "  - x  # last\n", "  - x  # last\n  - y\n")


def test_yaml_set_keeps_comments_order_and_quotes(tmp_path):
    path = write(tmp_path, "ci.yml", WORKFLOW)
    outcome = edit(tmp_path, file="ci.yml", set={
        "jobs.test.steps.3.env.NODE_OPTIONS": "--max-old-space-size=4096",
        "jobs.test.timeout-minutes": 15,
    })
    assert_status(outcome, "passed")
    expected = WORKFLOW.replace(
        "          CI: 'true'\n",
        "          CI: 'true'\n          NODE_OPTIONS: --max-old-space-size=4096\n"
        "    timeout-minutes: 15\n",
    )
    assert path.read_text() == expected


def test_yaml_without_indented_sequences_keeps_its_style(tmp_path):
    text = "steps:\n- name: a   # first\n  run: x\n- name: b\n"
    path = write(tmp_path, "w.yaml", text)
    assert_status(edit(tmp_path, file="w.yaml", set={"steps.1.run": "y"}), "passed")
    assert path.read_text() == text + "  run: y\n"


def test_toml_set_keeps_comments_and_order(tmp_path):
    path = write(tmp_path, "pyproject.toml", PYPROJECT)
    outcome = edit(tmp_path, file="pyproject.toml", set={
        "tool.coverage.report.fail_under": 80,
        "tool.coverage.run.parallel": True,
    })
    assert_status(outcome, "passed")
    assert path.read_text() == PYPROJECT.replace("fail_under = 60", "fail_under = 80").replace(
        'source = ["src"]  # only our code\n', 'source = ["src"]  # only our code\nparallel = true\n')
    assert_status(edit(tmp_path, file="pyproject.toml",
                       set={"tool.coverage.report.fail_under": 80}), "up_to_date")


def test_toml_set_creates_missing_tables_once(tmp_path):
    path = write(tmp_path, "pyproject.toml", '[project]\nname = "svc"\n')
    edit(tmp_path, file="pyproject.toml", set={"tool.pytest.ini_options.addopts": "-q"})
    assert path.read_text() == '[project]\nname = "svc"\n\n[tool.pytest.ini_options]\naddopts = "-q"\n'


def test_json_keeps_indent_order_and_final_newline(tmp_path):
    path = write(tmp_path, "package.json", PACKAGE_JSON)
    outcome = edit(tmp_path, file="package.json", set={
        'jest.coverageThreshold."./src/services/".branches': 80,
    }, append={"jest.collectCoverageFrom": ["src/**/*.ts", "!src/**/*.d.ts"]})
    assert_status(outcome, "passed")
    assert path.read_text() == """\
{
  "name": "web",
  "scripts": {
    "test": "jest"
  },
  "jest": {
    "collectCoverageFrom": [
      "src/**/*.ts",
      "!src/**/*.d.ts"
    ],
    "coverageThreshold": {
      "./src/services/": {
        "branches": 80
      }
    }
  }
}
"""
    again = edit(tmp_path, file="package.json", append={"jest.collectCoverageFrom": ["src/**/*.ts"]})
    assert_status(again, "up_to_date")


@pytest.mark.parametrize("indent", ["    ", "\t"])
def test_json_other_indents_and_no_final_newline(tmp_path, indent):
    path = write(tmp_path, "a.json", f'{{\n{indent}"a": 1\n}}')
    edit(tmp_path, file="a.json", set={"b": [1]})
    assert path.read_text() == f'{{\n{indent}"a": 1,\n{indent}"b": [\n{indent}{indent}1\n{indent}]\n}}'


def test_ini_set_and_append_keep_comments(tmp_path):
    text = "# tool settings\n[tool:pytest]\n; quiet by default\naddopts = -q\n\n[flake8]\nmax-line-length = 99\n"
    path = write(tmp_path, "setup.cfg", text)
    outcome = edit(tmp_path, file="setup.cfg", set={
        "tool:pytest.addopts": "-q --strict-markers", "tool:pytest.xfail_strict": True,
        "coverage:run.branch": True,
    }, append={"tool:pytest.testpaths": ["tests"]})
    assert_status(outcome, "passed")
    assert path.read_text() == (
        "# tool settings\n[tool:pytest]\n; quiet by default\naddopts = -q --strict-markers\n"
        "xfail_strict = true\ntestpaths =\n    tests\n\n[flake8]\nmax-line-length = 99\n"
        "\n[coverage:run]\nbranch = true\n"
    )
    again = edit(tmp_path, file="setup.cfg", set={"tool:pytest.xfail_strict": True},
                 append={"tool:pytest.testpaths": ["tests"]})
    assert_status(again, "up_to_date")
    assert_status(edit(tmp_path, file="setup.cfg", remove=["flake8"]), "passed")
    assert "flake8" not in path.read_text() and "; quiet by default" in path.read_text()


def test_text_replace_then_nothing_to_do(tmp_path):
    path = write(tmp_path, "Makefile", "test:\n\tpytest -q\n")
    outcome = edit(tmp_path, file="Makefile",
                   replace=[{"pattern": r"^\tpytest -q$", "with": r"\tpytest -q --cov"}])
    assert_status(outcome, "passed")
    assert path.read_text() == "test:\n\tpytest -q --cov\n"
    again = edit(tmp_path, file="Makefile",
                 replace=[{"pattern": r"^\tpytest -q$", "with": r"\tpytest -q --cov"}])
    assert_status(again, "up_to_date")


def test_dry_run_shows_diff_and_writes_nothing(tmp_path):
    write(tmp_path, "ci.yml", WORKFLOW)
    before = snapshot(tmp_path)
    outcome = edit(tmp_path, dry_run=True, file="ci.yml",
                   remove=["jobs.test.steps.2.continue-on-error"])
    assert_status(outcome, "passed")
    assert outcome.changed == ["ci.yml"]
    assert outcome.diff.startswith("--- a/ci.yml\n+++ b/ci.yml\n")
    assert "-        continue-on-error: true\n" in outcome.diff
    assert snapshot(tmp_path) == before


def test_crlf_line_endings_survive(tmp_path):
    path = write(tmp_path, "a.cfg", "[a]\r\nx = 1\r\n")
    edit(tmp_path, file="a.cfg", set={"a.y": 2})
    assert path.read_bytes() == b"[a]\r\nx = 1\r\ny = 2\r\n"


@pytest.mark.parametrize(("name", "text", "params", "message"), [
    ("ci.yml", WORKFLOW, {"set": {"jobs.test.steps.7.name": "x"}},
     "ci.yml: jobs.test.steps.7: index 7 out of range (list has 4 items)"),
    ("package.json", PACKAGE_JSON, {"set": {"jest.collectCoverageFrom.x": 1}},
     "package.json: cannot set jest.collectCoverageFrom.x: jest.collectCoverageFrom is a list"),
    ("package.json", PACKAGE_JSON, {"set": {"name.first": "a"}},
     "package.json: cannot set name.first: name is a string"),
    ("package.json", PACKAGE_JSON, {"append": {"scripts": ["x"]}},
     "package.json: cannot append to scripts: it is a mapping, not a list"),
    ("pyproject.toml", PYPROJECT, {"set": {"tool.coverage.report.fail_under.x": 1}},
     "pyproject.toml: cannot set tool.coverage.report.fail_under.x: "
     "tool.coverage.report.fail_under is a number"),
    ("bad.json", '{"a": 1,,}', {"set": {"a": 2}},
     "bad.json: cannot parse as json: line 1: Expecting property name enclosed in double quotes"),
    ("bad.yaml", "a: 1\n  b: 2\n", {"set": {"a": 2}},
     "bad.yaml: cannot parse as yaml: line 2: mapping values are not allowed here"),
    ("bad.toml", "[a\nb = 1\n", {"set": {"a": 2}}, "bad.toml: cannot parse as toml: line 1:"),
])
def test_bad_edits_name_file_and_path(tmp_path, name, text, params, message):
    write(tmp_path, name, text)
    before = snapshot(tmp_path)
    with pytest.raises(HandlerError) as info:
        edit(tmp_path, file=name, **params)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)
    assert snapshot(tmp_path) == before


def test_missing_file(tmp_path):
    with pytest.raises(HandlerError, match=r"^conf/app\.yaml: file not found$"):
        edit(tmp_path, file="conf/app.yaml", set={"a": 1})


@pytest.mark.parametrize("target", ["../outside.json", "ABSOLUTE", "link/outside.json"])
def test_paths_outside_the_root_are_refused(tmp_path, target):
    root = tmp_path / "root"
    root.mkdir()
    outside = write(tmp_path, "outside.json", '{"a": 1}\n')
    os.symlink(tmp_path, root / "link")
    with pytest.raises(HandlerError, match="outside the project root"):
        edit(root, file=str(outside) if target == "ABSOLUTE" else target, set={"a": 2})
    assert outside.read_text() == '{"a": 1}\n'


@pytest.mark.parametrize(("params", "message"), [
    ({"set": {"a": 1}}, "config_edit needs 'file'"),
    ({"file": "a.json"}, "needs at least one of set, remove, append, replace"),
    ({"file": "a.json", "format": "xml", "set": {"a": 1}}, "unknown format 'xml'"),
    ({"file": "a.txt", "set": {"a": 1}}, "'set' is not for text files"),
    ({"file": "a.json", "replace": [{"pattern": "a", "with": "b"}]}, "'replace' is only for text"),
    ({"file": "a.txt", "replace": [{"pattern": "(", "with": "b"}]}, "replace item 1: bad pattern"),
    ({"file": "a.txt", "replace": [{"pattern": "a"}]}, "must be a mapping with 'pattern' and 'with'"),
    ({"file": "a.json", "set": {'a."b': 1}}, "bad dotted path"),
    ({"file": "a.json", "append": {"a": "x"}}, "append a: the items must be a list"),
    ({"file": 3, "set": {"a": 1}}, "'file' must be a string"),
])
def test_validate_names_task_and_line(params, message):
    task = make_task("config_edit", **params)
    with pytest.raises(PlanError) as info:
        HANDLER.validate(task)
    assert str(info.value).startswith("phases/plan.yaml:")
    assert "task '1.1': " in str(info.value) and message in str(info.value)


def test_inputs_are_the_edited_file_when_it_exists(tmp_path):
    write(tmp_path, "a.json", "{}")
    ctx = make_ctx(tmp_path)
    assert HANDLER.inputs(make_task("config_edit", file="a.json", set={"a": 1}), ctx) == [
        (tmp_path / "a.json").resolve()]
    assert HANDLER.inputs(make_task("config_edit", file="b.json", set={"a": 1}), ctx) == []
    assert HANDLER.inputs(make_task("config_edit", file="../x.json", set={"a": 1}), ctx) == []


@pytest.mark.parametrize(("path", "segments"), [
    ("jobs.test.steps.2.name", ["jobs", "test", "steps", "2", "name"]),
    ('coverageThreshold."./src/services/".branches', ["coverageThreshold", "./src/services/", "branches"]),
    ("a.'b.c'", ["a", "b.c"]),
])
def test_dotted_path_parse(path, segments):
    assert [s.text for s in dotted_path.parse(path)] == segments


@pytest.mark.parametrize("path", ["a..b", "a.", '"a.b', '"a"b'])
def test_dotted_path_parse_errors(path):
    with pytest.raises(dotted_path.PathError):
        dotted_path.parse(path)


def test_yaml_quoted_key_and_created_parents(tmp_path):
    path = write(tmp_path, "jest.yaml", "# thresholds\ncoverageThreshold:\n  global:\n    lines: 60\n")
    outcome = edit(tmp_path, file="jest.yaml", set={
        'coverageThreshold."./src/services/".branches': 80})
    assert_status(outcome, "passed")
    assert path.read_text() == (
        "# thresholds\ncoverageThreshold:\n  global:\n    lines: 60\n"
        "  ./src/services/:\n    branches: 80\n")


def test_removing_what_is_absent_is_up_to_date(tmp_path):
    write(tmp_path, "a.json", '{"a": {"b": 1}}\n')
    outcome = edit(tmp_path, file="a.json", remove=["a.c", "x.y.z"])
    assert_status(outcome, "up_to_date")
    assert outcome.message == "a.json already up to date"
