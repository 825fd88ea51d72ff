"""file_generation: rendering, StrictUndefined errors with file:line, overwrite, dry runs, atomicity."""

from __future__ import annotations

import os
import stat

import pytest
from handler_support import assert_status, make_ctx, make_task, snapshot, write
from pytest_orch.handlers.file_generation import FileGenerationHandler

from pytest_orch.errors import HandlerError, PlanError
from pytest_orch.fileio import atomic_write, unified_diff
from pytest_orch.fingerprint import sha256_bytes

HANDLER = FileGenerationHandler()

RUNBOOK = """\
# Runbook: {{ service }}

{% for step in steps %}
- {{ step }}
{% endfor %}
Owner: {{ owner }}
"""


def generate(root, dry_run=False, variables=None, written_digests=None, **params):
    task = make_task("file_generation", **params)
    HANDLER.validate(task)
    ctx = make_ctx(root, dry_run=dry_run, variables=variables or {},
                   templates_dir=root / "phases" / "templates", written_digests=written_digests or {})
    return HANDLER.run(task, ctx)


@pytest.fixture
def project(tmp_path):
    write(tmp_path, "phases/templates/runbook.md.j2", RUNBOOK)
    return tmp_path


def test_renders_template_with_plan_and_task_vars(project):
    outcome = generate(project, variables={"owner": "ops", "service": "plan-default"},
                       template="runbook.md.j2", target="docs/runbooks/auth.md",
                       vars={"service": "auth", "steps": ["restart", "check"]})
    assert_status(outcome, "passed")
    assert outcome.changed == ["docs/runbooks/auth.md"]
    assert (project / "docs/runbooks/auth.md").read_text() == (
        "# Runbook: auth\n\n- restart\n- check\nOwner: ops\n")
    assert outcome.diff.startswith("--- /dev/null\n+++ b/docs/runbooks/auth.md\n")
    again = generate(project, variables={"owner": "ops"}, template="runbook.md.j2",
                     target="docs/runbooks/auth.md",
                     vars={"service": "auth", "steps": ["restart", "check"]})
    assert_status(again, "up_to_date")
    assert again.changed == [] and again.diff == ""


def test_inline_content(tmp_path):
    outcome = generate(tmp_path, content="x = {{ n * 2 }}\n", target="a.txt", vars={"n": 21})
    assert_status(outcome, "passed")
    assert (tmp_path / "a.txt").read_text() == "x = 42\n"


def test_undefined_variable_names_it_and_the_template_line(project):
    with pytest.raises(HandlerError) as info:
        generate(project, template="runbook.md.j2", target="r.md",
                 vars={"service": "auth", "steps": []})
    assert str(info.value) == "phases/templates/runbook.md.j2:6: undefined variable 'owner'"
    assert not (project / "r.md").exists()


def test_undefined_variable_in_inline_content(tmp_path):
    with pytest.raises(HandlerError, match=r"^content:2: undefined variable 'who'$"):
        generate(tmp_path, content="hello\n{{ who }}\n", target="a.txt")


def test_missing_template_is_named(project):
    with pytest.raises(HandlerError, match=r"^template 'nope.j2' not found \(looked in phases/templates\)$"):
        generate(project, template="nope.j2", target="a.txt")


def test_existing_different_file_is_left_alone_unless_overwrite(tmp_path):
    path = write(tmp_path, "a.txt", "mine\n")
    outcome = generate(tmp_path, content="generated\n", target="a.txt")
    assert_status(outcome, "up_to_date")
    assert outcome.message == "a.txt: exists and was not written by this plan; overwrite: true replaces it"
    assert outcome.changed == [] and path.read_text() == "mine\n"
    replaced = generate(tmp_path, content="generated\n", target="a.txt", overwrite=True)
    assert_status(replaced, "passed")
    assert replaced.changed == ["a.txt"]
    assert "-mine\n+generated\n" in replaced.diff
    assert path.read_text() == "generated\n"


