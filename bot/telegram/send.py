"""Calls to the Bot API that survive a short outage: shared by the handlers of every Telegram module."""

from __future__ import annotations

import asyncio

from telegram.error import BadRequest, NetworkError, TimedOut

SEND_ATTEMPTS = 8  # backing off 0.5, 1, 2, 4, 8, 10, 10 s: a reply survives about 35 s of API outage


async def retrying(call):
    """Await `call()` again after network errors, backing off. A timed-out call is not repeated: it may
    have arrived, and a second copy would answer a question twice; nor is a refused one (400, which PTB
    counts as a network error): it would be refused again. Flood limits (429) are handled by the rate
    limiter before this sees them."""
    for attempt in range(SEND_ATTEMPTS):
        try:
            return await call()
        except (TimedOut, BadRequest):
            raise
        except NetworkError:
            if attempt == SEND_ATTEMPTS - 1:
                raise
        await asyncio.sleep(min(0.5 * 2**attempt, 10))
