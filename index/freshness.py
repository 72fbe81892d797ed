"""Is a cited file still what was indexed? A citation to a file edited or deleted since is marked stale.

Cheap by design, since it runs on every answer: a stat of each cited file against the size and mtime the
manifest recorded; only when those differ is the file hashed and compared with the indexed SHA-256 (an
editor may save identical bytes, a copy may reset the mtime). Verdicts are remembered per (size, mtime).
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path


class Freshness:
    """Stale-citation checks for one index generation."""

    def __init__(self, corpus: Path, manifest: dict) -> None:
        """Checks against the files of `corpus`, the corpus in use: a corpus and index copied elsewhere together
        are compared with the copy, never with the folder the index was first built from."""
        self.root = corpus if manifest.get("corpus") else None  # none: not indexed from files
        self.stats: dict[str, list[int]] = manifest.get("stats", {})
        self.files: dict[str, dict] = manifest.get("files", {})  # looked up only for a file whose stat changed
        self._verdicts: dict[tuple[str, int, int], bool] = {}
        self._lock = threading.Lock()

    def stale(self, source: str) -> bool:
        """True when `source` was read from disk for the index and is now changed or gone."""
        recorded = self.stats.get(source)
        if self.root is None or recorded is None:
            return False  # not indexed from a file (e.g. eval passages): nothing to compare with
        path = self.root / source
        try:
            stat = path.stat()
        except OSError:
            return True
        if [stat.st_size, stat.st_mtime_ns] == list(recorded):
            return False
        key = (source, stat.st_size, stat.st_mtime_ns)
        with self._lock:
            if key not in self._verdicts:
                indexed = self.files.get(source, {}).get("sha256")
                self._verdicts[key] = stat.st_size != recorded[0] or self._digest(path) != indexed
            return self._verdicts[key]

    @staticmethod
    def _digest(path: Path) -> str | None:
        try:
            return hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            return None
