"""Tell someone a run ended: after the reports are written, run the plan's notifiers.

A notifier that fails (after its retries with back-off) is named in the terminal summary and in
run.json's ``notifications``, and never changes the exit status. A webhook's URL is a secret read
from the environment: it is never printed, stored or put in an error message.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from pytest_orch.errors import Location, PlanError
from pytest_orch.fileio import atomic_write
from pytest_orch.plan.notify import Notifier, parse_notify
from pytest_orch.reports.verdict import word

# the verdict's outcome -> the word a notifier's `when` uses
WHEN_OF = {"passed": "success", "failed": "failure", "blocked": "blocked", "interrupted": "failure"}


@dataclass(frozen=True)
class Sent:
    """What became of one notifier: never holds the webhook URL."""

    notifier: str
    ok: bool
    attempts: int
    error: str = ""


def ini_notifiers(text: str, ini_path: str, root: Path, environ: Mapping[str, str] | None = None) -> list[Notifier]:
    """The ``orch_notify`` ini option (YAML, as the plan's ``notify`` key); a mistake is a PlanError."""
    loc = Location(ini_path, 1)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PlanError(loc, f"orch_notify: not valid YAML: {exc}") from None
    errors: list[str] = []
    found = parse_notify(raw, loc, root, lambda _loc, message: errors.append(message), environ)
    if errors:
        raise PlanError(loc, "orch_notify: " + "; ".join(errors))
    return found


def _scrub(text: str, secrets: Iterable[tuple[str, str]]) -> str:
    for secret, name in secrets:
        if secret:
            text = text.replace(secret, f"${name}")
    return text


def _post(url: str, payload: dict[str, Any], timeout: float) -> None:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "pytest-orch"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) checked at load
            response.read()
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise RuntimeError(f"cannot connect: {exc.reason}") from None
    except TimeoutError:
        raise RuntimeError(f"no answer within {timeout:g} s") from None


def _run(argv: tuple[str, ...], root: Path, env: dict[str, str], timeout: float) -> None:
    program = str((root / argv[0]).resolve())
    try:
        done = subprocess.run([program, *argv[1:]], cwd=root, env=env, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"no end within {timeout:g} s") from None
    except OSError as exc:
        raise RuntimeError(f"cannot start: {exc.strerror}") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
        raise RuntimeError(f"exit code {done.returncode}" + (f": {tail[0][:200]}" if tail[0] else ""))


def send(notifiers: Iterable[Notifier], *, outcome: str, summary: dict[str, Any], text: str, run_json: Path,
         root: Path, environ: Mapping[str, str] | None = None,
         sleep: Callable[[float], None] = time.sleep) -> list[Sent]:
    """Run every notifier that wants this outcome; retries back off by retry_delay x 2^n."""
    environ = dict(os.environ if environ is None else environ)
    word = WHEN_OF.get(outcome, "failure")
    secrets = [(environ.get(n.url_env, ""), n.url_env) for n in notifiers if n.url_env]
    results = []
    for notifier in notifiers:
        if not notifier.wants(word):
            continue
        error = ""
        for attempt in range(1, notifier.retries + 2):
            try:
                if notifier.url_env:
                    _post(environ[notifier.url_env], {"text": text, "run": summary}, notifier.timeout)
                else:
                    env = {**environ, "ORCH_RUN_JSON": str(run_json), "ORCH_OUTCOME": word}
                    _run(notifier.command, root, env, notifier.timeout)
                results.append(Sent(notifier.label, True, attempt))
                break
            except (RuntimeError, KeyError, ValueError) as exc:
                error = _scrub(str(exc), secrets)
                if attempt <= notifier.retries:
                    sleep(notifier.retry_delay * 2 ** (attempt - 1))
        else:
            results.append(Sent(notifier.label, False, notifier.retries + 1, error))
    return results


def record(run_json: Path, sent: list[Sent]) -> None:
    """Add what the notifiers did to run.json (written before they ran)."""
    if not sent or not run_json.exists():
        return
    document = json.loads(run_json.read_text())
    document["notifications"] = [asdict(s) for s in sent]
    atomic_write(run_json, json.dumps(document, indent=2) + "\n")


def notify_run(notifiers: Iterable[Notifier], verdict: Any, run_json: Path, root: Path, *, run_id: str,
               counts: Mapping[str, int], duration: float) -> list[Sent]:
    """Send the run's end to its notifiers and record the outcome in run.json."""
    notifiers = list(notifiers)
    if not notifiers:
        return []
    counts = {word(k): n for k, n in counts.items()}
    parts = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in counts.items() if n)
    text = f"pytest-orch run {run_id}: {verdict.headline} ({parts}) in {duration:.1f} s"
    summary = {"run_id": run_id, "outcome": verdict.outcome, "cause": verdict.cause.value,
               "headline": verdict.headline, "tasks": list(verdict.tasks), "counts": dict(counts),
               "duration": round(duration, 3), "run_json": str(run_json)}
    sent = send(notifiers, outcome=verdict.outcome, summary=summary, text=text, run_json=run_json, root=root)
    record(run_json, sent)
    return sent
