"""Malformed config files and values a format cannot hold: one line naming the file, no traceback, file untouched."""

from __future__ import annotations

import pytest

HUGE_INT = "1" + "0" * 5000
DEEP_JSON = "[" * 100_000 + "]" * 100_000
DEEP_YAML = "a: " + "[" * 100_000 + "]" * 100_000 + "\n"

CASES = {
    # file, its text, the task's edit keys (YAML), the line the output must hold
    "json-huge-integer": ("package.json", f'{{\n  "n": {HUGE_INT}\n}}\n', "set: {name: x}",
                          "*package.json: cannot parse as json: line 2: an integer of 5001 digits "
                          "(more than 4300 cannot be read)*"),
    "json-nested-100000": ("deep.json", DEEP_JSON, "set: {a: 1}",
                           "*deep.json: cannot parse as json: nested too deeply*"),
    "toml-binary-value": ("pyproject.toml", '[project]\nname = "svc"\n',
                          'set: {project.blob: !!binary "AAEC"}',
                          "*pyproject.toml: project.blob: a binary value (!!binary) has no TOML form*"),
    "json-binary-value": ("a.json", '{"a": 1}\n', 'set: {b: !!binary "AAEC"}',
                          "*a.json: b: a binary value (!!binary) has no JSON form*"),
    "json-infinity": ("a.json", '{"a": 1}\n', "set: {b: .inf}", "*a.json: b: inf has no JSON form*"),
    "yaml-bad-binary-tag": ("ci.yml", "a: !!binary not*base64\n", "set: {b: 1}",
                            "*ci.yml: cannot parse as yaml: line 1: failed to decode base64 data*"),
    "yaml-huge-integer": ("ci.yml", f"a: 1\nn: {HUGE_INT}\n", "set: {a: 2}",
                          "*ci.yml: cannot parse as yaml: line 2: an integer of 5001 digits*"),
    "yaml-nested-100000": ("ci.yml", DEEP_YAML, "set: {b: 1}", "*ci.yml: cannot parse as yaml: nested too deeply*"),
    "toml-huge-integer": ("settings.toml", f"n = {HUGE_INT}\n", "set: {a: 1}",
                          "*settings.toml: cannot parse as toml: line 1: *"),
    "ini-junk": ("service.cfg", "[metadata]\nname = svc\n\x00junk without a delimiter\n", "set: {metadata.name: x}",
                 "*service.cfg: cannot parse as ini: line 3: not a section, option or comment*"),
    "ini-binary-value": ("service.cfg", "[metadata]\nname = svc\n", 'set: {metadata.blob: !!binary "AAEC"}',
                         "*service.cfg: cannot set metadata.blob: an INI value cannot be a binary value (!!binary)*"),
}


@pytest.mark.parametrize("case", CASES)
def test_one_line_error_and_the_file_is_untouched(pytester, case):
    name, text, edit, line = CASES[case]
    pytester.makefile(".yaml", **{"phases/p1": f"""
        phase: 1
        groups:
          - id: a
            tasks:
              - id: "1.1"
                type: config_edit
                file: {name}
                {edit}
        """})
    target = pytester.path / name
    target.write_bytes(text.encode())
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([line])
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*RecursionError*")
    result.stdout.no_fnmatch_line("*set_int_max_str_digits*")
    assert len(result.stdout.str()) < 8000, "the error is one line, not a dump"
    assert target.read_bytes() == text.encode()
