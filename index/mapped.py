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


def mappings(*paths: Path) -> list[tuple[int, int]]:
    """(start, end) addresses of this process's mappings of these files, from one read of /proc/self/maps (a process
    with many libraries has thousands of mappings); none where there is no /proc."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return []
    targets = {str(path.resolve()) for path in paths}
    found = []
    for line in maps.splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5] in targets:
            start, end = (int(part, 16) for part in fields[0].split("-"))
            found.append((start, end))
    return found


def release(ranges: list[tuple[int, int]]) -> None:
    """Let go of this process's resident pages in these mapped ranges (`mappings`, while they stay mapped)."""
    if ranges:
        madvise = ctypes.CDLL(None, use_errno=True).madvise
        for start, end in ranges:
            madvise(ctypes.c_void_p(start), ctypes.c_size_t(end - start), _MADV_DONTNEED)


def drop_pages(*paths: Path) -> None:
    """Let go of this process's resident pages of its mappings of these files (faiss's for an index read with
    IO_FLAG_MMAP, numpy's memmaps); Linux only, elsewhere nothing."""
    release(mappings(*paths))
