"""Documents read where a reader's failure costs that file alone: a worker process with a time limit per file
and a memory limit, so a parser's crash (PDFium and lxml are C), hang or memory blow-up on one hostile or damaged
file skips that file with a reason and the build goes on.

The worker is a fresh interpreter (`python -m wenda.index.isolation`), not a fork: it never inherits the
model's threads, and a program that embeds Wenda needs no `if __name__ == "__main__"` guard. It is started once
per process (~1 s, the readers' imports) and kept for later builds; a crash or a time-out costs a new one.
Plain text and Markdown are read in process: our own pure-Python code, nothing to isolate."""

from __future__ import annotations

import os
import pickle
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, Pipe

from .formats import Extraction, SkippedFile, ocr
from .loader import Document, read_as

INLINE_READERS = frozenset({"text", "markdown"})


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    try:
        return max(float(raw), 1.0) if raw else default
    except ValueError:
        return default


# One file may take this long to read (OCR included) before it is skipped: 100 dense A4 pages (the OCR page limit)
# OCR in under 10 minutes on 2 cores (5.8 s a page, bench/ocr.py); longer is an archive or a hostile file.
READ_TIMEOUT = _seconds("WENDA_READ_TIMEOUT", 600.0)
# Address space a reader may use: real documents need a few hundred MB (a 600-page PDF, OCR's models and a page
# image); a decompression bomb or a parser's runaway loop stops here instead of at the machine's limit.
READ_MEMORY_MB = int(_seconds("WENDA_READ_MEMORY_MB", 4096))


@dataclass(frozen=True)
class Progress:
    """Pages done of a long read (OCR), sent by the worker while it reads."""

    source: str
    done: int
    total: int


@dataclass(frozen=True)
class Job:
    """One document to read (its reader, bytes and name), with the OCR options of whoever asks."""

    reader: str
    data: bytes
    name: str
    options: ocr.OcrOptions


def serve(conn: Connection) -> None:
    """The worker's loop: read each Job sent on `conn` until it closes, answering ("ok", Extraction) or
    ("skip", (reason, traceback or None)); OCR progress goes out as ("progress", Progress) before the answer."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it ends the worker
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        ocr.configure(job.options, lambda done, total, s=job.name: conn.send(("progress", Progress(s, done, total))))
        try:
            answer = ("ok", read_as(job.reader, job.data, job.name))
        except SkippedFile as exc:
            answer = ("skip", (str(exc), exc.detail))
        conn.send(answer)


class Worker:
    """A reader process: its pipe, and the memory limit and CPU priority it was started with."""

    def __init__(self, memory_mb: int) -> None:
        ours, theirs = Pipe()
        self.memory_mb = memory_mb
        self.niceness = os.getpriority(os.PRIO_PROCESS, 0)
        limit = memory_mb * 2**20

        def limits() -> None:  # in the child, before it runs Python: a build at low priority reads at low priority
            os.setpriority(os.PRIO_PROCESS, 0, self.niceness)
            _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
            if hard == resource.RLIM_INFINITY or hard > limit:
                resource.setrlimit(resource.RLIMIT_AS, (limit, hard))

        self.process = subprocess.Popen(
            [sys.executable, "-m", __spec__.name if __spec__ else "wenda.index.isolation", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            preexec_fn=limits,  # noqa: PLW1509 - only setpriority and setrlimit, before exec
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,  # a parser's warnings and a crash's dump are not for the build's output
        )
        theirs.close()
        self.conn = ours

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        self.conn.close()
        if self.alive():
            self.process.kill()
        self.process.wait()


_worker: Worker | None = None
_lock = threading.Lock()  # one document at a time through the worker


class Reading:
    """Reads documents isolated, for a build, an upload or `wenda show`, with the OCR options they share."""

    def __init__(
        self,
        timeout: float = READ_TIMEOUT,
        memory_mb: int = READ_MEMORY_MB,
        options: ocr.OcrOptions | None = None,
        progress: Callable[[Progress], None] | None = None,
    ) -> None:
        self.timeout = timeout
        self.memory_mb = memory_mb
        self.options = options or ocr.OcrOptions()
        self.progress = progress

    def extract(self, document: Document) -> Extraction:
        """A corpus file's extraction; SkippedFile with a one-line reason when it cannot be read in time, in
        memory or at all."""
        return self.read(document.reader, document.data(), document.source)

    def read(self, reader: str, data: bytes, name: str) -> Extraction:
        """The extraction of `data` by the named reader, isolated (see `extract`). The worker is kept for the
        next read of this process; it ends when this process does."""
        if reader in INLINE_READERS:
            ocr.configure(self.options)
            return read_as(reader, data, name)
        with _lock:
            worker = self._worker()
            try:
                worker.conn.send(Job(reader, data, name, self.options))
            except OSError:
                raise SkippedFile(self._crash_reason(reader, worker)) from None
            deadline = time.monotonic() + self.timeout
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not worker.conn.poll(remaining):
                    self._discard(worker)
                    raise SkippedFile(
                        f"reading it took longer than {self.timeout:.0f} s (a very long or damaged file); "
                        "split it, or raise WENDA_READ_TIMEOUT"
                    )
                try:
                    kind, value = worker.conn.recv()
                except (EOFError, OSError, pickle.UnpicklingError, AttributeError, ImportError):
                    raise SkippedFile(self._crash_reason(reader, worker)) from None
                if kind == "progress":
                    if self.progress is not None:
                        self.progress(value)
                    continue
                if kind == "skip":
                    raise SkippedFile(*value)
                return value

    def _worker(self) -> Worker:
        global _worker
        current = _worker
        wanted = (self.memory_mb, os.getpriority(os.PRIO_PROCESS, 0))
        if current is None or not current.alive() or (current.memory_mb, current.niceness) != wanted:
            if current is not None:
                current.stop()
            _worker = current = Worker(self.memory_mb)
        return current

    def _discard(self, worker: Worker) -> None:
        global _worker
        worker.stop()
        if _worker is worker:
            _worker = None

    def _crash_reason(self, reader: str, worker: Worker) -> str:
        try:
            code = worker.process.wait(5)
        except subprocess.TimeoutExpired:
            code = None
        self._discard(worker)
        if code is not None and code < 0:
            try:
                how = signal.Signals(-code).name
            except ValueError:
                how = f"signal {-code}"
            if -code == signal.SIGKILL:
                how += f", likely out of memory (the limit is {self.memory_mb} MB, set WENDA_READ_MEMORY_MB)"
        else:
            how = f"exit status {code}"
        return (
            f"the {reader} reader crashed on it ({how}); if the file opens elsewhere, save it again "
            "(e.g. print to PDF) and add it again"
        )


if __name__ == "__main__":  # the worker: this module under its own name, so what it sends unpickles in the parent
    import importlib

    importlib.import_module(__spec__.name).serve(Connection(int(sys.argv[1])))
