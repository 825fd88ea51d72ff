"""The ``file_generation`` handler: render a Jinja2 template (a file or inline ``content``) to ``target``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from pytest_orch.handlers import params, templating

from pytest_orch.errors import HandlerError
from pytest_orch.fileio import unified_diff
from pytest_orch.fingerprint import sha256_bytes
from pytest_orch.handler import Outcome, TaskContext, plan_templates_dir
from pytest_orch.plan.model import Task


def templates_dir(task: Task, ctx: TaskContext) -> Path | None:
    """The plan's templates folder: the one the core gives, else ``<plan dir>/templates``."""
    if ctx.templates_dir is not None:
        return Path(ctx.templates_dir)
    return plan_templates_dir(ctx.root, task.plan_dir)


def search_path(task: Task, ctx: TaskContext, packaged: bool) -> list[Path]:
    folders = [d for d in [templates_dir(task, ctx)] if d is not None]
    return folders + ([templating.PACKAGED_TEMPLATES] if packaged else [])


def validate_template_keys(task: Task) -> None:
    """Checks shared by file_generation and test_generation."""
    for key in ("template", "content"):
        params.expect(task, key, str)
    if "template" in task.params and "content" in task.params:
        raise params.error(task, "content", "give either 'template' or 'content', not both")
    if "content" in task.params:
        problem = templating.check_syntax(task.params["content"])
        if problem:
            raise params.error(task, "content", f"content: template syntax error at {problem}")
    template = task.params.get("template")
    if template and (Path(template).is_absolute() or ".." in Path(template).parts):
        raise params.error(task, "template",
                           f"template {template!r} must be a path inside the templates folder")
    variables = params.expect(task, "vars", dict)
    for name in variables or {}:
        if not isinstance(name, str) or not name.isidentifier():
            raise params.error(task, "vars", f"vars: {name!r} is not a valid variable name")
    params.expect(task, "overwrite", bool)


def render_task(task: Task, ctx: TaskContext, extra: Mapping[str, Any] | None = None,
                default_template: str | None = None, packaged: bool = False) -> str:
    """Render the task's template with plan vars, then ``extra``, then the task's ``vars``."""
    env = templating.environment(search_path(task, ctx, packaged))
    variables: dict[str, Any] = {**ctx.variables, **(extra or {}),
                                 **(task.params.get("vars") or {})}
    if "content" in task.params:
        return templating.render(env, variables, source=task.params["content"], root=ctx.root)
    name = task.params.get("template") or default_template
    if not name:
        raise HandlerError("no template or content given")
    found = templating.find_template(env, name)
    if found is not None and templating.PACKAGED_TEMPLATES not in found.resolve().parents:
        ctx.resolve(found, key="template")  # a symlink out of the project is refused
    return templating.render(env, variables, name=name, root=ctx.root)


def template_inputs(task: Task, ctx: TaskContext, default: str | None, packaged: bool) -> list[Path]:
    if "content" in task.params:
        return []
    name = task.params.get("template") or default
    if not isinstance(name, str):
        return []
    try:
        found = templating.find_template(templating.environment(search_path(task, ctx, packaged)),
                                         name)
    except OSError:
        return []
    if found is None:
        return []
    if templating.PACKAGED_TEMPLATES in found.resolve().parents:
        return [found.resolve()]
    return params.existing(ctx, str(found), "template")


def read_existing(ctx: TaskContext, path: Path, rel: str) -> str | None:
    """The current text of a target, None when absent; HandlerError for a folder or binary."""
    if not ctx.files.exists(path):
        return None
    if not ctx.files.is_file(path):
        raise HandlerError(f"{rel}: exists and is not a file")
    try:
        return ctx.files.read_text(path)
    except UnicodeDecodeError:
        raise HandlerError(f"{rel}: exists and is not a UTF-8 text file") from None


def write_outcome(ctx: TaskContext, path: Path, rel: str, old: str | None, new: str) -> Outcome:
    """Write ``new`` (unless dry run) and describe it; ``old`` is the current text or None."""
    if old == new:
        return Outcome("up_to_date", message=f"{rel} already up to date")
    diff = unified_diff(rel, old, new)
    verb = "create" if old is None else "update"
    ctx.files.write_text(path, new)
    if ctx.dry_run:
        return Outcome("passed", message=f"would {verb} {rel}", changed=[rel], diff=diff)
    return Outcome("passed", message=f"{verb}d {rel}", changed=[rel], diff=diff)


class FileGenerationHandler:
    """Render ``template`` (relative to the plan's templates folder) or ``content`` to ``target``."""

    keys: ClassVar[frozenset[str]] = frozenset({"template", "content", "target", "vars", "overwrite"})
    path_keys: ClassVar[frozenset[str]] = frozenset({"target"})
    write_keys: ClassVar[frozenset[str]] = frozenset({"target"})
    version: ClassVar[str] = "1"
    contained: ClassVar[bool] = True  # a render in this package's Python: it may run in the xdist controller
    writes_files: ClassVar[bool] = True
    knows_changes: ClassVar[bool] = True
    typical_seconds: ClassVar[float] = 0.005  # a render in Python: -n does not pay off for it

    def validate(self, task: Task) -> None:
        params.one_of(task, "template", "content")
        validate_template_keys(task)
        params.expect(task, "target", str, required=True)

    def inputs(self, task: Task, ctx: TaskContext) -> list[Path]:
        return template_inputs(task, ctx, None, False) + params.existing(
            ctx, task.params.get("target"), "target")

    def writes(self, task: Task, ctx: TaskContext) -> list[Path]:
        return [ctx.resolve(task.params["target"], key="target", write=True)]

    def run(self, task: Task, ctx: TaskContext) -> Outcome:
        path = ctx.resolve(task.params["target"], key="target", write=True)
        rel = ctx.relative(path)
        old = read_existing(ctx, path, rel)
        new = render_task(task, ctx)
        if old is not None and old != new and not task.params.get("overwrite", False):
            someone_else = _changed_by_someone_else(path, rel, ctx)
            if someone_else:
                # up to date, not skipped: the file is there and meant to stay, so dependents still run;
                # the reason is kept in the state and repeated by every later run while it holds
                return Outcome("up_to_date", message=f"{rel}: {someone_else}; overwrite: true replaces it")
        return write_outcome(ctx, path, rel, old, new)


def _changed_by_someone_else(path: Path, rel: str, ctx: TaskContext) -> str | None:
    """Why ``overwrite: false`` keeps the target, or None when it holds exactly what the plan last wrote.

    The state keeps the digest of what a task left at each path: a target that still has it is the
    plan's own output and follows the definition; any other content is somebody's work.
    """
    recorded = ctx.written_digests.get(rel)
    if recorded is not None and sha256_bytes(ctx.files.read_text(path).encode("utf-8")) == recorded:
        return None
    if recorded is not None:
        return "edited by hand since generated"
    return "exists and was not written by this plan"
