"""`wenda index --check`: verify everything on disk and say what is damaged, without changing anything."""

from __future__ import annotations

import fcntl
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from . import store
from .cache import check_cache
from .config import Settings
from .errors import DamagedIndexError, WendaError
from .freshness import Freshness


@dataclass(frozen=True)
class Finding:
    """One line of the check's report; `damage` lines make `wenda index --check` exit 1."""

    text: str
    damage: bool = False


def check_index(settings: Settings) -> list[Finding]:
    """CURRENT, every generation (sizes and checksums), leftovers, the embedding cache, and stale files."""
    index_dir = settings.index_dir
    if not index_dir.is_dir():
        return [Finding(f"no index folder at {index_dir}: nothing to check (run `wenda index` to build one)")]
    findings = [_current(index_dir)]
    for generation in store.generations(index_dir):
        findings.append(_generation(generation))
    if _building(index_dir):
        findings.append(Finding("a `wenda index` is running now: its temporary folder was not checked"))
    else:
        findings += [
            Finding(f"{path} was left by an interrupted build (`wenda index` removes it)", damage=True)
            for path in store.leftovers(index_dir)
        ]
    findings.append(_cache(settings.embedding_cache))
    findings += _stale(index_dir, settings.corpus)
    return findings


def _current(index_dir: Path) -> Finding:
    try:
        live = store.live_generation(index_dir)
    except DamagedIndexError as exc:
        return Finding(str(exc), damage=True)
    return Finding(f"CURRENT names {live.name}" if live else "no CURRENT: no index was completed here")


def _generation(path: Path) -> Finding:
    try:
        snapshot = store.Snapshot(path, mmap=True)
    except WendaError as exc:
        return Finding(str(exc), damage=True)
    try:
        files = len(snapshot.manifest["checksums"])
        return Finding(f"{path.name}: {files} files match their sizes and checksums; {len(snapshot)} chunks")
    finally:
        snapshot.close()


def _building(index_dir: Path) -> bool:
    """True when another process holds the write lock (a build in progress)."""
    try:
        with open(index_dir / store.LOCK, "rb") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
    except OSError:
        pass
    return False


def _cache(path: Path) -> Finding:
    if not path.exists():
        return Finding(f"no embedding cache at {path}")
    try:
        rows, damaged = check_cache(path)
    except sqlite3.Error as exc:
        return Finding(f"the embedding cache {path} is damaged ({exc}); `wenda index` replaces it", damage=True)
    if damaged:
        return Finding(
            f"the embedding cache {path}: {damaged} of {rows} vectors are damaged; `wenda index` drops and re-embeds "
            "those it needs",
            damage=True,
        )
    return Finding(f"the embedding cache {path}: {rows} vectors, all intact")


def _stale(index_dir: Path, corpus: Path) -> list[Finding]:
    """Files of `corpus` edited or deleted since the live generation read them (not damage: `wenda index`
    updates)."""
    manifest = store.live_manifest(index_dir)
    freshness = Freshness(corpus, manifest)
    stale = [source for source in manifest.get("stats", {}) if freshness.stale(source)]
    if not stale:
        return []
    names = ", ".join(stale[:5]) + (f" and {len(stale) - 5} more" if len(stale) > 5 else "")
    return [Finding(f"{len(stale)} corpus files changed after indexing ({names}): run `wenda index` to update")]
