"""``${NAME}`` substitution in every string of a plan, with locations for unknown names."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from pytest_orch.errors import Location, PlanError
from pytest_orch.plan.load import MarkedDict, MarkedList

# $${NAME} is a literal ${NAME}; ${{ ... }} is a CI expression and is left alone.
_TOKEN = re.compile(r"\$\$\{(?P<escaped>\w+)\}|\$\{\{.*?\}\}|\$\{(?P<name>\w+)\}")
_WHOLE = re.compile(r"^\$\{(\w+)\}$")


def _typed(text: str) -> Any:
    """A value that is a single ${NAME} keeps a number's or boolean's type: fail_under: ${MIN}."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, (int, float, bool)) else text


def substitute(text: str, variables: Mapping[str, str], loc: Location, used: set[str] | None = None) -> str:
    """Replace ``${NAME}`` in one string; an unknown name is a PlanError at ``loc``.

    Each name replaced is added to ``used`` (so ``--var`` can tell a name the plan uses from a typo).
    """
    if "$" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "${" + match.group("escaped") + "}"
        name = match.group("name")
        if name is None:
            return match.group(0)
        if name not in variables:
            known = ", ".join(sorted(variables)) or "none"
            raise PlanError(loc, f"unknown variable ${{{name}}} (defined: {known})")
        if used is not None:
            used.add(name)
        return str(variables[name])

    return _TOKEN.sub(replace, text)


def substitute_all(value: Any, variables: Mapping[str, str], loc: Location, used: set[str] | None = None) -> Any:
    """Return ``value`` with every string in it substituted, keeping line marks."""
    if isinstance(value, str):
        result = substitute(value, variables, loc, used)
        return _typed(result) if _WHOLE.match(value) else result
    if isinstance(value, MarkedDict):
        out = MarkedDict()
        out.loc, out.key_locs = value.loc, value.key_locs
        for key, item in value.items():
            out[key] = substitute_all(item, variables, value.loc_of(key), used)
        return out
    if isinstance(value, MarkedList):
        out_list = MarkedList()
        out_list.loc, out_list.item_locs = value.loc, value.item_locs
        out_list.extend(
            substitute_all(item, variables, value.item_locs[i] if i < len(value.item_locs) else loc, used)
            for i, item in enumerate(value)
        )
        return out_list
    if isinstance(value, dict):
        return {k: substitute_all(v, variables, loc, used) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute_all(v, variables, loc, used) for v in value]
    return value


def plain(value: Any) -> Any:
    """Return ``value`` as plain dicts and lists (for fingerprints and handlers)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value
