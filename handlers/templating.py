"""The Jinja2 environment of file_generation and test_generation, and its errors as one-liners.

StrictUndefined, trim_blocks, lstrip_blocks, keep_trailing_newline and no autoescape, as the plan
contract says. Templates are looked up in the plan's ``templates/`` folder first, then in the ones
shipped with pytest-orch, so a plan overrides a packaged template by giving one of the same name.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import jinja2

from pytest_orch.errors import HandlerError

PACKAGED_TEMPLATES = Path(__file__).resolve().parent / "templates"

_UNDEFINED = re.compile(r"^'([^']+)' is undefined$")


def environment(search_path: list[Path] | tuple[Path, ...] = ()) -> jinja2.Environment:
    """Return an environment that loads templates from ``search_path``, first match wins."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(p) for p in search_path if p.is_dir()]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def check_syntax(source: str) -> str | None:
    """Return ``line N: problem`` for inline template text that does not compile, else None."""
    try:
        environment().parse(source)
    except jinja2.TemplateSyntaxError as exc:
        return f"line {exc.lineno}: {exc.message}"
    return None


def find_template(env: jinja2.Environment, name: str) -> Path | None:
    """Return the file the environment would load for ``name``, or None when there is none."""
    loader = env.loader
    assert isinstance(loader, jinja2.FileSystemLoader)
    for folder in loader.searchpath:
        candidate = Path(folder, *name.split("/"))
        if candidate.is_file():
            return candidate
    return None


def render(
    env: jinja2.Environment,
    variables: Mapping[str, Any],
    *,
    name: str | None = None,
    source: str | None = None,
    root: Path,
) -> str:
    """Render the template called ``name`` or the inline ``source``; raise HandlerError on failure.

    Error messages name the template as ``path:line`` (relative to ``root`` when inside it, or
    ``content:line`` for inline text) and the undefined variable, e.g.
    ``phases/templates/runbook.md.j2:4: undefined variable 'owner'``.
    """
    label = "content"
    try:
        if name is not None:
            try:
                template = env.get_template(name)
            except jinja2.TemplateNotFound as exc:
                folders = ", ".join(_show(Path(p), root) for p in env.loader.searchpath)  # type: ignore[union-attr]
                raise HandlerError(
                    f"template {exc.name!r} not found (looked in {folders or 'no folder'})"
                ) from None
            label = _show(Path(template.filename), root) if template.filename else name
        else:
            assert source is not None
            template = env.from_string(source)
        return template.render(**variables)
    except jinja2.TemplateSyntaxError as exc:
        where = _show(Path(exc.filename), root) if exc.filename else label
        raise HandlerError(f"{where}:{exc.lineno}: template syntax error: {exc.message}") from None
    except jinja2.UndefinedError as exc:
        where = _template_frame(sys.exc_info()[2], root, label, env)
        raise HandlerError(f"{where}: {_undefined_message(exc)}") from None
    except HandlerError:
        raise
    except Exception as exc:  # a filter or test failing on a value: still a template problem
        where = _template_frame(sys.exc_info()[2], root, label, env)
        raise HandlerError(f"{where}: {type(exc).__name__}: {exc}") from None


def _undefined_message(exc: jinja2.UndefinedError) -> str:
    message = str(exc.message or exc)
    match = _UNDEFINED.match(message)
    return f"undefined variable {match.group(1)!r}" if match else f"undefined: {message}"


def _template_frame(
    tb: TracebackType | None, root: Path, label: str, env: jinja2.Environment
) -> str:
    """``file:line`` of the innermost template frame of a rendering traceback.

    Jinja rewrites tracebacks so that template frames carry the template's file name and line.
    """
    loader = env.loader
    folders = [
        str(Path(p).resolve()) + "/" for p in getattr(loader, "searchpath", [])
    ] + [p + "/" for p in getattr(loader, "searchpath", [])]
    where = label
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename == "<template>":
            where = f"{label}:{tb.tb_lineno}"
        elif any(filename.startswith(folder) for folder in folders):
            where = f"{_show(Path(filename), root)}:{tb.tb_lineno}"
        tb = tb.tb_next
    return where


def _show(path: Path, root: Path) -> str:
    """A template's path for a message: relative to the root, or to the packaged folder."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        pass
    try:
        rel = path.resolve().relative_to(PACKAGED_TEMPLATES).as_posix()
        return f"pytest_orch/handlers/templates/{rel}"
    except ValueError:
        return str(path)
