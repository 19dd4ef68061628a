"""Where a workspace start's time goes: one log line per start, read by the benchmarks."""

from __future__ import annotations

import json
import time


class StepTimer:
    """Seconds spent in each named step of a start, in order (printed as JSON)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._mark = time.monotonic()

    def done(self, step: str) -> None:
        """Record the time since the previous step (or since the start) as ``step``."""
        now = time.monotonic()
        self.seconds[step] = round(now - self._mark, 4)
        self._mark = now

    def __str__(self) -> str:
        return json.dumps(self.seconds)
