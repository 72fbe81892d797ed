"""index.ivf_file: IVF-SQ8 files written list by list are faiss's own files, their positions file reconstructs as
faiss's map of ids does, and an update written as a merge of the kept lists and the new codes answers as faiss's
in-memory remove and add do."""

from pathlib import Path

import faiss
import numpy as np
import pytest
from wenda.index import ivf_file
from wenda.index.mapped import drop_pages

DIM, LISTS = 32, 40


def unit(count: int, seed: int) -> np.ndarray:
    data = np.random.default_rng(seed).standard_normal((count, DIM)).astype(np.float32)
    return data / np.linalg.norm(data, axis=1, keepdims=True)


def trained(direct_map: int) -> faiss.IndexIVFScalarQuantizer:
    ivf = faiss.IndexIVFScalarQuantizer(
        faiss.IndexFlatIP(DIM), DIM, LISTS, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
    )
    ivf.train(unit(2_000, 0))
    ivf.set_direct_map_type(direct_map)
    ivf.nprobe = 3
    return ivf


def written(
    ivf: faiss.IndexIVF, folder: Path, parts, name: str, kept_from=None, kept_path=None, removed=(), gather=5_000
) -> Path:
    """Write `ivf` holding the (ids, vectors) `parts`, after the lists of `kept_from` less `removed`, as blocks
    smaller than the lists, gathering `gather` bytes of lists at a time (5,000: about one list a pass)."""
    encoded = ivf_file.Encoded(folder, ivf.code_size)
    try:
        if kept_from is not None:
            ivf_file.stored_lists(kept_from, kept_path, np.array(removed, dtype=np.int64), encoded, block=50)
        ivf_file.encode(ivf, parts, encoded)
        ivf_file.write(folder / name, ivf, encoded, gather_bytes=gather, rows=70)
    finally:
        encoded.close()
    return folder / name


@pytest.mark.parametrize("gather", [5_000, 200_000, ivf_file.GATHER_BYTES])  # one list, a few, all in one pass
def test_the_file_is_faiss_s_byte_for_byte(tmp_path: Path, gather: int) -> None:
    data, ids = unit(5_000, 1), np.random.default_rng(2).permutation(15_000)[:5_000].astype(np.int64)
    ivf = trained(faiss.DirectMap.NoMap)
    reference = faiss.clone_index(ivf)
    reference.add_with_ids(data, ids)
    parts = [(ids[i : i + 700], data[i : i + 700]) for i in range(0, 5_000, 700)]
    path = written(ivf, tmp_path, parts, "a.faiss", gather=gather)
    assert path.read_bytes() == faiss.serialize_index(reference).tobytes()
    assert sorted(tmp_path.iterdir()) == [path, ivf_file.positions_path(path)]  # the scratch files are gone
    reference.set_direct_map_type(faiss.DirectMap.Hashtable)
    stored = ivf_file.reconstruct(reference, np.load(ivf_file.positions_path(path)), ids[::37])
    assert np.array_equal(stored, np.stack([reference.reconstruct(int(i)) for i in ids[::37]]))


def reconstructed(index: faiss.IndexIVF, path: Path, ids) -> np.ndarray:
    return ivf_file.reconstruct(index, np.load(ivf_file.positions_path(path), mmap_mode="r"), ids)


