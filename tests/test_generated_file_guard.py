"""file_generation with ``overwrite: false`` across runs: the plan's own output follows the definition, a hand
edit is kept and said so (and counts as done for dependents), never a silent pass."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("xdist")


def plan(content: str) -> str:
    return f"""
phase: 1
groups:
  - id: a
    tasks:
      - {{id: "1.1", type: file_generation, content: "{content}\\n", target: docs/gen.md}}
      - {{id: "1.2", type: command, run: "cat docs/gen.md", depends_on: ["1.1"]}}
"""


def run(pytester: pytest.Pytester, workers: list[str]) -> dict[str, dict]:
    if workers:
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *workers)
    else:
        result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == 0, result.stdout.str()[-3000:]
    report = json.loads((pytester.path / "reports" / "run.json").read_text())
    return {t["id"]: t for t in report["tasks"]}


@pytest.mark.parametrize("workers", [[], ["-n", "2", "--orch-parallel=always"]], ids=["in-process", "n2"])
def test_regenerated_while_untouched_kept_once_edited_by_hand(pytester, workers):
    target = pytester.path / "docs" / "gen.md"
    pytester.makefile(".yaml", **{"phases/p1": plan("version one")})
    first = run(pytester, workers)
    assert first["1.1"]["outcome"] == "passed" and target.read_text() == "version one\n"

    # the definition changes and the file is still what the plan wrote: it follows the definition
    pytester.makefile(".yaml", **{"phases/p1": plan("version two")})
    second = run(pytester, workers)
    assert second["1.1"]["outcome"] == "passed", second["1.1"]
    assert target.read_text() == "version two\n"

    # edited by hand, then the definition changes again: the edit stays, the task says why
    target.write_text("version two, with my notes\n")
    pytester.makefile(".yaml", **{"phases/p1": plan("version three")})
    third = run(pytester, workers)
    assert third["1.1"]["outcome"] == "up_to_date"
    assert third["1.1"]["message"] == ("docs/gen.md: edited by hand since generated; "
                                       "overwrite: true replaces it")
    assert third["1.2"]["outcome"] in ("passed", "up_to_date")  # done for its dependents
    assert target.read_text() == "version two, with my notes\n"

    # a later run with nothing changed still gives the reason
    fourth = run(pytester, workers)
    assert fourth["1.1"]["outcome"] == "up_to_date"
    assert "edited by hand since generated; overwrite: true replaces it" in fourth["1.1"]["message"]
    assert target.read_text() == "version two, with my notes\n"


def test_a_file_the_plan_never_wrote_is_kept_and_dependents_run(pytester):
    target = pytester.path / "docs" / "gen.md"
    target.parent.mkdir()
    target.write_text("written by a person\n")
    pytester.makefile(".yaml", **{"phases/p1": plan("generated")})
    tasks = run(pytester, [])
    assert tasks["1.1"]["outcome"] == "up_to_date"
    assert tasks["1.1"]["message"] == ("docs/gen.md: exists and was not written by this plan; "
                                       "overwrite: true replaces it")
    assert tasks["1.2"]["outcome"] == "passed"
    assert target.read_text() == "written by a person\n"
