"""Letting go of the resident pages of memory-mapped index files.

Big indexes are memory-mapped (the IVF lists, the positions, the BM25 columns): a question reads the pages it
needs and the kernel keeps them as long as memory allows. Those pages count in the resident memory of every
process that has read them, so a build that searches its new index many times (tuning nprobe, the probes, the
self-calibration) would look as if it held the whole index. They stay in the page cache and are read again on the
next touch; only this process's claim on them goes.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

_MADV_DONTNEED = 4  # Linux's value


def drop_pages(*paths: Path) -> None:
    """Let go of this process's resident pages of its mappings of these files (faiss's for an index read with
    IO_FLAG_MMAP, numpy's memmaps); Linux only, elsewhere nothing. Reads /proc/self/maps once: a process with
    many libraries has thousands of mappings, so callers drop every file of an index in one call."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return
    targets = {str(path.resolve()) for path in paths}
    libc = ctypes.CDLL(None, use_errno=True)
    for line in maps.splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5] in targets:
            start, end = (int(part, 16) for part in fields[0].split("-"))
            libc.madvise(ctypes.c_void_p(start), ctypes.c_size_t(end - start), _MADV_DONTNEED)
