"""index.builder and index.store: citations, incremental updates, refusals and atomic writes."""

import random
import signal
import sqlite3
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import pytest
from wenda.index import store
from wenda.index.config import Settings
from wenda.index.errors import IndexLockedError, IndexMismatchError, WendaError

from tests.conftest import ROOT, SEED_CORPUS, build, copy_of


def nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def test_every_seed_chunk_cites_its_exact_line(seed_settings: Settings) -> None:
    snapshot = store.open_snapshot(seed_settings.index_dir)
    ids = [row[0] for row in snapshot.db.execute("SELECT id FROM chunks")]
    records = snapshot.records(ids)
    assert len(records) == len(snapshot) > 200
    files = {p.name: p.read_text(encoding="utf-8").split("\n") for p in SEED_CORPUS.glob("*.txt")}
    for record in records.values():
        line = files[record.source][record.line - 1]
        assert nfkc(record.text) in nfkc(line), (record.source, record.line)
        assert line.strip()[record.start : record.end] == record.text
        nonblank = [i for i, text in enumerate(files[record.source], start=1) if text.strip()]
        assert nonblank[record.paragraph - 1] == record.line


def test_incremental_update_embeds_only_changed_file(small_corpus: Path, tmp_path: Path, embedder) -> None:
    index_dir = tmp_path / "index"
    first = build(small_corpus, index_dir, embedder)
    assert sorted(first.added) == ["003_71e5a5211310dfa3.txt", "004_253b461cd30454f2.txt"]

    again = build(small_corpus, index_dir, embedder)
    assert again.up_to_date and again.embedded_chunks == 0 and again.generation is None

    changed = small_corpus / "004_253b461cd30454f2.txt"
    changed.write_text(changed.read_text(encoding="utf-8") + "\n新增段落：运城市新建了一座图书馆。\n", encoding="utf-8")
    update = build(small_corpus, index_dir, embedder)
    assert update.changed == ["004_253b461cd30454f2.txt"] and not update.added and not update.removed
    snapshot = store.open_snapshot(index_dir)
    own = snapshot.db.execute("SELECT COUNT(*) FROM chunks WHERE source = ?", (changed.name,)).fetchone()[0]
    # only the new paragraph is embedded; the file's unchanged chunks come from the embedding cache
    assert (update.embedded_chunks, update.cached_chunks) == (1, own - 1)
    assert update.total_chunks == first.total_chunks + 1 == len(snapshot)

    (small_corpus / "003_71e5a5211310dfa3.txt").unlink()
    removal = build(small_corpus, index_dir, embedder)
    assert removal.removed == ["003_71e5a5211310dfa3.txt"] and removal.embedded_chunks == 0
    assert len(store.open_snapshot(index_dir)) == own


def test_metadata_change_reembeds_that_file(small_corpus: Path, tmp_path: Path, embedder) -> None:
    build(small_corpus, tmp_path / "index", embedder)
    sources = small_corpus / "sources.toml"
    text = sources.read_text(encoding="utf-8")
    sources.write_text(text.replace("运城市全面深化改革综述", "运城改革综述"), encoding="utf-8")
    assert build(small_corpus, tmp_path / "index", embedder).changed == ["004_253b461cd30454f2.txt"]


