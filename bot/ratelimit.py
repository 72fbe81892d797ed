"""Per-user sliding-window limit on questions."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Hashable


class RateLimiter:
    """At most `limit` events per user in any `window` seconds. Users idle for a whole window are forgotten
    (swept once a window), so many one-time clients, such as HTTP addresses, do not add up."""

    def __init__(self, limit: int, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self._events: dict[Hashable, deque[float]] = {}
        self._swept: float | None = None  # when idle users were last forgotten

    def allow(self, user_id: Hashable, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if self._swept is None:
            self._swept = now
        elif now - self._swept >= self.window:
            self._events = {user: events for user, events in self._events.items() if now - events[-1] < self.window}
            self._swept = now
        events = self._current(user_id, now)
        if len(events) >= self.limit:
            return False
        events.append(now)
        return True

    def retry_after(self, user_id: Hashable, now: float | None = None) -> int:
        """Whole seconds until `user_id` may have another event (0: now), for a Retry-After header."""
        now = time.monotonic() if now is None else now
        events = self._current(user_id, now)
        if len(events) < self.limit:
            return 0
        return max(1, math.ceil(self.window - (now - events[0])))

    def _current(self, user_id: Hashable, now: float) -> deque[float]:
        """The user's events still inside the window."""
        events = self._events.setdefault(user_id, deque())
        while events and now - events[0] >= self.window:
            events.popleft()
        return events

    def __len__(self) -> int:
        """Users remembered now."""
        return len(self._events)
