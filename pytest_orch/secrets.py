"""Masking of secret values (API keys, the plan's ``secrets:``) in everything a run reports."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

MASK = "***"
MIN_LENGTH = 4  # shorter values ("1", "no") would mask ordinary words: they are not treated as secrets


class Masker:
    """Replaces every secret value with ``***`` in strings, and in the strings of lists and mappings."""

    def __init__(self, values: Iterable[str]) -> None:
        # longest first, so a secret that contains another is masked whole
        self.values = sorted({v for v in values if v and len(v) >= MIN_LENGTH}, key=len, reverse=True)

    @classmethod
    def from_env(cls, names: Iterable[str]) -> Masker:
        """The values the named environment variables have in this process."""
        return cls(os.environ.get(name, "") for name in names)

    def __bool__(self) -> bool:
        return bool(self.values)

    def text(self, text: str) -> str:
        for value in self.values:
            if value in text:
                text = text.replace(value, MASK)
        return text

    def deep(self, value: Any) -> Any:
        if not self.values:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.deep(v) for v in value]
        if isinstance(value, dict):
            return {k: self.deep(v) for k, v in value.items()}
        return value


def secret_names(plan: Any) -> list[str]:
    """The plan's ``secrets:`` and every provider's ``api_key_env``."""
    names = list(getattr(plan, "secrets", ()))
    for provider in getattr(plan, "providers", {}).values():
        if provider.api_key_env and provider.api_key_env not in names:
            names.append(provider.api_key_env)
    return names


def mask_result(result: Any, masker: Masker) -> None:
    """Mask, in place, every text a TaskResult carries into the reports (captured output included)."""
    if not masker:
        return
    for name in ("message", "output", "diff", "stdout", "stderr", "failure_text"):
        setattr(result, name, masker.text(getattr(result, name)))
    result.earlier_failures = [masker.text(text) for text in result.earlier_failures]
    result.calls = masker.deep(result.calls)
