"""bot.ratelimit: the sliding window, and clients forgotten once idle for a window."""

from wenda.bot.ratelimit import RateLimiter


def test_window_slides_and_idle_users_are_forgotten() -> None:
    limiter = RateLimiter(limit=2, window=60)
    assert [limiter.allow("a", now) for now in (0, 1, 2)] == [True, True, False]
    assert limiter.allow("a", 60.5) and not limiter.allow("a", 60.6)  # only the event at 0 left the window
    for number in range(1000):
        limiter.allow(f"addr:{number}", 100)
    assert len(limiter) == 1001
    assert limiter.allow("b", 200) and len(limiter) == 1  # everyone idle since 100 is gone
