"""A 20,000-passage build with the model-free hash embedder (index/hash_embedder.py): the bounded build end to
end — texts and vectors in the scratch folder, the IVF trained on a sample and filled a block at a time, BM25
written from many sorted runs — then answers that cite verbatim, and an update that adds one file.

The block sizes are made small so that 20,000 passages take the paths a million take (bench/million.py measures
those), and the switch to IVF comes at 5,000 vectors instead of 50,000."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from conftest import RAW_CORPUS
from wenda.index import lexical, vectors
from wenda.index.builder import SCRATCH, build_index
from wenda.index.config import Settings
from wenda.index.hash_embedder import HashEmbedder
from wenda.retrieval.retriever import Retriever

PASSAGES = 20_000
PER_FILE = 100
XWLB = RAW_CORPUS.parent / "data" / "xwlb.corpus.jsonl.gz"


def test_twenty_thousand_passages_build_bounded_answer_and_update(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vectors, "FLAT_LIMIT", 5_000)
    monkeypatch.setattr(vectors, "BLOCK", 3_000)
    monkeypatch.setattr(lexical, "BLOCK_PAIRS", 300_000)
    with gzip.open(XWLB, "rt", encoding="utf-8") as handle:
        paragraphs = [json.loads(line)["text"].strip() for _, line in zip(range(PASSAGES), handle, strict=False)]
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for start in range(0, PASSAGES, PER_FILE):
        text = "\n\n".join(paragraphs[start : start + PER_FILE]) + "\n"
        (corpus / f"news{start // PER_FILE:04d}.txt").write_text(text, encoding="utf-8")
    settings = Settings(corpus=corpus, index_dir=tmp_path / "index", embedding_model="hash")
    embedder = HashEmbedder()
    stages: list[str] = []
    report = build_index(
        settings, embedder, progress=False, warn=lambda line: None, on_stage=lambda s, _: stages.append(s)
    )
    assert stages == ["scan", "read", "embed", "vectors", "lexical", "write"]
    assert report.total_chunks > 0.9 * PASSAGES and report.embedded_chunks == report.total_chunks  # short ones merge
    generation = settings.index_dir / report.generation
    manifest = json.loads((generation / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["vector_index"]["type"] == "ivf-sq8" and manifest["chunks"] == report.total_chunks
    assert not (generation / SCRATCH).exists() and not list((generation / "bm25").glob(".runs-*"))

    retriever = Retriever(settings, embedder)
    for number in range(0, PASSAGES, 1_999):  # a passage's own opening words find it, cited verbatim
        question = paragraphs[number][:40]
        best = retriever.ask(question, 5).results[0]
        source = corpus / best.record.source
        assert best.record.text in source.read_text(encoding="utf-8"), number
        assert any(paragraphs[number][:40] in result.record.text for result in retriever.ask(question, 5).results)

    (corpus / "update.txt").write_text("清丰县新建了一座有3000个座位的体育馆，明年五月向市民开放。\n", encoding="utf-8")
    update = build_index(settings, embedder, progress=False, warn=lambda line: None)
    assert update.added == ["update.txt"] and update.embedded_chunks == 1
    assert update.total_chunks == report.total_chunks + 1
    assert "3000个座位" in retriever.ask("清丰县新建的体育馆有多少个座位？", 3).results[0].record.text
