"""IVF-SQ8 index files written list by list, so neither a build nor an update holds every vector's code.

faiss builds an IVF index in memory (384 bytes a vector for SQ8: 384 MB at a million chunks) and writes it at
the end. Here a trained, empty index gives the file's header; each vector's list and 8-bit code are computed a
block at a time into scratch files, ordered by list (an 8-byte position a vector), and the lists are written
one after another in faiss's own layout ("ilar": every list's codes then its ids). Without a direct map the
file is byte for byte what `faiss.write_index` writes for the same vectors added in the same order
(tests/test_ivf_file.py); with one (`DirectMap.Hashtable`, for `reconstruct` and `remove_ids` by id) the same
pairs are written, in list order (faiss writes its hash table's order). Readers open it memory-mapped
(`faiss.IO_FLAG_MMAP`), as before.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path

import faiss
import numpy as np

_NTOTAL = struct.Struct("<q")  # the index header: fourcc, int32 d, int64 ntotal, …
_NTOTAL_AT = 8
_SIZE = struct.Struct("<Q")  # faiss writes vector lengths and list counts as size_t


class Encoded:
    """Every vector's list number, id and 8-bit code, appended a block at a time to three scratch files."""

    def __init__(self, folder: Path, code_size: int) -> None:
        self.paths = {name: folder / f"ivf-{name}" for name in ("lists", "ids", "codes")}
        self.code_size = code_size
        self.count = 0
        self.files = {name: open(path, "wb") for name, path in self.paths.items()}  # noqa: SIM115 - close()
        self.maps: list[mmap.mmap] = []  # the files mapped for reading (`arrays`)

    def append(self, lists: np.ndarray, ids: np.ndarray, codes: np.ndarray) -> None:
        self.files["lists"].write(np.ascontiguousarray(lists, dtype=np.int32).tobytes())
        self.files["ids"].write(np.ascontiguousarray(ids, dtype=np.int64).tobytes())
        self.files["codes"].write(np.ascontiguousarray(codes, dtype=np.uint8).tobytes())
        self.count += len(ids)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(lists, ids, codes) memory-mapped: pages come from disk as the writer reads them (`release` lets them
        go again)."""
        for file in self.files.values():
            file.flush()
        if not self.count:
            return np.zeros(0, np.int32), np.zeros(0, np.int64), np.zeros((0, self.code_size), np.uint8)
        self.maps = []
        arrays = []
        for name, dtype in (("lists", np.int32), ("ids", np.int64), ("codes", np.uint8)):
            with open(self.paths[name], "rb") as file:
                self.maps.append(mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ))
            arrays.append(np.frombuffer(self.maps[-1], dtype=dtype))
        return arrays[0], arrays[1], arrays[2].reshape(self.count, self.code_size)

    def release(self) -> None:
        """Drop the pages read so far from this process (they stay in the page cache): a mapping's pages count
        in its resident memory, so reading every code once would look like holding them all."""
        for mapping in self.maps:
            mapping.madvise(mmap.MADV_DONTNEED)

    def close(self) -> None:
        for name, file in self.files.items():
            file.close()
            self.paths[name].unlink(missing_ok=True)


def encode(ivf: faiss.IndexIVF, blocks: Iterable[tuple[np.ndarray, np.ndarray]], into: Encoded) -> None:
    """Assign each vector of `blocks` ((ids, vectors) pairs) to its list and encode it as `ivf.add` would."""
    for ids, vectors in blocks:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        lists = ivf.quantizer.assign(vectors, 1).ravel().astype(np.int64)
        codes = np.empty((len(ids), ivf.code_size), dtype=np.uint8)
        ivf.encode_vectors(len(ids), faiss.swig_ptr(vectors), faiss.swig_ptr(lists), faiss.swig_ptr(codes), False)
        into.append(lists, ids, codes)


def stored_lists(ivf: faiss.IndexIVF, path: Path, removed: np.ndarray, into: Encoded, block: int = 65_536) -> None:
    """Append the vectors of `ivf`, opened from its file `path`, less the ids in `removed`, list by list.

    The lists are read through a mapping of `path` of our own, whose pages are let go as it goes, so merging a big
    index does not look like holding it; they are the file's last bytes, one after another (faiss's "full" layout,
    checked; an index in another layout is read through faiss's own lists instead)."""
    sizes = np.array([ivf.invlists.list_size(number) for number in range(ivf.nlist)], dtype=np.uint64)
    gone = np.sort(np.asarray(removed, dtype=np.int64))
    with open(path, "rb") as file:
        data = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
    start = len(data) - int(sizes.sum()) * (ivf.code_size + 8)
    table = start - 8 * ivf.nlist
    own = table >= 12 and data[table - 12 : table - 8] == b"full" and data[table:start] == sizes.tobytes()
    read, codes, ids = 0, None, None
    try:
        for number, size in enumerate(sizes.tolist()):
            if own:
                codes = np.frombuffer(data, np.uint8, size * ivf.code_size, start)
                ids = np.frombuffer(data, np.int64, size, start + size * ivf.code_size)
                start += size * (ivf.code_size + 8)
            elif size:
                codes = faiss.rev_swig_ptr(ivf.invlists.get_codes(number), size * ivf.code_size)
                ids = faiss.rev_swig_ptr(ivf.invlists.get_ids(number), size)
            for begin in range(0, size, block):
                end = min(begin + block, size)
                chosen = ids[begin:end].copy()
                keep = ~np.isin(chosen, gone) if len(gone) else np.ones(len(chosen), bool)
                part = codes[begin * ivf.code_size : end * ivf.code_size].reshape(-1, ivf.code_size)[keep]
                into.append(np.full(int(keep.sum()), number, dtype=np.int32), chosen[keep], part)
            read += size
            if own and read >= block:
                data.madvise(mmap.MADV_DONTNEED)
                read = 0
    finally:
        del codes, ids  # views of the mapping, which cannot close while they live
        data.close()


