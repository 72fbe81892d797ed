"""index.ivf_file: IVF-SQ8 files written list by list are faiss's own files, and an update written as a merge of
the kept lists and the new codes answers as faiss's in-memory remove and add do."""

from pathlib import Path

import faiss
import numpy as np
import pytest
from wenda.index import ivf_file

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


def written(ivf: faiss.IndexIVF, folder: Path, parts, name: str, kept_from=None, kept_path=None, removed=()) -> Path:
    """Write `ivf` holding the (ids, vectors) `parts`, after the lists of `kept_from` less `removed`, as blocks
    smaller than the lists."""
    encoded = ivf_file.Encoded(folder, ivf.code_size)
    try:
        if kept_from is not None:
            ivf_file.stored_lists(kept_from, kept_path, np.array(removed, dtype=np.int64), encoded, block=50)
        ivf_file.encode(ivf, parts, encoded)
        ivf_file.write(folder / name, ivf, encoded, block=70)
    finally:
        encoded.close()
    return folder / name


def test_without_a_direct_map_the_file_is_faiss_s_byte_for_byte(tmp_path: Path) -> None:
    data, ids = unit(5_000, 1), np.random.default_rng(2).permutation(15_000)[:5_000].astype(np.int64)
    ivf = trained(faiss.DirectMap.NoMap)
    reference = faiss.clone_index(ivf)
    reference.add_with_ids(data, ids)
    path = written(ivf, tmp_path, [(ids[i : i + 700], data[i : i + 700]) for i in range(0, 5_000, 700)], "a.faiss")
    assert path.read_bytes() == faiss.serialize_index(reference).tobytes()
    assert list(tmp_path.iterdir()) == [path]  # the scratch files are gone


@pytest.mark.parametrize("nprobe", [1, 7, 40])
def test_with_a_direct_map_it_searches_reconstructs_and_updates_as_faiss_does(tmp_path: Path, nprobe: int) -> None:
    data, ids = unit(5_000, 3), np.arange(5_000, dtype=np.int64) * 3 + 1
    ivf = trained(faiss.DirectMap.Hashtable)
    reference = faiss.clone_index(ivf)
    reference.add_with_ids(data, ids)
    path = written(ivf, tmp_path, [(ids, data)], "a.faiss")
    ivf_file.set_nprobe(path, ivf, nprobe)
    mapped = faiss.read_index(str(path), faiss.IO_FLAG_MMAP)
    reference.nprobe = nprobe
    assert mapped.nprobe == nprobe and mapped.ntotal == 5_000
    queries = unit(60, 4)
    assert np.array_equal(mapped.search(queries, 10)[1], reference.search(queries, 10)[1])
    assert np.array_equal(mapped.reconstruct(int(ids[17])), reference.reconstruct(int(ids[17])))

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
    assert np.array_equal(updated.reconstruct(100_007), reference.reconstruct(100_007))
    with pytest.raises(RuntimeError):
        updated.reconstruct(int(gone[3]))
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
    assert merged.ntotal == 9 and np.array_equal(merged.reconstruct(7), sparse.reconstruct(7))
