"""One request to a provider: a command-line tool, or an OpenAI-compatible chat-completions endpoint.

Neither retries nor waits: the prompt handler decides what a 429 means (see handlers/prompt.py),
and the shared limiter decides when a request may be sent (pytest_orch/call_limits.py).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_orch.handlers.command import kill_tree

from pytest_orch.plan.providers import Provider

THROTTLE_STATUSES = (429, 503)
SNIPPET = 300  # characters of an error body or of a program's output kept in a message


@dataclass
class Answer:
    """What one request gave: the text, or why there is none."""

    text: str = ""
    error: str = ""
    """Empty when the request succeeded."""
    status: int | None = None
    """The HTTP status, for HTTP providers."""
    exit_code: int | None = None
    """The program's exit code, for command providers."""
    throttled: bool = False
    """A 429/503, or output matching ``quota_patterns``: wait and ask again."""
    retry_after: float | None = None
    day_quota_gone: bool = False
    """The answer says the day's quota is spent (``daily_quota_patterns``)."""
    tokens_in: int | None = None
    tokens_out: int | None = None
    log: str = ""
    """The program's stderr, or the error body: for the task's output."""


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """A ``Retry-After`` header as seconds from now: delta seconds or an HTTP date; None if unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime  # here: a worker imports this module at start-up

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _matches(patterns: tuple[str, ...], text: str) -> bool:
    return any(re.search(p, text) for p in patterns)


_clients: dict[tuple[str, float, float], Any] = {}


def prepare(provider: Provider) -> None:
    """Import and connect what a request needs *before* its slot is reserved.

    The limiter counts reservation times; whatever runs between the reservation and the request
    reaching the server (importing httpx, a new connection) shifts it, and requests that shift
    unevenly can crowd into one second at the server although their reservations did not.
    """
    if provider.url:
        _client(provider, provider.timeout)


def _client(provider: Provider, timeout: float) -> Any:
    """One keep-alive client per endpoint and timeout in this process."""
    import httpx  # here: only a run with an HTTP provider pays for importing it

    key = (provider.url, timeout, provider.connect_timeout)
    if key not in _clients:
        _clients[key] = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, provider.connect_timeout)))
    return _clients[key]


def call(provider: Provider, prompt: str, *, cwd: Path, api_key: str | None = None,
         timeout: float | None = None) -> Answer:
    """Send ``prompt`` once; ``timeout`` caps the provider's own (the task's remaining time)."""
    limit = provider.timeout if timeout is None else min(provider.timeout, timeout)
    if provider.url:
        return call_http(provider, prompt, api_key, limit)
    return call_command(provider, prompt, cwd, limit)


def call_http(provider: Provider, prompt: str, api_key: str | None, timeout: float) -> Answer:
    """POST one chat completion; the key goes in the Authorization header and nowhere else."""
    import httpx

    headers = {"Content-Type": "application/json", **provider.headers}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    body: dict[str, Any] = {"model": provider.model, "messages": [{"role": "user", "content": prompt}],
                            **provider.options}
    try:
        response = _client(provider, timeout).post(provider.url, json=body, headers=headers)
    except httpx.TimeoutException as exc:
        return Answer(error=f"no answer from {provider.url} within the timeout ({type(exc).__name__})")
    except httpx.HTTPError as exc:
        return Answer(error=f"request to {provider.url} failed: {exc}")
    status = response.status_code
    text = response.text
    if status in THROTTLE_STATUSES:
        return Answer(status=status, throttled=True, log=text[:SNIPPET],
                      retry_after=retry_after_seconds(response.headers.get("Retry-After")),
                      day_quota_gone=_matches(provider.daily_quota_patterns, text),
                      error=f"HTTP {status}: {_first_line(text)}")
    if status >= 400:
        return Answer(status=status, error=f"HTTP {status} from {provider.url}: {_first_line(text)}",
                      log=text[:SNIPPET])
    try:
        data = response.json()
        content = data["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return Answer(status=status, error=f"HTTP {status} but not a chat completion: {_first_line(text)}",
                      log=text[:SNIPPET])
    if not isinstance(content, str):
        return Answer(status=status, error="the chat completion has no text content")
    usage = data.get("usage") if isinstance(data, dict) else None
    usage = usage if isinstance(usage, dict) else {}
    return Answer(text=content, status=status, tokens_in=_int(usage.get("prompt_tokens")),
                  tokens_out=_int(usage.get("completion_tokens")))


def call_command(provider: Provider, prompt: str, cwd: Path, timeout: float) -> Answer:
    """Run the provider's command in its own process group; a timeout kills the whole tree."""
    argv = [arg.replace("{prompt}", prompt) for arg in provider.command]
    label = program_label(provider.command)
    try:
        proc = subprocess.Popen(
            argv, cwd=cwd, stdin=subprocess.PIPE if provider.stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        )
    except (FileNotFoundError, PermissionError, NotADirectoryError) as exc:
        return Answer(error=f"cannot run {argv[0]!r}: {exc.strerror}")
    try:
        out, err = proc.communicate(prompt.encode() if provider.stdin else None, timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_tree(proc)
        proc.communicate()
        return Answer(exit_code=proc.returncode, error=f"{label} gave no answer within {timeout:g} s")
    except BaseException:  # KeyboardInterrupt, pytest-timeout's signal: leave no tool running
        kill_tree(proc)
        raise
    stdout = out.decode("utf-8", errors="replace")
    stderr = err.decode("utf-8", errors="replace")
    code = proc.returncode
    # stderr always; stdout only when the tool failed, since a good answer may quote "429"
    said = stderr + ("\n" + stdout if code != 0 else "")
    if provider.quota_patterns and _matches(provider.quota_patterns, said):
        return Answer(exit_code=code, throttled=True, log=stderr[-SNIPPET:],
                      day_quota_gone=_matches(provider.daily_quota_patterns, said),
                      error=f"{label} reported a quota error: {_first_line(said)}")
    if code != 0:
        return Answer(exit_code=code, log=stderr[-SNIPPET:],
                      error=f"{label} exited with code {code}: {_first_line(stderr or stdout)}")
    return Answer(text=stdout, exit_code=code, log=stderr[-SNIPPET:])


def program_label(command: tuple[str, ...]) -> str:
    """``python tools/llm.py`` or ``gemini``: the program's name, and its script when it has one."""
    words = [Path(command[0]).name]
    if len(command) > 1 and not command[1].startswith("-") and "{prompt}" not in command[1]:
        words.append(command[1])
    return " ".join(words)


def api_key(provider: Provider) -> str | None:
    return os.environ.get(provider.api_key_env) if provider.api_key_env else None


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:200]
    return "(empty)"


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
