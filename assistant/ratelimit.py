"""Per-session rate limit, held in memory only (nothing about a patron is written to disk)."""
from __future__ import annotations

import threading
import time
from collections import defaultdict, deque


class RateLimiter:
    def __init__(self, per_minute: int, window_s: float = 60.0, clock=time.monotonic):
        self.per_minute = per_minute
        self.window_s = window_s
        self.clock = clock
        self.hits: dict[str, deque[float]] = defaultdict(deque)
        self.lock = threading.Lock()

    def allow(self, key: str) -> bool:
        now = self.clock()
        with self.lock:
            hits = self.hits[key]
            while hits and now - hits[0] >= self.window_s:
                hits.popleft()
            if len(hits) >= self.per_minute:
                return False
            hits.append(now)
            if len(self.hits) > 10_000:  # forget idle sessions; memory stays bounded
                for k in [k for k, v in self.hits.items() if not v or now - v[-1] >= self.window_s]:
                    del self.hits[k]
            return True
