"""Start all of xdist's local workers at once, not one after another.

xdist starts its workers in a loop, and starting one waits until the new interpreter answers.
On a small machine the first worker's imports then slow down the start of the second, and so
on: the last worker came up 0.3 to 0.5 s after the first on two cores, while the first was
already running tasks. Starting every interpreter together gives them an even share of the
CPU, so they come up close together (see benchmarks/README.md).

xdist calls ``pytest_xdist_setupnodes`` just before that loop. Here the gateways are made on
threads, and the node manager's group hands each one out when xdist asks for it by its id.
Anything unexpected leaves xdist to start its workers its own way.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from pytest_orch import compat
from pytest_orch.xdist.early import STARTED_KEY


def pytest_xdist_setupnodes(config: pytest.Config, specs: list[Any]) -> None:
    group = compat.gateway_group(config)
    started_early = config.stash.get(STARTED_KEY, set())  # early.py starts those on threads of its own
    local = [spec for spec in specs if getattr(spec, "popen", False) and not getattr(spec, "via", None)
             and getattr(spec, "id", None) and spec.id not in started_early]
    if group is None or len(local) < 2 or "makegateway" in vars(group):
        return
    with ThreadPoolExecutor(len(local), thread_name_prefix="orch-spawn") as pool:
        started = list(pool.map(lambda spec: _try_makegateway(group, spec), local))
    ready = {spec.id: gateway for spec, gateway in zip(local, started, strict=False) if gateway is not None}
    if not ready:
        return
    make = group.makegateway

    def makegateway(spec: Any = None) -> Any:
        gateway = ready.pop(getattr(spec, "id", None), None)
        if gateway is None:
            return make(spec)  # a worker restarted after a crash, or one that failed above
        if not ready:
            del group.makegateway  # all handed out: the group is xdist's own again
        return gateway

    group.makegateway = makegateway


def _try_makegateway(group: Any, spec: Any) -> Any:
    try:
        return group.makegateway(spec)
    except Exception:  # xdist makes it again in its own loop and reports the error there
        return None
