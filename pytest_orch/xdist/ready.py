"""The ready set of a graph schedule with limits: what may start now. No xdist, no pytest.

Keys are opaque (the xdist scheduler uses node ids). A key is *waiting* until every prerequisite
has ended, then *due* (the caller decides whether it runs), then *ready* once the caller pushes it,
then *running* once popped, then *ended*. Limits (a group's ``max_parallel``, a named pool) count
running keys; a rate limit is a token bucket taken when a key starts.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Generic, TypeVar

from pytest_orch.plan.model import UNLIMITED
from pytest_orch.ratelimit import TokenBucket

K = TypeVar("K", bound=Hashable)


class ReadySet(Generic[K]):
    """Prerequisite counting, a priority heap of ready keys, and the limits they start under."""

    def __init__(
        self,
        prerequisites: Mapping[K, Iterable[K]],
        priority: Mapping[K, float],
        *,
        slots: Mapping[K, tuple[str, ...]] | None = None,
        caps: Mapping[str, int] | None = None,
        rates: Mapping[K, tuple[str, ...]] | None = None,
        buckets: Mapping[str, TokenBucket] | None = None,
    ) -> None:
        self.keys = list(prerequisites)
        self._order = {k: i for i, k in enumerate(self.keys)}
        self._priority = dict(priority)
        self._waiting: dict[K, set[K]] = {}
        self._dependents: dict[K, list[K]] = {k: [] for k in self.keys}
        for key, pres in prerequisites.items():
            self._waiting[key] = {p for p in pres if p in self._dependents and p != key}
            for pre in self._waiting[key]:
                self._dependents[pre].append(key)
        self._slots = dict(slots or {})
        self._caps = dict(caps or {})
        self._rates = dict(rates or {})
        self._buckets = dict(buckets or {})
        self._running_in: dict[str, int] = {name: 0 for name in self._caps}
        self._heap: list[tuple[float, int, K]] = []
        # keys nothing depends on, lowest priority first: the only ones worth queueing behind a
        # running key, since a queued key's dependents would wait for that key's worker
        self._low: list[tuple[float, int, K]] = []
        self._ready: set[K] = set()
        self.running: set[K] = set()
        self.ended: set[K] = set()

    # -- the graph ---------------------------------------------------------------------------
    def initially_due(self) -> list[K]:
        """Keys with no prerequisite in the graph, in priority order."""
        due = [k for k in self.keys if not self._waiting[k]]
        return sorted(due, key=self._rank)

    def end(self, key: K) -> list[K]:
        """Mark ``key`` ended (run, skipped or failed); return the keys that became due."""
        if key in self.ended:
            return []
        self.ended.add(key)
        self._ready.discard(key)
        due = []
        for dep in self._dependents.get(key, ()):
            waiting = self._waiting[dep]
            if key in waiting:
                waiting.discard(key)
                if not waiting and dep not in self.ended:
                    due.append(dep)
        return sorted(due, key=self._rank)

    @property
    def finished(self) -> bool:
        return len(self.ended) == len(self.keys)

    # -- ready keys and limits -----------------------------------------------------------------
    def _rank(self, key: K) -> tuple[float, int]:
        return (-self._priority.get(key, 0.0), self._order.get(key, 0))

    def push(self, key: K) -> None:
        """Make a due key ready to start."""
        if key in self._ready or key in self.ended:
            return
        self._ready.add(key)
        rank = self._rank(key)
        heapq.heappush(self._heap, (*rank, key))
        if not self._dependents.get(key):
            heapq.heappush(self._low, (-rank[0], -rank[1], key))

    def ready_count(self) -> int:
        return len(self._ready)

    def all_started(self) -> bool:
        """Every key has started or ended: no key is waiting or ready, so none will need a worker."""
        return len(self.ended) + len(self.running - self.ended) >= len(self.keys)

    def _has_room(self, key: K) -> bool:
        return all(self._running_in[s] < self._caps[s] for s in self._slots.get(key, ()) if s in self._caps)

    def pop(self, lowest: bool = False, accept: Callable[[K], bool] | None = None) -> K | None:
        """Start the ready key of highest priority the limits let start now, or None.

        ``lowest``: the ready key of lowest priority among those nothing depends on.
        ``accept``: only a key it accepts (the worker asking may run it).
        A key held back by a full group or pool, an empty token bucket or ``accept`` keeps its place.
        """
        heap = self._low if lowest else self._heap
        skipped: list[tuple[float, int, K]] = []
        found: K | None = None
        full: set[str] = {s for s, n in self._running_in.items() if n >= self._caps[s]}
        empty: set[str] = set()
        while heap:
            entry = heapq.heappop(heap)
            key = entry[2]
            if key not in self._ready:
                continue  # drained or ended meanwhile
            if accept is not None and not accept(key):
                skipped.append(entry)
                continue
            if any(s in full for s in self._slots.get(key, ())):
                skipped.append(entry)
                continue
            rates = [r for r in self._rates.get(key, ()) if r in self._buckets]
            if any(r in empty for r in rates):
                skipped.append(entry)
                continue
            taken = True
            for name in rates:
                if not self._buckets[name].try_take():
                    empty.add(name)
                    taken = False
            if not taken:
                skipped.append(entry)
                continue
            found = key
            break
        for entry in skipped:
            heapq.heappush(heap, entry)
        if found is not None:
            self._ready.discard(found)
            self.running.add(found)
            for s in self._slots.get(found, ()):
                if s in self._running_in:
                    self._running_in[s] += 1
        return found

    def release(self, key: K) -> None:
        """``key`` stopped running (ended or its worker died): free its group and pool slots."""
        if key not in self.running:
            return
        self.running.discard(key)
        for s in self._slots.get(key, ()):
            if s in self._running_in:
                self._running_in[s] -= 1

    def token_wait(self) -> float | None:
        """Seconds until a ready key held back only by a rate limit may start, else None."""
        if not self._buckets:
            return None  # asked after every hand-out: without rate limits, no walk over the ready keys
        waits = []
        full = {s for s, n in self._running_in.items() if n >= self._caps[s]}
        for key in self._ready:
            if any(s in full for s in self._slots.get(key, ())):
                continue
            rates = [r for r in self._rates.get(key, ()) if r in self._buckets]
            if rates:
                waits.append(max(self._buckets[r].wait_time() for r in rates))
        return min(waits) if waits else None

    def drain(self) -> list[K]:
        """Take every ready key out, in priority order (an abort: they will not start)."""
        keys = sorted(self._ready, key=self._rank)
        self._ready.clear()
        self._heap.clear()
        self._low.clear()
        return keys


def limits_for(
    keys: Iterable[K],
    group_of: Callable[[K], tuple[str, int | None] | None],
    pool_of: Callable[[K], str | None],
    pool_caps: Mapping[str, int],
    rate_limits: Mapping[str, object],
) -> tuple[dict[K, tuple[str, ...]], dict[str, int], dict[K, tuple[str, ...]]]:
    """Slots, caps and rate keys for ``ReadySet`` from each key's group and pool."""
    slots: dict[K, tuple[str, ...]] = {}
    caps: dict[str, int] = {}
    rates: dict[K, tuple[str, ...]] = {}
    for key in keys:
        names = []
        group = group_of(key)
        if group is not None and group[1] is not None:
            name = f"group:{group[0]}"
            caps[name] = group[1]
            names.append(name)
        pool = pool_of(key)
        if pool is not None:
            cap = pool_caps.get(pool, UNLIMITED)
            if cap < UNLIMITED:
                caps[f"pool:{pool}"] = int(cap)
                names.append(f"pool:{pool}")
            if pool in rate_limits:
                rates[key] = (pool,)
        if names:
            slots[key] = tuple(names)
    return slots, caps, rates