def test_bad_files_are_skipped_with_one_warning_each(small_corpus: Path, tmp_path: Path, embedder) -> None:
    (small_corpus / "empty.txt").write_bytes(b"")
    (small_corpus / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (small_corpus / "garbage.txt").write_bytes(bytes([0x81, 0x30, 0xFF, 0xFE]) * 8)
    (small_corpus / "gbk.txt").write_bytes("标题\r\n清丰县的新段落。\r\n".encode("gb18030"))
    report = build(small_corpus, tmp_path / "index", embedder)
    assert sorted(s for s, _ in report.skipped) == ["empty.txt", "garbage.txt", "image.txt"]
    skip_warnings = [w for w in report.warnings if w.startswith("warning: skipped")]
    assert sorted(skip_warnings) == sorted(f"warning: skipped {s}: {r}" for s, r in report.skipped)
    assert "gbk.txt" in report.added
    record = next(iter(store.open_snapshot(tmp_path / "index").records(list(range(report.total_chunks))).values()))
    assert record.source  # the index answers with the good files


def test_empty_corpus_is_an_error(tmp_path: Path, embedder) -> None:
    (tmp_path / "corpus").mkdir()
    with pytest.raises(WendaError, match="nothing to index"):
        build(tmp_path / "corpus", tmp_path / "index", embedder)


def test_chunking_change_asks_for_rebuild(small_corpus: Path, tmp_path: Path, embedder) -> None:
    from wenda.index.builder import build_index
    from wenda.index.config import ChunkingParams

    build(small_corpus, tmp_path / "index", embedder)
    settings = Settings(corpus=small_corpus, index_dir=tmp_path / "index", chunking=ChunkingParams(max_chars=200))
    with pytest.raises(IndexMismatchError, match="--rebuild"):
        build_index(settings, embedder, progress=False)
    assert build_index(settings, embedder, rebuild=True, progress=False).embedded_chunks > 0


def test_second_writer_is_refused(tmp_path: Path) -> None:
    with store.write_lock(tmp_path):
        with pytest.raises(IndexLockedError, match="another `wenda index`"):
            with store.write_lock(tmp_path):
                pass


def test_killed_build_leaves_previous_index_answering(small_index: Path, tmp_path: Path, embedder) -> None:
    corpus, index_dir, _ = copy_of(small_index, tmp_path)
    first = build(corpus, index_dir, embedder)  # up to date: nothing embedded
    before = store.live_generation(index_dir)
    sources = corpus / "sources.toml"  # new titles change every chunk's context: all must be re-embedded
    sources.write_text(sources.read_text(encoding="utf-8").replace('title = "', 'title = "新'), encoding="utf-8")
    command = [
        sys.executable,
        "-m",
        "wenda.bot.cli",
        "index",
        "-q",
        "--corpus",
        str(corpus),
        "--index-dir",
        str(index_dir),
        "--batch-size",  # checkpoints every 8 chunks: the kill lands between two
        "8",
    ]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cache = sqlite3.connect(index_dir / "embeddings.sqlite", timeout=30)
    deadline = time.monotonic() + 120
    while cache.execute("SELECT COUNT(*) FROM vectors").fetchone()[0] <= first.total_chunks:  # first batch stored
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.2)
    cache.close()
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert store.live_generation(index_dir) == before
    snapshot = store.open_snapshot(index_dir)
    assert len(snapshot) == first.total_chunks
    assert snapshot.search(embedder.embed_queries(["清丰县机关负责人出庭率"])[0], 1)
    resumed = build(corpus, index_dir, embedder)
    assert len(resumed.changed) == 2 and store.live_generation(index_dir) != before
    assert resumed.cached_chunks >= 8  # batches embedded before the kill are not embedded again
    assert not list(index_dir.glob("gen-*.tmp"))


def test_kills_at_random_points_never_lose_the_index(small_corpus: Path, tmp_path: Path, embedder) -> None:
    index_dir = tmp_path / "index"
    build(small_corpus, index_dir, embedder)
    sources = small_corpus / "sources.toml"
    command = [sys.executable, "-m", "wenda.bot.cli", "index", "-q", "--corpus", str(small_corpus)]
    rng = random.Random(7)
    for round_ in range(5):
        # new titles: every chunk's context changes, so each run has real work to be killed in
        text = sources.read_text(encoding="utf-8")
        sources.write_text(text.replace('title = "', f'title = "{round_}'), encoding="utf-8")
        process = subprocess.Popen(
            [*command, "--index-dir", str(index_dir)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(rng.uniform(0.2, 4.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
        snapshot = store.open_snapshot(index_dir)  # whatever generation is live opens and answers
        assert len(snapshot) > 0
        assert snapshot.search(embedder.embed_queries(["运城市改革"])[0], 3)
        snapshot.close()
    final = build(small_corpus, index_dir, embedder)  # the next run completes the work
    titles = {f["title"] for f in store.open_snapshot(index_dir).manifest["files"].values()}
    assert titles and all(title.startswith("43210") for title in titles)  # every round's edit is in
    assert build(small_corpus, index_dir, embedder).up_to_date and final.total_chunks > 0
