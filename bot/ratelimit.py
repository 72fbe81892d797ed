"""Per-user sliding-window limit on questions."""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Hashable


class RateLimiter:
    """At most `limit` events per user in any `window` seconds."""

    def __init__(self, limit: int, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self._events: dict[Hashable, deque[float]] = defaultdict(deque)

    def allow(self, user_id: Hashable, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        events = self._events[user_id]
        while events and now - events[0] >= self.window:
            events.popleft()
        if len(events) >= self.limit:
            return False
        events.append(now)
        return True
