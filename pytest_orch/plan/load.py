"""Safe YAML loading that remembers where every mapping key and list item stands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pytest_orch.errors import Location, PlanError

try:  # the C parser is several times faster on large plans; marks work the same
    _BaseLoader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - libyaml missing
    _BaseLoader = yaml.SafeLoader


class MarkedDict(dict):
    """A mapping from YAML that knows its own location and each key's location."""

    loc: Location
    key_locs: dict[str, Location]

    def loc_of(self, key: str) -> Location:
        return self.key_locs.get(key, self.loc)


class MarkedList(list):
    """A sequence from YAML that knows its own location and each item's location."""

    loc: Location
    item_locs: list[Location]


def _location(relpath: str, mark: yaml.Mark) -> Location:
    return Location(relpath, mark.line + 1, mark.column + 1)


def _make_loader(relpath: str) -> type:
    class MarkedLoader(_BaseLoader):  # type: ignore[misc, valid-type]
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> MarkedDict:
            if not isinstance(node, yaml.MappingNode):
                raise yaml.constructor.ConstructorError(
                    None, None, f"expected a mapping, found {node.id}", node.start_mark
                )
            self.flatten_mapping(node)
            result = MarkedDict()
            result.loc = _location(relpath, node.start_mark)
            result.key_locs = {}
            for key_node, value_node in node.value:
                key = self.construct_object(key_node, deep=True)
                key_loc = _location(relpath, key_node.start_mark)
                if not isinstance(key, (str, int, float, bool)) or key is None:
                    raise PlanError(key_loc, f"mapping key {key!r} is not a plain scalar")
                key = str(key) if not isinstance(key, str) else key
                if key in result:
                    first = result.key_locs[key]
                    raise PlanError(key_loc, f"duplicate key {key!r} (first at line {first.line})")
                result[key] = self.construct_object(value_node, deep=True)
                result.key_locs[key] = key_loc
            return result

        def construct_yaml_map(self, node: yaml.MappingNode):  # type: ignore[override]
            yield self.construct_mapping(node, deep=True)

        def construct_yaml_seq(self, node: yaml.SequenceNode):  # type: ignore[override]
            result = MarkedList()
            result.loc = _location(relpath, node.start_mark)
            result.item_locs = [_location(relpath, child.start_mark) for child in node.value]
            yield result
            result.extend(self.construct_object(child, deep=True) for child in node.value)

    MarkedLoader.add_constructor("tag:yaml.org,2002:map", MarkedLoader.construct_yaml_map)
    MarkedLoader.add_constructor("tag:yaml.org,2002:seq", MarkedLoader.construct_yaml_seq)
    return MarkedLoader


def load_yaml(path: Path, relpath: str) -> Any:
    """Parse one plan file; YAML errors become a PlanError at the offending line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError(Location(relpath, 1), f"cannot read plan file: {exc}") from None
    try:
        return yaml.load(text, Loader=_make_loader(relpath))  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        # the context mark is where the broken construct starts (an unclosed bracket), which is
        # where a person should look; the problem mark may be at the end of the file
        mark = exc.context_mark or exc.problem_mark
        loc = _location(relpath, mark) if mark else Location(relpath, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            problem = f"{exc.context}: {exc.problem}" if "while" not in exc.context else exc.problem
        raise PlanError(loc, f"YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        raise PlanError(Location(relpath, 1), f"YAML error: {exc}") from None
