"""What the index holds per document, for the front ends that add and remove documents (`wenda add`, the
Telegram bot's uploads and `/docs`)."""

from __future__ import annotations

from index.store import Snapshot


def passage_counts(snapshot: Snapshot) -> dict[str, int]:
    """Indexed passages (chunks) per source in `snapshot`."""
    return dict(snapshot.db.execute("SELECT source, COUNT(*) FROM chunks GROUP BY source").fetchall())


def catalogue(snapshot: Snapshot) -> list[tuple[str, str, int]]:
    """(source, title, passages) of every indexed document, by source name."""
    counts = passage_counts(snapshot)
    return [(source, title, counts.get(source, 0)) for source, title in snapshot.documents()]