@pytest.mark.parametrize("nprobe", [1, 7, 40])
def test_it_searches_reconstructs_and_updates_as_faiss_does(tmp_path: Path, nprobe: int) -> None:
    data, ids = unit(5_000, 3), np.arange(5_000, dtype=np.int64) * 3 + 1
    ivf = trained(faiss.DirectMap.NoMap)
    reference = faiss.clone_index(ivf)
    reference.set_direct_map_type(faiss.DirectMap.Hashtable)  # faiss's own map of ids: the reference
    reference.add_with_ids(data, ids)
    path = written(ivf, tmp_path, [(ids, data)], "a.faiss")
    ivf_file.set_nprobe(path, ivf, nprobe)
    mapped = faiss.read_index(str(path), faiss.IO_FLAG_MMAP)
    reference.nprobe = nprobe
    assert mapped.nprobe == nprobe and mapped.ntotal == 5_000
    queries = unit(60, 4)
    assert np.array_equal(mapped.search(queries, 10)[1], reference.search(queries, 10)[1])
    assert np.array_equal(reconstructed(mapped, path, [int(ids[17])])[0], reference.reconstruct(int(ids[17])))

    # an update: 100 vectors removed, 300 added, written as a merge of the mapped file's lists and the new codes
    new, new_ids = unit(300, 5), np.arange(100_000, 100_300, dtype=np.int64)
    gone = ids[::50]
    path = written(mapped, tmp_path, [(new_ids, new)], "b.faiss", kept_from=mapped, kept_path=path, removed=gone)
    reference.remove_ids(gone)
    reference.add_with_ids(new, new_ids)
    updated = faiss.read_index(str(path), faiss.IO_FLAG_MMAP)
    assert updated.ntotal == reference.ntotal == 5_200 and updated.nprobe == nprobe
    queries = np.concatenate([queries, new[:40]])
    found, expected = updated.search(queries, 10), reference.search(queries, 10)
    assert np.allclose(found[0], expected[0])  # same scores; equal ones may come in another order
    assert np.array_equal(np.sort(found[1], axis=1), np.sort(expected[1], axis=1))
    assert np.array_equal(reconstructed(updated, path, [100_007])[0], reference.reconstruct(100_007))
    assert np.array_equal(reconstructed(updated, path, [int(ids[1])])[0], reference.reconstruct(int(ids[1])))
    for missing in (int(gone[3]), 2, 10**9, -1):  # removed, never stored, past the last id
        with pytest.raises(KeyError):
            reconstructed(updated, path, [missing])
    in_memory = faiss.read_index(str(path))  # what a later Flat-style removal would do: still possible
    assert in_memory.remove_ids(new_ids[:5]) == 5


def test_lists_in_faiss_s_sparse_layout_are_read_through_faiss(tmp_path: Path) -> None:
    """faiss writes an index with most lists empty in another layout ("sprs"): merged all the same."""
    data, ids = unit(10, 6), np.arange(10, dtype=np.int64)
    ivf = trained(faiss.DirectMap.Hashtable)
    sparse = faiss.clone_index(ivf)
    sparse.add_with_ids(data, ids)
    faiss.write_index(sparse, str(tmp_path / "sparse.faiss"))
    assert b"sprs" in (tmp_path / "sparse.faiss").read_bytes()
    stored = faiss.read_index(str(tmp_path / "sparse.faiss"))
    path = written(
        stored, tmp_path, [], "merged.faiss", kept_from=stored, kept_path=tmp_path / "sparse.faiss", removed=[3]
    )
    merged = faiss.read_index(str(path))
    assert merged.ntotal == 9 and np.array_equal(reconstructed(merged, path, [7])[0], sparse.reconstruct(7))


def test_positions_of_an_index_in_memory_match_the_written_ones(tmp_path: Path) -> None:
    data, ids = unit(3_000, 7), np.arange(3_000, dtype=np.int64) * 2
    path = written(trained(faiss.DirectMap.NoMap), tmp_path, [(ids, data)], "a.faiss")
    assert np.array_equal(ivf_file.positions_of(faiss.read_index(str(path))), np.load(ivf_file.positions_path(path)))


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="Linux reports mapped pages in /proc/self/smaps")
def test_dropped_pages_of_a_mapped_index_no_longer_count_as_resident(tmp_path: Path) -> None:
    data, ids = unit(20_000, 8), np.arange(20_000, dtype=np.int64)
    path = written(trained(faiss.DirectMap.NoMap), tmp_path, [(ids, data)], "a.faiss", gather=ivf_file.GATHER_BYTES)
    mapped = faiss.read_index(str(path), faiss.IO_FLAG_MMAP)
    mapped.nprobe = LISTS
    mapped.search(unit(20, 9), 10)  # every list read

    def resident_kb() -> int:
        """Rss of this process's mappings of the file: the first "Rss:" line after each of their headers."""
        total, inside = 0, False
        for line in Path("/proc/self/smaps").read_text().splitlines():
            if line.endswith(str(path.resolve())):
                inside = True
            elif inside and line.startswith("Rss:"):
                total, inside = total + int(line.split()[1]), False
        return total

    assert resident_kb() > 0.9 * path.stat().st_size / 1024
    drop_pages(path)
    assert resident_kb() == 0
    assert np.array_equal(mapped.search(data[:5], 1)[1].ravel(), ids[:5])  # read again from the page cache
