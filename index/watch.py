"""`wenda index --watch`: keep the index current while corpus files are added, edited or deleted.

watchdog (inotify on Linux) reports changes under the corpus folder; a burst of them (an editor's save, a
copied folder) is answered by one incremental build once the folder has been quiet for `QUIET_SECONDS`,
which embeds only what changed. Readers pick the new generation up by themselves (they watch CURRENT).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from . import formats
from .sources import SOURCES_FILE

QUIET_SECONDS = 1.0  # long enough to cover an editor's write-rename-chmod sequence, short enough to feel live


class _Changes(FileSystemEventHandler):
    """Sets `changed` for events that can affect the index: corpus files, sources.toml, folders."""

    def __init__(self, ignore: Path) -> None:
        self.changed = threading.Event()
        self.ignore = ignore

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            path = Path(raw.decode() if isinstance(raw, bytes) else raw) if raw else None
            if path is None or path.is_relative_to(self.ignore) or path.name.startswith("."):
                continue
            if event.is_directory or path.suffix.lower() in formats.SUFFIXES or path.name == SOURCES_FILE:
                self.changed.set()


def watch(
    corpus: Path, index_dir: Path, update: Callable[[], None], stop: threading.Event, ready: Callable[[], None]
) -> None:
    """Call `update` once, then whenever files under `corpus` change (after they settle), until `stop` is set;
    `ready` is called once changes are being watched. Watching starts before the first update, so a change
    made while it runs is never missed."""
    handler = _Changes(index_dir.resolve())
    observer = Observer()
    observer.schedule(handler, str(corpus.resolve()), recursive=True)
    observer.start()
    try:
        update()
        ready()
        while not stop.is_set():
            if not handler.changed.wait(0.2):
                continue
            while handler.changed.is_set() and not stop.is_set():  # wait for the burst to end
                handler.changed.clear()
                stop.wait(QUIET_SECONDS)
            if not stop.is_set():
                update()
    finally:
        observer.stop()
        observer.join()
