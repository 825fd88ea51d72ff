"""What pytest-orch does with ``--tx`` specs and remote gateways before a worker starts: the list of specs,
the SSH keep-alives, the probe a new gateway runs, and the words for a host that is gone. No xdist internals
here (those are in ``pytest_orch/compat.py``).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from pytest_orch import compat

# Runs on a fresh gateway, in the spec's chdir, before xdist's worker starts there.
PROBE = r"""
import os, socket, subprocess, sys
token_path = channel.receive()
try:
    with open(token_path) as f:
        token = f.read()
except OSError:
    token = None
try:
    git = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=30)
    commit, git_error = (git.stdout.strip(), "") if git.returncode == 0 else (None, git.stderr.strip())
except OSError as exc:
    commit, git_error = None, str(exc)
import importlib.util
# found, not imported: the worker imports them later, under pytest's assertion rewriting
absent = [name for name in ("pytest_orch", "xdist", "pytest") if importlib.util.find_spec(name) is None]
missing = "No module named " + ", ".join(repr(name) for name in absent) if absent else None
channel.send({"cwd": os.getcwd(), "hostname": socket.gethostname(), "commit": commit,
              "git_error": git_error, "token": token, "missing": missing, "python": sys.executable})
"""


def configure_tx(config: pytest.Config) -> None:
    """With a plan, ``--tx`` alone distributes (xdist wants ``-d`` too), and a local worker is added
    when the list has none: tasks that write project files run where the project is."""
    import execnet

    option = config.option
    tx = list(getattr(option, "tx", None) or [])
    if not tx:
        return
    if option.dist == "no":
        option.dist = "load"  # any mode: the plan's scheduler replaces xdist's
    specs = [execnet.XSpec(s.split("*", 1)[-1]) for s in tx]
    if not any(is_local(spec) for spec in specs):
        option.tx = [*tx, "popen"]


def is_local(spec: Any) -> bool:
    return bool(compat.spec_field(spec, "popen")) and not compat.spec_field(spec, "via") \
        and not compat.spec_field(spec, "chdir")


def is_remote(spec: Any) -> bool:
    return not compat.spec_field(spec, "popen")


def keepalive_options(spec: Any, interval: int) -> list[str]:
    """ssh ``-o`` options so a cut link is noticed (3 missed keep-alives), unless the user set them."""
    if interval <= 0 or not compat.spec_field(spec, "ssh"):
        return []
    given = compat.spec_field(spec, "ssh") or ""
    config_file = compat.spec_field(spec, "ssh_config")
    if config_file:
        try:
            given += "\n" + Path(config_file).read_text()
        except OSError:
            pass
    given = given.lower()
    wanted = {"ServerAliveInterval": str(interval), "ServerAliveCountMax": "3", "ConnectTimeout": "10"}
    return [f"-o{key}={value}" for key, value in wanted.items() if key.lower() not in given]


def keepalive_interval(config: pytest.Config) -> int:
    try:
        return int(config.getini("orch_ssh_keepalive") or 0)
    except ValueError:
        raise pytest.UsageError(f"orch_ssh_keepalive = {config.getini('orch_ssh_keepalive')!r}: "
                                "expected whole seconds") from None


def controller_commit(root: Path) -> str | None:
    try:
        proc = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=30)
    except OSError:
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def why_unreachable(exc: BaseException) -> str:
    """execnet's HostNotFound carries ssh's command line; say what it means instead."""
    if type(exc).__name__ == "HostNotFound":
        return "ssh could not connect (host unreachable, connection refused, or no answer in time)"
    return f"{type(exc).__name__}: {one_line(exc)}"


def why_down(error: object | None) -> str:
    """xdist's words for a channel that closed ("Not properly terminated") say little to a user."""
    text = one_line(error) if error else ""
    if not text or text == "Not properly terminated":
        return "its connection closed: the host went down, was cut off, or its worker was killed"
    return text


def one_line(error: object) -> str:
    text = str(error).strip() or type(error).__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else text


class TakeSpecsLast:
    """The last ``pytest_xdist_setupnodes``: ``take(specs)`` removes the specs started elsewhere from
    xdist's list, after xdist's status line has counted them, so xdist's own loop starts only the rest."""

    def __init__(self, take: Any) -> None:
        self.take = take

    @pytest.hookimpl(trylast=True)
    def pytest_xdist_setupnodes(self, config: pytest.Config, specs: list[Any]) -> None:
        self.take(specs)
