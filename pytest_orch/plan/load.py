"""Safe YAML loading that remembers where every mapping key and list item stands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pytest_orch.errors import Location, PlanError

# An alias may repeat a whole subtree, so a few lines can stand for billions of values (an
# "alias bomb"); everything after loading walks the expanded values. A real plan of 5000 tasks
# expands to about 100 000 values, so this bound leaves room and still answers within a second.
MAX_EXPANDED_VALUES = 1_000_000
MAX_DEPTH = 100  # plans nest a handful of levels; deeper is a mistake, and recursion has limits
STR_TAG = "tag:yaml.org,2002:str"
MERGE_TAG = "tag:yaml.org,2002:merge"

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
            merged = 0
            if any(key_node.tag == MERGE_TAG for key_node, _ in node.value):
                own = sum(1 for key_node, _ in node.value if key_node.tag != MERGE_TAG)
                self.flatten_mapping(node)
                merged = len(node.value) - own  # flatten_mapping puts the pairs of `<<: *x` first
            from_merge: set[str] = set()
            result = MarkedDict()
            result.loc = _location(relpath, node.start_mark)
            result.key_locs = {}
            for index, (key_node, value_node) in enumerate(node.value):
                # a plain string key needs no constructor (the common case: a large plan has 40 000)
                key = key_node.value if key_node.tag == STR_TAG else self.construct_object(key_node, deep=True)
                mark = key_node.start_mark
                key_loc = Location(relpath, mark.line + 1, mark.column + 1)
                if not isinstance(key, (str, int, float, bool)) or key is None:
                    raise PlanError(key_loc, f"mapping key {key!r} is not a plain scalar")
                key = str(key) if not isinstance(key, str) else key
                if index < merged:
                    from_merge.add(key)
                elif key in from_merge:
                    from_merge.discard(key)  # an explicit key overrides the merged one: YAML's rule
                elif key in result:
                    first = result.key_locs[key]
                    raise PlanError(key_loc, f"duplicate key {key!r} (first at line {first.line})")
                result[key] = self.value_of(value_node)
                result.key_locs[key] = key_loc
            return result

        def construct_yaml_map(self, node: yaml.MappingNode):  # type: ignore[override]
            yield self.construct_mapping(node, deep=True)

        def construct_yaml_seq(self, node: yaml.SequenceNode):  # type: ignore[override]
            result = MarkedList()
            result.loc = _location(relpath, node.start_mark)
            result.item_locs = [_location(relpath, child.start_mark) for child in node.value]
            yield result
            result.extend(self.value_of(child) for child in node.value)

        def value_of(self, node: yaml.Node) -> Any:
            """A string scalar as it is (most of a plan's values), anything else by its constructor."""
            if node.tag == STR_TAG and isinstance(node, yaml.ScalarNode):
                return node.value
            return self.construct_object(node, deep=True)

        def construct_yaml_int(self, node: yaml.ScalarNode) -> int:  # type: ignore[override]
            try:
                return super().construct_yaml_int(node)
            except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
                raise PlanError(_location(relpath, node.start_mark),
                                f"a number of {len(str(node.value))} digits is far out of range") from None

        def get_single_data(self) -> Any:
            node = self.get_single_node()
            if node is None:
                return None
            if self.may_alias:  # without an anchor there is no alias: the walk would only cost time
                _check_expanded_size(node, relpath)
            return self.construct_document(node)

    MarkedLoader.add_constructor("tag:yaml.org,2002:int", MarkedLoader.construct_yaml_int)
    MarkedLoader.add_constructor("tag:yaml.org,2002:map", MarkedLoader.construct_yaml_map)
    MarkedLoader.add_constructor("tag:yaml.org,2002:seq", MarkedLoader.construct_yaml_seq)
    return MarkedLoader


def _check_expanded_size(root: yaml.Node, relpath: str) -> None:
    """Refuse a document whose aliases expand past MAX_EXPANDED_VALUES, or that nests past MAX_DEPTH.

    Counts each node once per place it is used, without expanding anything: an alias shares its
    anchor's node, so the size of a node is memoised and a bomb is measured in microseconds.
    """
    size: dict[int, int] = {}
    # iterative post-order walk: (node, depth, children visited?)
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    on_path: set[int] = set()
    while stack:
        node, depth, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            children = _children(node)
            total = 1 + sum(size[id(child)] for child in children)
            size[key] = total
            if total > MAX_EXPANDED_VALUES:
                raise PlanError(_location(relpath, node.start_mark),
                                f"YAML aliases expand this value to more than {MAX_EXPANDED_VALUES:,} values "
                                f"(an alias bomb?); write the values out or use fewer aliases")
            continue
        if key in size:
            continue
        if key in on_path:
            raise PlanError(_location(relpath, node.start_mark), "YAML alias refers to itself (a recursive value)")
        if depth > MAX_DEPTH:
            raise PlanError(_location(relpath, node.start_mark), f"values nested more than {MAX_DEPTH} levels deep")
        on_path.add(key)
        stack.append((node, depth, True))
        stack.extend((child, depth + 1, False) for child in _children(node) if id(child) not in size)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def load_yaml(path: Path, relpath: str) -> Any:
    """Parse one plan file; YAML errors become a PlanError at the offending line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError(Location(relpath, 1), f"cannot read plan file: {exc}") from None
    loader = _make_loader(relpath)(text)
    loader.may_alias = "&" in text
    try:
        return loader.get_single_data()
    except RecursionError:  # nesting the size check did not see (it runs only when anchors exist)
        raise PlanError(Location(relpath, 1), "values nested too deeply for a plan") from None
    except yaml.MarkedYAMLError as exc:
        mark = _error_mark(exc, text)
        loc = _location(relpath, mark) if mark else Location(relpath, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            problem = f"{exc.context}: {exc.problem}" if "while" not in exc.context else exc.problem
        raise PlanError(loc, f"YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        raise PlanError(Location(relpath, 1), f"YAML error: {exc}") from None
    finally:
        loader.dispose()


def _error_mark(exc: yaml.MarkedYAMLError, text: str) -> yaml.Mark | None:
    """Where a person should look: the parser's problem mark, unless the problem is that a
    bracket or quote never closed (then the mark is at the end of the file and the opening
    bracket or quote, the context mark, is the place)."""
    problem, context = exc.problem_mark, exc.context_mark
    if problem is None:
        return context
    unclosed = context is not None and any(word in (exc.context or "") for word in ("flow", "quoted"))
    at_end = problem.index >= len(text.rstrip())
    return context if context is not None and (unclosed or at_end) else problem
