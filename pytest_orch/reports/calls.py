"""The run's requests to providers, summed per provider for the terminal summary."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pytest_orch.results import TaskResult


def provider_totals(results: Iterable[TaskResult]) -> dict[str, dict[str, Any]]:
    """Per provider: calls, 429s (or quota answers), tokens in and out, cost (None when unpriced)."""
    totals: dict[str, dict[str, Any]] = {}
    for result in results:
        for call in result.calls:
            entry = totals.setdefault(call.get("provider", "?"), {
                "calls": 0, "throttled": 0, "tokens_in": 0, "tokens_out": 0, "cost": None})
            entry["calls"] += 1
            entry["throttled"] += 1 if call.get("throttled") else 0
            entry["tokens_in"] += call.get("tokens_in") or 0
            entry["tokens_out"] += call.get("tokens_out") or 0
            if call.get("cost") is not None:
                entry["cost"] = (entry["cost"] or 0.0) + call["cost"]
    return totals


def provider_lines(results: Iterable[TaskResult]) -> list[str]:
    """``provider gemini: 12 calls, 2 429s, 3400 tokens in, 5100 out, cost 0.0123``, one per provider."""
    lines = []
    for name, t in sorted(provider_totals(results).items()):
        cost = f", cost {t['cost']:.4f}" if t["cost"] is not None else ""
        lines.append(f"provider {name}: {t['calls']} calls, {t['throttled']} 429s, "
                     f"{t['tokens_in']} tokens in, {t['tokens_out']} out{cost}")
    return lines
