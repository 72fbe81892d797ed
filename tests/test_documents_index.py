"""A corpus of real PDF, Word, HTML, EPUB, Markdown and UTF-16 files, indexed and asked about: every known fact
is found in the top 3, and its citation, re-read from the file by `wenda show`, holds the passage."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import build, run_wenda
from wenda.index import store
from wenda.index.config import Settings
from wenda.index.context import show
from wenda.index.embeddings import Embedder
from wenda.retrieval.retriever import Retriever

DOCUMENTS = Path(__file__).parent / "fixtures" / "documents"
FACTS = json.loads((DOCUMENTS / "facts.json").read_text(encoding="utf-8"))
BAD = {  # scanned.pdf is read by OCR now (tests/test_ocr.py)
    "encrypted.pdf": "encrypted",
    "truncated.pdf": "truncated",
    "bomb.docx": "bomb",
    "photo.png": "not a readable image",
}


def plain(text: str) -> str:
    return re.sub(r"[\s|\-]+", "", text)


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> tuple[Path, Path, list[str]]:
    """(corpus, index folder, build warnings) for a copy of the fixture documents plus a symlink to one."""
    root = tmp_path_factory.mktemp("documents")
    corpus = root / "corpus"
    shutil.copytree(DOCUMENTS, corpus, ignore=shutil.ignore_patterns("*.json", "README.md"))
    (corpus / "alias.pdf").symlink_to(corpus / "report.pdf")
    (corpus / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    report = build(corpus, root / "index", embedder)
    return corpus, root / "index", report.warnings


def test_every_format_is_indexed_and_bad_files_get_one_warning_each(documents: tuple[Path, Path, list[str]]) -> None:
    corpus, index_dir, warnings = documents
    snapshot = store.open_snapshot(index_dir)
    indexed = {source for source, _ in snapshot.documents()}
    formats = dict(snapshot.db.execute("SELECT source, format FROM files").fetchall())
    snapshot.close()
    good = {path.name for path in corpus.iterdir() if path.name not in BAD and not path.is_symlink()}
    assert indexed == good  # the symlink is the same file: indexed once
    assert formats["renamed-pdf.txt"] == "pdf" and formats["utf16-nobom.txt"] == "text"
    for name, reason in BAD.items():
        mine = [line for line in warnings if name in line]
        assert len(mine) == 1 and reason in mine[0], mine


@pytest.mark.parametrize("fact", FACTS, ids=[f"{f['file']}:{f['fact']}" for f in FACTS])
def test_questions_find_each_fact_with_a_citation_that_show_confirms(
    documents: tuple[Path, Path, list[str]], embedder: Embedder, fact: dict
) -> None:
    corpus, index_dir, _ = documents
    retriever = Retriever(Settings(corpus=corpus, index_dir=index_dir), embedder)
    results = retriever.ask(fact["question"], 3).results
    hits = [r for r in results if r.record.source == fact["file"] and fact["fact"] in r.record.paragraph_text]
    assert hits, [(r.record.source, r.record.text[:40]) for r in results]
    record = hits[0].record
    for key, value in fact["where"].items():
        if key != "paragraph":
            assert record.where[key] == value
    context = show(retriever.snapshot, retriever.settings, f"{record.source}:{record.locator}")
    marked = "".join(text for _, text, mark in context.lines if mark)
    assert plain(record.text) in plain(marked) and not context.changed


def test_a_second_build_does_not_retry_unchanged_bad_files(
    documents: tuple[Path, Path, list[str]], embedder: Embedder
) -> None:
    corpus, index_dir, _ = documents
    again = build(corpus, index_dir, embedder)
    assert again.up_to_date and again.generation is None
    assert sorted(source for source, _ in again.skipped) == sorted(BAD)


def test_wenda_show_prints_the_page_and_marks_the_passage(documents: tuple[Path, Path, list[str]]) -> None:
    corpus, index_dir, _ = documents
    env = {"WENDA_CORPUS": str(corpus), "WENDA_INDEX_DIR": str(index_dir)}
    snapshot = store.open_snapshot(index_dir)
    line = snapshot.db.execute(
        "SELECT line FROM paragraphs WHERE source = 'report.pdf' AND text LIKE '%12860套%'"
    ).fetchone()[0]
    snapshot.close()
    done = run_wenda("show", f"report.pdf:p1:{line}", env=env)
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()
    assert out.startswith("《清河市二〇二四年政府工作报告》 · report.pdf · 第1页")
    assert "12860套" in plain("".join(row for row in out.splitlines() if row.startswith("▶")))
    for reference, message in [
        ("report.pdf:12", "report.pdf:pN:LINE"),
        ("report.pdf:p9:1", "no page 9"),
        ("nothere.pdf:p1:1", "not in the index"),
        ("report.pdf", "not SOURCE:LOCATOR"),
    ]:
        failed = run_wenda("show", reference, env=env)
        assert (
            failed.returncode == 1 and message in failed.stderr.decode() and "Traceback" not in failed.stderr.decode()
        )
