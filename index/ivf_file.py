"""IVF-SQ8 index files written list by list, so neither a build nor an update holds every vector's code.

faiss builds an IVF index in memory (384 bytes a vector for SQ8: 384 MB at a million chunks) and writes it at
the end. Here a trained, empty index gives the file's header; each vector's list and 8-bit code are computed a
block at a time into scratch files, and the lists are written one after another in faiss's own layout ("ilar":
every list's codes then its ids), gathered a range of lists at a time by reading the scratch files in order
(plain reads: a mapping read out of order would keep every page it touched resident). The file is byte for byte
what `faiss.write_index` writes for the same vectors added in the same order (tests/test_ivf_file.py). Readers
open it memory-mapped (`faiss.IO_FLAG_MMAP`).

It has no direct map: faiss rebuilds its hash table of ids in memory each time such a file is read (~50 MB at a
million ids, which the heap keeps after it is freed). Where each id lies (list << 32 | offset; −1: none) goes
into a positions file beside it instead, memory-mapped by readers, which `reconstruct` reads.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import faiss
import numpy as np

_NTOTAL = struct.Struct("<q")  # the index header: fourcc, int32 d, int64 ntotal, …
_NTOTAL_AT = 8
_SIZE = struct.Struct("<Q")  # faiss writes vector lengths and list counts as size_t
GATHER_BYTES = 32 * 2**20  # codes and ids of the lists written after one pass over the scratch files
ROWS = 16_384  # scratch rows read at a time (6 MB of codes)


def positions_path(vectors: Path) -> Path:
    """The positions file that goes with an IVF file written here: vectors.faiss → vectors.positions.npy."""
    return vectors.with_name(f"{vectors.stem}.positions.npy")


class Encoded:
    """Every vector's list number, id and 8-bit code, appended a block at a time to three scratch files."""

    def __init__(self, folder: Path, code_size: int) -> None:
        self.paths = {name: folder / f"ivf-{name}" for name in ("lists", "ids", "codes")}
        self.code_size = code_size
        self.count = 0
        self.largest_id = -1
        self.files = {name: open(path, "wb") for name, path in self.paths.items()}  # noqa: SIM115 - close()

    def append(self, lists: np.ndarray, ids: np.ndarray, codes: np.ndarray) -> None:
        self.files["lists"].write(np.ascontiguousarray(lists, dtype=np.int32).tobytes())
        self.files["ids"].write(np.ascontiguousarray(ids, dtype=np.int64).tobytes())
        self.files["codes"].write(np.ascontiguousarray(codes, dtype=np.uint8).tobytes())
        self.count += len(ids)
        self.largest_id = max(self.largest_id, int(np.max(ids, initial=-1)))

    def blocks(self, rows: int = ROWS) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(lists, ids, codes) of `rows` vectors at a time, in the order they were appended, read from the files."""
        for file in self.files.values():
            file.flush()
        with (
            open(self.paths["lists"], "rb") as lists,
            open(self.paths["ids"], "rb") as ids,
            open(self.paths["codes"], "rb") as codes,
        ):
            for begin in range(0, self.count, rows):
                size = min(rows, self.count - begin)
                yield (
                    np.fromfile(lists, np.int32, size),
                    np.fromfile(ids, np.int64, size),
                    np.fromfile(codes, np.uint8, size * self.code_size).reshape(size, self.code_size),
                )

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

    The lists are read from `path` by plain reads, `block` entries at a time, so merging a big index holds one
    block, not the file's pages; they are the file's last bytes, one after another (faiss's "full" layout,
    checked; an index in another layout is read through faiss's own lists instead)."""
    sizes = np.array([ivf.invlists.list_size(number) for number in range(ivf.nlist)], dtype=np.uint64)
    gone = np.sort(np.asarray(removed, dtype=np.int64))
    width = ivf.code_size
    with open(path, "rb") as file:
        start = os.fstat(file.fileno()).st_size - int(sizes.sum()) * (width + 8)
        table = start - 8 * ivf.nlist
        own = (
            table >= 12
            and _read(file, table - 12, 4) == b"full"
            and _read(file, table, 8 * ivf.nlist) == sizes.tobytes()
        )
        for number, size in enumerate(sizes.tolist()):
            if not own and size:
                codes = faiss.rev_swig_ptr(ivf.invlists.get_codes(number), size * width)
                ids = faiss.rev_swig_ptr(ivf.invlists.get_ids(number), size)
            for begin in range(0, size, block):
                end = min(begin + block, size)
                if own:
                    part = np.frombuffer(_read(file, start + begin * width, (end - begin) * width), np.uint8)
                    chosen = np.frombuffer(_read(file, start + size * width + begin * 8, (end - begin) * 8), np.int64)
                else:
                    part, chosen = codes[begin * width : end * width], ids[begin:end].copy()
                keep = ~np.isin(chosen, gone) if len(gone) else np.ones(len(chosen), bool)
                into.append(
                    np.full(int(keep.sum()), number, dtype=np.int32), chosen[keep], part.reshape(-1, width)[keep]
                )
            if own:
                start += size * (width + 8)


