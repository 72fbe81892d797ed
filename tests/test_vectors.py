"""index.vectors: the switch from exact Flat to IVF-SQ8, and an IVF index through updates and queries."""

import shutil
from pathlib import Path

import faiss
import numpy as np
import pytest
from wenda.index import ivf_file, store, vectors
from wenda.index.builder import build_index, scan_corpus
from wenda.index.config import Settings
from wenda.index.hash_embedder import HashEmbedder
from wenda.index.scratch import VectorFile
from wenda.retrieval.retriever import Retriever

from tests.conftest import RAW_CORPUS, SEED_CORPUS


def clustered(count: int, dim: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(200, dim))
    data = centers[rng.integers(0, 200, count)] + rng.normal(0, 0.3, (count, dim))
    return (data / np.linalg.norm(data, axis=1, keepdims=True)).astype(np.float32)


def scratch_file(folder: Path, data: np.ndarray, block: int = 7_000) -> VectorFile:
    source = VectorFile(folder / "vectors.f32", data.shape[1])
    for begin in range(0, len(data), block):
        source.append(np.arange(begin, min(begin + block, len(data)), dtype=np.int64), data[begin : begin + block])
    return source


def test_ivf_reaches_recall_target_against_exact_search(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Trained on a sample and filled a block at a time from a scratch file (blocks smaller than the data)."""
    monkeypatch.setattr(vectors, "BLOCK", 3_000)
    data = clustered(20_000)
    ivf, tuned = vectors.build_ivf(scratch_file(tmp_path, data), tmp_path / "ivf.faiss", tmp_path)
    assert ivf.ntotal == 20_000 and tuned >= 0.95  # the target, or where 8-bit codes stop it rising
    assert vectors.describe(ivf, tuned)["tuned_recall@10"] == round(tuned, 4)
    queries = clustered(300, seed=1)
    exact = vectors.new_flat(64)
    exact.add_with_ids(data, np.arange(20_000, dtype=np.int64))
    _, truth = exact.search(queries, 10)
    _, found = ivf.search(queries, 10)
    assert vectors.recall(found, truth) >= 0.95  # tuned on other queries: allow a little slack
    assert ivf.nprobe < ivf.nlist


def test_exact_search_by_blocks_matches_faiss(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vectors, "BLOCK", 1_000)
    data, queries = clustered(5_000), clustered(50, seed=2)
    exact = vectors.new_flat(64)
    exact.add_with_ids(data, np.arange(5_000, dtype=np.int64))
    _, truth = exact.search(queries, 11)
    found = vectors.exact_search(queries, scratch_file(tmp_path, data, block=777), 11)
    assert vectors.recall(found, truth) > 0.999  # equal up to the order of exact ties


def test_small_indexes_stay_exact_and_ivf_stays_ivf() -> None:
    flat = vectors.new_flat(64)
    assert not vectors.becomes_ivf(None, vectors.FLAT_LIMIT - 1) and vectors.becomes_ivf(None, vectors.FLAT_LIMIT)
    assert vectors.becomes_ivf(flat, vectors.FLAT_LIMIT) and vectors.describe(flat) == {"type": "flat"}


def test_large_index_becomes_ivf_and_still_answers_and_updates(
    tmp_path: Path, embedder, seed_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vectors, "FLAT_LIMIT", 100)  # the seed corpus (222 chunks) counts as large
    corpus = tmp_path / "corpus"
    shutil.copytree(RAW_CORPUS, corpus)
    index_dir = tmp_path / "index"
    # the vectors of the session's index of the same files (its embedding cache): this is about the vector index
    settings = Settings(corpus=corpus, index_dir=index_dir, cache_path=seed_settings.embedding_cache)
    assert build_index(settings, embedder, progress=False, warn=lambda line: None).embedded_chunks == 0
    snapshot = store.open_snapshot(index_dir)
    assert snapshot.manifest["vector_index"]["type"] == "ivf-sq8"
    as_before = with_faiss_map_of_ids(snapshot.path)  # as an index written before the positions file was
    assert np.allclose(store.open_snapshot(index_dir).vectors([0, 150]), as_before, atol=1e-6)

    retriever = Retriever(settings, embedder)
    best = retriever.ask("安阳市区营运出租车中有多少台纯电动车？", 3).results[0]
    assert "纯电动车辆856台" in best.record.text

    path = corpus / "003_71e5a5211310dfa3.txt"
    path.write_text(path.read_text(encoding="utf-8") + "\n清丰县新建了一座有3000个座位的体育馆。\n", encoding="utf-8")
    update = build_index(settings, embedder, progress=False, warn=lambda line: None)
    assert update.changed == [path.name] and update.embedded_chunks == 1
    best = retriever.ask("清丰县新建的体育馆有多少个座位？", 3).results[0]
    assert "3000个座位" in best.record.text
    updated = store.open_snapshot(index_dir)
    assert len(updated) == update.total_chunks and updated.positions is not None  # the update wrote the new layout
    assert np.array_equal(updated.vectors([0, 150]), as_before)


def with_faiss_map_of_ids(generation: Path) -> np.ndarray:
    """Rewrite an IVF generation as Wenda wrote it before `vectors.positions.npy`: faiss's hash table of ids in the
    file, no positions file, the manifest sealed again; the stored vectors of chunks 0 and 150 read through it."""
    index = faiss.read_index(str(generation / store.VECTORS))
    index.set_direct_map_type(faiss.DirectMap.Hashtable)
    faiss.write_index(index, str(generation / store.VECTORS))
    positions = ivf_file.positions_path(generation / store.VECTORS)
    positions.unlink()
    manifest = store.read_manifest(generation)
    for field in ("sizes", "checksums"):
        del manifest[field][positions.name]
    manifest["sizes"][store.VECTORS] = (generation / store.VECTORS).stat().st_size
    manifest["checksums"][store.VECTORS] = store.file_checksum(generation / store.VECTORS)
    (generation / store.MANIFEST).write_bytes(store.seal(manifest))
    snapshot = store.Snapshot(generation)
    assert snapshot.positions is None
    return snapshot.vectors([0, 150])


def test_a_flat_index_that_outgrows_the_limit_on_an_update_becomes_ivf(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old Flat vectors and the new ones go through the scratch file into one IVF index, each under its own
    chunk id (the model-free embedder: this is about the vector index, not the model)."""
    monkeypatch.setattr(vectors, "FLAT_LIMIT", 225)  # the seed corpus (222 chunks) stays Flat, 5 more do not
    corpus = tmp_path / "corpus"
    shutil.copytree(SEED_CORPUS, corpus)
    settings = Settings(corpus=corpus, index_dir=tmp_path / "index", embedding_model="hash")
    embedder = HashEmbedder()
    first = build_index(settings, embedder, progress=False, warn=lambda line: None)
    flat = store.open_snapshot(settings.index_dir)
    assert flat.manifest["vector_index"] == {"type": "flat"}
    kept = {chunk_id: flat.index.reconstruct(chunk_id) for chunk_id in (0, 100, first.total_chunks - 1)}
    lines = [f"清丰县第{n}座新体育馆有{3000 + n}个座位，明年五月开放。" for n in range(1, 6)]
    (corpus / "new.txt").write_text("\n\n".join(lines) + "\n", encoding="utf-8")
    update = build_index(settings, embedder, progress=False, warn=lambda line: None)
    snapshot = store.open_snapshot(settings.index_dir)
    assert snapshot.manifest["vector_index"]["type"] == "ivf-sq8" and update.total_chunks == first.total_chunks + 5
    for chunk_id, vector in kept.items():  # the first build's chunks keep their ids and vectors (8-bit codes)
        assert np.allclose(snapshot.vectors([chunk_id])[0], vector, atol=0.02)
    retriever = Retriever(settings, embedder)
    assert "3003个座位" in retriever.ask("清丰县第3座新体育馆有多少个座位？", 3).results[0].record.text
    assert "纯电动车辆856台" in retriever.ask("安阳市区营运出租车中有多少台纯电动车？", 3).results[0].record.text


def test_a_file_deleted_while_an_ivf_update_is_built_is_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The update's IVF file is written list by list before the deletion is seen: it is read back, the file's
    vectors removed, and written again (model-free embedder: this is about the vector index)."""
    monkeypatch.setattr(vectors, "FLAT_LIMIT", 100)
    corpus = tmp_path / "corpus"
    shutil.copytree(SEED_CORPUS, corpus)
    settings = Settings(corpus=corpus, index_dir=tmp_path / "index", embedding_model="hash")
    embedder = HashEmbedder()
    first = build_index(settings, embedder, progress=False, warn=lambda line: None)
    (corpus / "new.txt").write_text("新增文件\n\n清丰县新建了一座有3000个座位的体育馆。\n", encoding="utf-8")
    (corpus / "gone.txt").write_text("将被删除\n\n这一段在建立索引时被删除。\n", encoding="utf-8")
    warnings: list[str] = []
    files, _ = scan_corpus(corpus, warnings.append)
    (corpus / "gone.txt").unlink()
    report = build_index(settings, embedder, False, False, warnings.append, files)
    assert "warning: skipped gone.txt: it was deleted while it was being indexed: left out" in warnings
    snapshot = store.open_snapshot(settings.index_dir)
    assert snapshot.manifest["vector_index"]["type"] == "ivf-sq8" and "gone.txt" not in snapshot.manifest["files"]
    assert len(snapshot) == report.total_chunks == first.total_chunks + 1  # new.txt's one chunk, gone.txt's none
    assert (
        "3000个座位" in Retriever(settings, embedder).ask("清丰县新建的体育馆有多少个座位？", 3).results[0].record.text
    )
