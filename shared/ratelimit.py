"""Rate limits by key (a citizen's phone hash, a client's id or address): a sliding window
of fixed size kept in memory, per process.

Per process on purpose: a check costs no round trip on the hot path, and with N replicas
the effective limit is at most N times the setting — state it that way to ops. The table
is bounded (least recently seen keys are forgotten first), so a flood of distinct keys
cannot exhaust memory.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict, deque
from dataclasses import dataclass

_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, None: 1}


@dataclass(frozen=True)
class Rate:
    count: int
    per_seconds: float

    @classmethod
    def parse(cls, spec: str) -> Rate:
        """``"20/1h"``, ``"600/60"`` (seconds), ``"5/30s"``; ``"0/1"`` turns the limit off."""
        found = _SPEC.match(spec)
        if not found:
            raise ValueError(f"rate {spec!r} is not COUNT/WINDOW, e.g. 20/1h or 600/60s")
        count, window, unit = found.groups()
        return cls(int(count), float(window) * _UNIT[unit])

    @property
    def off(self) -> bool:
        return self.count == 0


class RateLimiter:
    def __init__(self, rate: Rate, *, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.max_keys = max_keys
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()

    def check(self, key: str, now: float) -> float | None:
        """Count one request for ``key`` at ``now`` (seconds); None when allowed, else the
        seconds until the oldest counted request leaves the window (for Retry-After)."""
        if self.rate.off:
            return None
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque()
            if len(self._hits) > self.max_keys:
                self._hits.popitem(last=False)
        else:
            self._hits.move_to_end(key)
        horizon = now - self.rate.per_seconds
        while hits and hits[0] <= horizon:
            hits.popleft()
        if len(hits) >= self.rate.count:
            return max(0.0, hits[0] + self.rate.per_seconds - now)
        hits.append(now)
        return None


def retry_after_header(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}