def empty_like(ivf: faiss.IndexIVFScalarQuantizer) -> faiss.IndexIVFScalarQuantizer:
    """An empty IVF-SQ index with the trained quantizer, encoder and nprobe of `ivf` (which may be memory-mapped:
    faiss cannot clone those lists), without a direct map."""
    quantizer = faiss.clone_index(ivf.quantizer)
    empty = faiss.IndexIVFScalarQuantizer(quantizer, ivf.d, ivf.nlist, ivf.sq.qtype, ivf.metric_type, ivf.by_residual)
    empty.referenced_objects = [quantizer]  # alive as long as the index
    empty.sq = ivf.sq
    empty.is_trained = True
    empty.nprobe = ivf.nprobe
    return empty


def _first_difference(one: bytes, other: bytes) -> int:
    """Where two serializations of an index that differ in one field first differ: that field's place."""
    return next(i for i, (a, b) in enumerate(zip(one, other, strict=False)) if a != b)


def _header(ivf: faiss.IndexIVF, ntotal: int, pairs: Iterator[bytes]) -> Iterator[bytes]:
    """The bytes before the inverted lists: the empty trained index's header with `ntotal` vectors and, with a
    direct map, its `ntotal` (id, list << 32 | offset) `pairs`. Where the map's bytes lie is found by comparing
    the serializations of the same empty index without and with one, not assumed."""
    empty = empty_like(ivf)
    plain = faiss.serialize_index(empty).tobytes()
    empty.set_direct_map_type(faiss.DirectMap.Hashtable)
    mapped = faiss.serialize_index(empty).tobytes()
    lists_at = plain.rfind(b"ilar")
    if ivf.direct_map.type == faiss.DirectMap.NoMap:
        yield plain[:_NTOTAL_AT] + _NTOTAL.pack(ntotal) + plain[_NTOTAL_AT + 8 : lists_at]
        return
    table_at = _first_difference(plain, mapped) + 1 + 8  # after the map's type and its (empty) array: the table
    yield mapped[:_NTOTAL_AT] + _NTOTAL.pack(ntotal) + mapped[_NTOTAL_AT + 8 : table_at] + _SIZE.pack(ntotal)
    yield from pairs
    yield mapped[table_at + 8 : mapped.rfind(b"ilar")]


def write(path: Path, ivf: faiss.IndexIVF, encoded: Encoded, block: int = 65_536) -> None:
    """Write `ivf` (trained; its own lists are ignored) holding every vector of `encoded` to `path`, list by list."""
    lists, ids, codes = encoded.arrays()
    order = np.argsort(lists, kind="stable")  # the order faiss's add would leave them in, list by list
    sizes = np.bincount(lists, minlength=ivf.nlist).astype(np.uint64)
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

    def pairs() -> Iterator[bytes]:
        for begin in range(0, len(order), block):
            rows = order[begin : begin + block]
            positions = np.arange(begin, begin + len(rows), dtype=np.int64)
            owner = lists[rows].astype(np.int64)
            offsets = positions - starts[owner]
            table = np.empty((len(rows), 2), dtype=np.int64)
            table[:, 0], table[:, 1] = ids[rows], (owner << 32) | offsets
            yield table.tobytes()

    with open(path, "wb") as out:
        for part in _header(ivf, len(order), pairs()):
            out.write(part)
        out.write(b"ilar" + _SIZE.pack(ivf.nlist) + _SIZE.pack(ivf.code_size))
        out.write(b"full" + _SIZE.pack(ivf.nlist) + sizes.tobytes())
        copied = 0
        for number in range(ivf.nlist):
            rows = order[starts[number] : starts[number + 1]]
            for begin in range(0, len(rows), block):  # a long list is copied a block at a time
                out.write(np.ascontiguousarray(codes[rows[begin : begin + block]]).tobytes())
            for begin in range(0, len(rows), block):
                out.write(np.ascontiguousarray(ids[rows[begin : begin + block]]).tobytes())
            copied += len(rows)
            if copied >= block:
                encoded.release()
                copied = 0


def set_nprobe(path: Path, ivf: faiss.IndexIVF, nprobe: int) -> None:
    """Rewrite the nprobe stored in the header of an IVF file written by `write` from `ivf` (same header), in place:
    it is tuned by searching the written file. Its place is found by comparing two serializations."""
    empty = empty_like(ivf)
    empty.nprobe = 1
    one = faiss.serialize_index(empty).tobytes()
    empty.nprobe = 2
    with open(path, "r+b") as file:
        file.seek(_first_difference(one, faiss.serialize_index(empty).tobytes()))
        file.write(_SIZE.pack(nprobe))
