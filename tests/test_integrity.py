"""Damage matrix: every file of a generation, CURRENT and the embedding cache, damaged six ways.

For each case a question is either answered correctly from an intact generation or refused with the repair
command (never a wrong answer, never a score out of range, never an unexpected exception), and then a plain
`wenda index` (no --rebuild) leaves an index that verifies and answers correctly. Everything is real: the
built-in model, FAISS, SQLite and bm25s files on disk; damage is done to the bytes.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import build
from wenda.index.builder import build_index
from wenda.index.config import Settings
from wenda.index.embeddings import Embedder
from wenda.index.errors import WendaError
from wenda.index.integrity import check_index
from wenda.index.store import CURRENT, generations
from wenda.retrieval.retriever import Retriever

QUESTION = "清丰县技术合同交易额完成了多少?"
EVIDENCE = "技术合同交易额完成2.2亿元"
K = 3


def _flip(fraction: float) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        data = bytearray(path.read_bytes())
        start = min(int(len(data) * fraction), max(0, len(data) - 64))
        for i in range(start, min(start + 64, len(data))):
            data[i] ^= 0xA5
        path.write_bytes(bytes(data))

    return damage


DAMAGE: dict[str, Callable[[Path], None]] = {
    "truncate": lambda path: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]),
    "zero": lambda path: path.write_bytes(bytes(path.stat().st_size)),
    "flip-third": _flip(1 / 3),
    "flip-half": _flip(1 / 2),
    "delete": lambda path: path.unlink(),
    "garbage": lambda path: path.write_bytes(os.urandom(1000) + b"\xff\xfe not a file"),
}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    """Corpus + index with two intact generations (the live one and its predecessor) and a cache."""
    root = tmp_path_factory.mktemp("pristine")
    corpus = root / "corpus"
    corpus.mkdir()
    seed = Path(__file__).resolve().parent.parent / "corpus"
    for name in ("003_71e5a5211310dfa3.txt", "004_253b461cd30454f2.txt", "sources.toml"):
        shutil.copy(seed / name, corpus / name)
    build(corpus, root / "index", embedder)
    with open(corpus / "004_253b461cd30454f2.txt", "a", encoding="utf-8") as handle:
        handle.write("\n新增段落：本段在第二次建立索引时加入，用于产生第二代索引。\n")
    build(corpus, root / "index", embedder)
    assert len(generations(root / "index")) == 2
    return root


def _targets(index_dir: Path) -> list[str]:
    live = generations(index_dir)[0]
    files = sorted(p.relative_to(index_dir).as_posix() for p in live.rglob("*") if p.is_file())
    return [*files, CURRENT, "embeddings.sqlite"]


def _answers_correctly(settings: Settings, embedder: Embedder) -> None:
    response = Retriever(settings, embedder).ask(QUESTION, K)
    assert response.error is None
    assert EVIDENCE in response.results[0].record.text
    assert len(response.results) == K
    assert all(-1.05 <= result.dense <= 1.05 for result in response.results)


# Every file of the live generation of `pristine` (checked below), CURRENT and the cache.
TARGETS = [
    "gen-000002/bm25/data.csc.index.npy",
    "gen-000002/bm25/ids.npy",
    "gen-000002/bm25/indices.csc.index.npy",
    "gen-000002/bm25/indptr.csc.index.npy",
    "gen-000002/bm25/params.index.json",
    "gen-000002/bm25/vocab.index.json",
    "gen-000002/chunks.sqlite",
    "gen-000002/manifest.json",
    "gen-000002/vectors.faiss",
    CURRENT,
    "embeddings.sqlite",
]


def test_targets_cover_every_file_of_a_generation(pristine: Path) -> None:
    assert _targets(pristine / "index") == TARGETS


@pytest.mark.parametrize("how", list(DAMAGE))
@pytest.mark.parametrize("target", TARGETS)
def test_damage_is_refused_or_avoided_then_repaired(
    pristine: Path, tmp_path: Path, embedder: Embedder, target: str, how: str
) -> None:
    shutil.copytree(pristine, tmp_path / "case")
    settings = Settings(corpus=tmp_path / "case" / "corpus", index_dir=tmp_path / "case" / "index")
    DAMAGE[how](settings.index_dir / target)

    try:
        response = Retriever(settings, embedder).ask(QUESTION, K)
    except WendaError as exc:
        assert "wenda index" in str(exc)
    else:
        if response.error is not None:
            assert "wenda index" in response.error
        else:  # answered: from an intact generation, correctly, with scores in range
            assert EVIDENCE in response.results[0].record.text
            assert len(response.results) == K
            assert all(-1.05 <= result.dense <= 1.05 for result in response.results)

    # the repair: a plain update, or --rebuild for the cache (the case the documented repair used to spread)
    report = build_index(settings, embedder, rebuild=target == "embeddings.sqlite", progress=False)
    if target != "embeddings.sqlite":
        assert report.repaired, "a repair must say what it repaired"
    assert not [finding.text for finding in check_index(settings) if finding.damage]
    _answers_correctly(settings, embedder)
