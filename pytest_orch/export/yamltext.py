"""YAML text for the exported files: keys in the order given, multi-line commands as literal blocks."""

from __future__ import annotations

from typing import Any

import yaml

from pytest_orch.export.jobs import EXPORT_MARK, Export


class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        # list items indented under their key, as GitHub's and GitLab's own examples write them
        super().increase_indent(flow, False)


def _str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _str)


def header(export: Export, target: str, usage: str) -> str:
    by = "phase" if export.by == "phase" else "group (and one job for each phase's checkpoints)"
    return (f"{EXPORT_MARK} {target}) from plan {export.plan!r}, version {export.plan_digest}.\n"
            f"# One job per {by}; each hands its .orch/ state, reports and changed files on as an artifact.\n"
            f"# Export again rather than edit: pytest --orch-export {target} --force\n"
            + "".join(f"# {line}\n" for line in usage.splitlines()))


def dump(document: dict[str, Any]) -> str:
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=120, allow_unicode=True)