def test_overwrite_false_follows_the_digest_of_what_the_plan_wrote(tmp_path):
    path = write(tmp_path, "a.txt", "first\n")
    plan_wrote = {"a.txt": sha256_bytes(b"first\n")}
    regenerated = generate(tmp_path, content="second\n", target="a.txt", written_digests=plan_wrote)
    assert_status(regenerated, "passed")
    assert path.read_text() == "second\n" and regenerated.changed == ["a.txt"]
    path.write_text("second, edited\n")
    kept = generate(tmp_path, content="third\n", target="a.txt",
                    written_digests={"a.txt": sha256_bytes(b"second\n")})
    assert_status(kept, "up_to_date")
    assert kept.message == "a.txt: edited by hand since generated; overwrite: true replaces it"
    assert path.read_text() == "second, edited\n"


def test_dry_run_shows_diff_and_writes_nothing(project):
    write(project, "docs/a.md", "old\n")
    before = snapshot(project)
    outcome = generate(project, dry_run=True, content="new\n", target="docs/a.md", overwrite=True)
    assert_status(outcome, "passed")
    assert outcome.changed == ["docs/a.md"]
    assert outcome.diff == unified_diff("docs/a.md", "old\n", "new\n")
    created = generate(project, dry_run=True, content="x\n", target="new/b.md")
    assert created.changed == ["new/b.md"] and "+x" in created.diff
    assert snapshot(project) == before
    assert not (project / "new").exists()


@pytest.mark.parametrize("target", ["../escape.txt", "link/escape.txt", "ABSOLUTE"])
def test_targets_outside_the_root_are_refused(tmp_path, target):
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(tmp_path, root / "link")
    target = str(tmp_path / "escape.txt") if target == "ABSOLUTE" else target
    with pytest.raises(HandlerError, match="target: .* is outside the project root"):
        generate(root, content="x\n", target=target)
    assert not (tmp_path / "escape.txt").exists()


def test_template_symlinked_out_of_the_project_is_refused(tmp_path):
    root = tmp_path / "root"
    write(tmp_path, "secret.j2", "secret\n")
    (root / "phases/templates").mkdir(parents=True)
    os.symlink(tmp_path / "secret.j2", root / "phases/templates/t.j2")
    with pytest.raises(HandlerError, match="outside the project root"):
        generate(root, template="t.j2", target="out.txt")


def test_atomic_write_keeps_mode_and_leaves_no_temp_files(tmp_path):
    path = write(tmp_path, "run.sh", "#!/bin/sh\n")
    path.chmod(0o755)
    atomic_write(path, "#!/bin/sh\necho hi\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o755
    atomic_write(tmp_path / "new" / "file.txt", "x")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["file.txt", "new", "run.sh"]


@pytest.mark.parametrize(("params", "message"), [
    ({"target": "a"}, "file_generation needs 'template' or 'content'"),
    ({"template": "a.j2", "content": "x", "target": "a"}, "give either 'template' or 'content'"),
    ({"content": "x"}, "file_generation needs 'target'"),
    ({"content": "{% if %}", "target": "a"}, "content: template syntax error at line 1"),
    ({"content": "x", "target": "a", "overwrite": "yes"}, "'overwrite' must be true or false"),
    ({"content": "x", "target": "a", "vars": ["a"]}, "'vars' must be a mapping"),
    ({"template": "../x.j2", "target": "a"}, "template '../x.j2' must be a path inside"),
])
def test_validate(params, message):
    with pytest.raises(PlanError) as info:
        HANDLER.validate(make_task("file_generation", **params))
    assert f"task '1.1': {message}" in str(info.value)


def test_inputs_are_template_and_existing_target(project):
    ctx = make_ctx(project, templates_dir=project / "phases" / "templates")
    task = make_task("file_generation", template="runbook.md.j2", target="r.md")
    assert HANDLER.inputs(task, ctx) == [(project / "phases/templates/runbook.md.j2").resolve()]
    write(project, "r.md", "x")
    assert len(HANDLER.inputs(task, ctx)) == 2