def _read(file: BinaryIO, offset: int, size: int) -> bytes:
    file.seek(offset)
    data = file.read(size)
    if len(data) != size:
        raise ValueError(f"{file.name}: {size} bytes expected at {offset}, {len(data)} there")
    return data


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


def _ranges(sizes: np.ndarray, capacity: int) -> Iterator[tuple[int, int]]:
    """Consecutive ranges of lists [first, last) holding at most `capacity` vectors together (a longer list alone)."""
    first, held = 0, 0
    for number, size in enumerate(sizes.tolist()):
        if held and held + size > capacity:
            yield first, number
            first, held = number, 0
        held += size
    if first < len(sizes):
        yield first, len(sizes)


def _gather(encoded: Encoded, first: int, last: int, starts: np.ndarray, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """The codes and ids of lists first … last − 1 in list order, each list in the order its vectors were appended
    (as faiss's add leaves them), from one pass over the scratch files."""
    count = int(starts[last] - starts[first])
    codes = np.empty((count, encoded.code_size), dtype=np.uint8)
    ids = np.empty(count, dtype=np.int64)
    cursor = starts[first:last] - starts[first]  # where each list's next vector goes
    for lists, block_ids, block_codes in encoded.blocks(rows):
        chosen = np.flatnonzero((lists >= first) & (lists < last))
        if not len(chosen):
            continue
        chosen = chosen[np.argsort(lists[chosen], kind="stable")]
        owners = lists[chosen] - first
        numbers, firsts, counts = np.unique(owners, return_index=True, return_counts=True)
        places = cursor[owners] + np.arange(len(chosen)) - np.repeat(firsts, counts)
        codes[places], ids[places] = block_codes[chosen], block_ids[chosen]
        cursor[numbers] += counts
    return codes, ids


def write(
    path: Path, ivf: faiss.IndexIVF, encoded: Encoded, gather_bytes: int = GATHER_BYTES, rows: int = ROWS
) -> None:
    """Write `ivf` (trained; its own lists are ignored) holding every vector of `encoded` to `path`, list by list,
    and their positions beside it. Memory holds the positions (8 bytes an id) and `gather_bytes` of lists."""
    sizes = np.zeros(ivf.nlist, dtype=np.int64)
    for lists, _, _ in encoded.blocks(rows):
        sizes += np.bincount(lists, minlength=ivf.nlist)
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    positions = np.full(encoded.largest_id + 1, -1, dtype=np.int64)
    empty = faiss.serialize_index(empty_like(ivf)).tobytes()
    with open(path, "wb") as out:
        out.write(empty[:_NTOTAL_AT] + _NTOTAL.pack(encoded.count) + empty[_NTOTAL_AT + 8 : empty.rfind(b"ilar")])
        out.write(b"ilar" + _SIZE.pack(ivf.nlist) + _SIZE.pack(ivf.code_size))
        out.write(b"full" + _SIZE.pack(ivf.nlist) + sizes.astype(np.uint64).tobytes())
        for first, last in _ranges(sizes, max(1, gather_bytes // (ivf.code_size + 8))):
            codes, ids = _gather(encoded, first, last, starts, rows)
            for number in range(first, last):
                begin, end = starts[number] - starts[first], starts[number + 1] - starts[first]
                out.write(codes[begin:end].tobytes())
                out.write(ids[begin:end].tobytes())
                positions[ids[begin:end]] = (number << 32) | np.arange(end - begin, dtype=np.int64)
    np.save(positions_path(path), positions)


def positions_of(ivf: faiss.IndexIVF) -> np.ndarray:
    """Where each id lies in `ivf`'s lists (list << 32 | offset; −1: none), read from the lists themselves."""
    found = [faiss.rev_swig_ptr(ivf.invlists.get_ids(n), ivf.invlists.list_size(n)).copy() for n in range(ivf.nlist)]
    positions = np.full(max((int(ids.max()) for ids in found if len(ids)), default=-1) + 1, -1, dtype=np.int64)
    for number, ids in enumerate(found):
        positions[ids] = (number << 32) | np.arange(len(ids), dtype=np.int64)
    return positions


def reconstruct(ivf: faiss.IndexIVF, positions: np.ndarray, ids: Iterable[int]) -> np.ndarray:
    """The stored (decoded 8-bit) vectors of these ids, from their positions; KeyError for an id not stored."""
    ids = list(ids)
    vectors = np.empty((len(ids), ivf.d), dtype=np.float32)
    for row, chunk_id in enumerate(ids):
        where = int(positions[chunk_id]) if 0 <= chunk_id < len(positions) else -1
        if where < 0:
            raise KeyError(chunk_id)
        ivf.reconstruct_from_offset(where >> 32, where & 0xFFFFFFFF, faiss.swig_ptr(vectors[row]))
    return vectors


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
