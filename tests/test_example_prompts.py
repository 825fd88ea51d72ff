"""The offline prompt example (examples/prompts) runs as documented, on a copy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import assert_tasks

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "prompts"


def test_example_plan_asks_the_stub_cli_once(pytester, monkeypatch):
    shutil.copytree(EXAMPLE, pytester.path, dirs_exist_ok=True)
    monkeypatch.setenv("FAKE_LLM_QUOTA_FIRST", "1")  # one quota error first: waited out, not a failure
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["provider fake: 3 calls, 1 429s, 0 tokens in, 0 out"])
    assert "- `src/billing.py`" in (pytester.path / "docs/services.md").read_text()
    assert json.loads((pytester.path / "docs/outline.json").read_text())["functions"] == ["login", "logout", "invoice"]
    assert_tasks(pytester.runpytest(), up_to_date=2)
    assert (pytester.path / ".fake_llm_calls").read_text() == "3"
