"""JSON edits keep the file's layout: only the edited values' lines change (config_edit on real files)."""

from __future__ import annotations

import copy
import json
import random

import pytest
from handler_support import assert_status, make_ctx, make_task, write
from pytest_orch.handlers import dotted_path
from pytest_orch.handlers.config_edit import ConfigEditHandler
from pytest_orch.handlers.formats import load_json, plain

HANDLER = ConfigEditHandler()

# 2-space top level, a 4-space block inside, inline arrays (one with spaces inside the brackets)
PACKAGE_JSON = """\
{
  "name": "webapp",
  "keywords": ["api", "billing"],
  "files": [ "dist" ],
  "scripts": {
    "test": "jest",
    "lint": "tsc --noEmit"
  },
  "jest": {
      "preset": "ts-jest",
      "testMatch": [
          "<rootDir>/src/**/*.test.ts"
      ],
      "coverageReporters": ["text", "lcov"]
  }
}
"""


def edit(root, **params):
    task = make_task("config_edit", **params)
    HANDLER.validate(task)
    return HANDLER.run(task, make_ctx(root))


def changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    """The lines only in ``before`` and the lines only in ``after``, by position-free comparison."""
    old, new = before.splitlines(), after.splitlines()
    return [ln for ln in old if ln not in new], [ln for ln in new if ln not in old]


def test_set_changes_only_the_value_text(tmp_path):
    path = write(tmp_path, "package.json", PACKAGE_JSON)
    assert_status(edit(tmp_path, file="package.json", set={"jest.preset": "babel-jest", "name": "web"}), "passed")
    after = path.read_text()
    assert after == PACKAGE_JSON.replace('"ts-jest"', '"babel-jest"').replace('"webapp"', '"web"')


def test_append_to_inline_and_block_arrays_keeps_each_style(tmp_path):
    path = write(tmp_path, "package.json", PACKAGE_JSON)
    outcome = edit(tmp_path, file="package.json", append={
        "keywords": ["orch"], "files": ["README.md"], "jest.coverageReporters": ["html"],
        "jest.testMatch": ["<rootDir>/tests/**/*.test.ts"]})
    assert_status(outcome, "passed")
    removed, added = changed_lines(PACKAGE_JSON, path.read_text())
    assert removed == ['  "keywords": ["api", "billing"],', '  "files": [ "dist" ],',
                       '          "<rootDir>/src/**/*.test.ts"', '      "coverageReporters": ["text", "lcov"]']
    assert added == ['  "keywords": ["api", "billing", "orch"],', '  "files": [ "dist", "README.md" ],',
                     '          "<rootDir>/src/**/*.test.ts",', '          "<rootDir>/tests/**/*.test.ts"',
                     '      "coverageReporters": ["text", "lcov", "html"]']
    # the diff the task reports touches those lines only
    assert outcome.diff.count("\n-") == 4 and outcome.diff.count("\n+") == 5 + 1  # +1: the +++ header


def test_remove_takes_the_member_and_its_comma_only(tmp_path):
    path = write(tmp_path, "package.json", PACKAGE_JSON)
    assert_status(edit(tmp_path, file="package.json", remove=["scripts.lint", "keywords.0"]), "passed")
    removed, added = changed_lines(PACKAGE_JSON, path.read_text())
    assert removed == ['  "keywords": ["api", "billing"],', '    "test": "jest",', '    "lint": "tsc --noEmit"']
    assert added == ['  "keywords": ["billing"],', '    "test": "jest"']
    json.loads(path.read_text())


def test_new_keys_follow_the_blocks_own_indent(tmp_path):
    path = write(tmp_path, "package.json", PACKAGE_JSON)
    edit(tmp_path, file="package.json", set={"jest.coverageThreshold.global.lines": 80, "private": True},
         append={"jest.collectCoverageFrom": ["src/**/*.ts"]})
    after = path.read_text()
    assert after.startswith(PACKAGE_JSON[: PACKAGE_JSON.index('      "coverageReporters"')])
    assert after.endswith("""\
      "coverageReporters": ["text", "lcov"],
      "coverageThreshold": {
          "global": {
              "lines": 80
          }
      },
      "collectCoverageFrom": ["src/**/*.ts"]
  },
  "private": true
}
""")


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("indent", [2, 4])
def test_two_and_four_space_files_keep_every_untouched_line(tmp_path, indent, newline):
    data = {"name": "svc", "tags": ["a"], "scripts": {"build": "tsc", "test": "jest"}, "n": 1}
    text = json.dumps(data, indent=indent).replace('[\n' + ' ' * indent * 2 + '"a"\n' + ' ' * indent + ']',
                                                   '["a"]')
    text = text.replace("\n", newline) + newline
    path = write(tmp_path, "a.json", text)
    edit(tmp_path, file="a.json", set={"n": 2}, append={"tags": ["b"]}, remove=["scripts.test"])
    after = path.read_bytes().decode()
    assert json.loads(after) == {"name": "svc", "tags": ["a", "b"], "scripts": {"build": "tsc"}, "n": 2}
    pad = " " * indent
    assert after == newline.join(["{", f'{pad}"name": "svc",', f'{pad}"tags": ["a", "b"],', f'{pad}"scripts": {{',
                                  f'{pad * 2}"build": "tsc"', f"{pad}}},", f'{pad}"n": 2', "}", ""])


def test_compact_one_line_json_stays_one_line(tmp_path):
    path = write(tmp_path, "a.json", '{"a":[1,2],"b":{"c":true}}')
    edit(tmp_path, file="a.json", set={"b.d": "x"}, append={"a": [3]})
    assert path.read_text() == '{"a":[1,2,3],"b":{"c":true,"d":"x"}}'


def _paths(value, prefix=""):
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    out = []
    for key, child in items:
        path = f"{prefix}.{key}" if prefix else str(key)
        out += [path, *_paths(child, path)]
    return out


def _value(rng, depth=0):
    if depth > 2 or rng.random() < 0.4:
        return rng.choice([1, 2.5, True, None, "x", "a,b", "ü", 0, False])
    if rng.random() < 0.5:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {f"k{i}": _value(rng, depth + 1) for i in range(rng.randint(0, 3))}


@pytest.mark.parametrize("seed", range(4))
def test_random_edits_give_the_same_data_as_a_full_rewrite(seed):
    """Valid JSON with the data a plain json.dumps of the edited document would hold, key order included."""
    rng = random.Random(seed)
    for _ in range(300):
        data = {f"k{i}": _value(rng) for i in range(rng.randint(1, 4))}
        indent = rng.choice([2, 4, "\t", None])
        text = json.dumps(data, indent=indent, separators=(",", ":") if indent is None else None)
        doc, expected = load_json(text), copy.deepcopy(data)
        for _ in range(rng.randint(1, 3)):
            paths = _paths(doc.data)
            op = rng.choice(["set", "remove", "append", "add"])
            path = rng.choice(paths) if paths else "k0"
            if op == "add":
                path = f"{path}.new{rng.randint(0, 9)}"
            value = [_value(rng, 2)] if op == "append" else _value(rng, 1)
            try:
                if op == "remove":
                    doc.remove(path)
                else:
                    getattr(doc, "append" if op == "append" else "set")(path, value)
            except dotted_path.PathError:
                continue
            if op == "remove":
                dotted_path.remove(expected, path)
            elif op == "append":
                dotted_path.append(expected, path, value, plain)
            else:
                dotted_path.set_value(expected, path, value, plain)
        out = doc.dump()
        assert json.dumps(json.loads(out)) == json.dumps(expected), (text, out)
