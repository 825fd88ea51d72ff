"""manual: skipped with its instructions until confirmed; asks only when interactive."""

from __future__ import annotations

import io
import sys

import pytest
from handler_support import assert_status, make_ctx, make_task
from pytest_orch.handlers.manual import ManualHandler

from pytest_orch.errors import PlanError

HANDLER = ManualHandler()
STEPS = "Rotate the staging API key in the vault,\nthen restart the gateway."


class NoInput(io.StringIO):
    """A stdin that fails the test if anything reads it."""

    def readline(self, *args):  # type: ignore[override]
        raise AssertionError("stdin was read")

    read = readline


def test_unconfirmed_is_skipped_with_the_instructions(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "stdin", NoInput())
    outcome = HANDLER.run(make_task("manual", instructions=STEPS), make_ctx(tmp_path))
    assert_status(outcome, "skipped")
    assert outcome.message == STEPS
    assert outcome.changed == []


def test_confirmed_passes(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "stdin", NoInput())
    outcome = HANDLER.run(make_task("manual", instructions=STEPS), make_ctx(tmp_path, confirmed=True))
    assert_status(outcome, "passed")
    assert outcome.message == "confirmed"


@pytest.mark.parametrize(("answer", "status"), [("y\n", "passed"), ("YES\n", "passed"),
                                                ("\n", "skipped"), ("n\n", "skipped"),
                                                ("", "skipped")])
def test_interactive_prompt(tmp_path, monkeypatch, capsys, answer, status):
    monkeypatch.setattr(sys, "stdin", io.StringIO(answer))
    ctx = make_ctx(tmp_path, interactive=True)
    outcome = HANDLER.run(make_task("manual", instructions=STEPS), ctx)
    assert_status(outcome, status)
    assert capsys.readouterr().out == f"{STEPS}\nDone? [y/N] "


def test_dry_run_never_prompts(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "stdin", NoInput())
    ctx = make_ctx(tmp_path, interactive=True, dry_run=True)
    assert_status(HANDLER.run(make_task("manual", instructions=STEPS), ctx), "skipped")


@pytest.mark.parametrize(("params", "message"), [
    ({}, "manual needs 'instructions'"),
    ({"instructions": ["a"]}, "'instructions' must be a string"),
    ({"instructions": "  "}, "'instructions' must not be empty"),
])
def test_validate(params, message):
    with pytest.raises(PlanError) as info:
        HANDLER.validate(make_task("manual", **params))
    assert f"task '1.1': {message}" in str(info.value)


def test_contract_attributes(tmp_path):
    assert HANDLER.keys == {"instructions"}
    assert HANDLER.writes_files is False
    assert HANDLER.inputs(make_task("manual", instructions="x"), make_ctx(tmp_path)) == []
