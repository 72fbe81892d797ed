"""The build account: every file under the corpus with what became of it (indexed with its passages, pages and
how it was read; skipped with the reason; pending when it came after the last build), for `wenda sources` and
`GET /v1/sources`."""

from __future__ import annotations

from pathlib import Path

from .loader import discover, others
from .store import Snapshot, account_entry

PENDING = "added after the last build; run `wenda index`"


def corpus_account(snapshot: Snapshot, root: Path | None) -> list[dict]:
    """The last build's account (`Snapshot.account`), plus the files now under `root` that it never saw."""
    entries = snapshot.account()
    if root is None or not root.is_dir():
        return entries
    known = {entry["source"] for entry in entries}
    for path in [*discover(root), *others(root)]:
        source = path.relative_to(root).as_posix()
        if source not in known:
            entries.append(account_entry(source, "pending", reason=PENDING))
    return sorted(entries, key=lambda entry: entry["source"])
