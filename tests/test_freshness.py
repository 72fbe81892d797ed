"""Stale citations: a cited file edited or deleted after indexing is flagged; `--watch` re-indexes it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from wenda.bot.render import render_response
from wenda.bot.telegram import format as telegram_format
from wenda.index.config import Settings
from wenda.index.embeddings import Embedder
from wenda.index.freshness import Freshness
from wenda.index.store import live_generation, open_snapshot
from wenda.retrieval.retriever import Retriever

from tests.conftest import ROOT, copy_of, run_wenda

FILE = "003_71e5a5211310dfa3.txt"
QUESTION = "清丰县技术合同交易额完成了多少?"
EVIDENCE = "技术合同交易额完成2.2亿元"


def cited_line(corpus: Path, citation: dict) -> str:
    return (corpus / citation["source"]).read_text(encoding="utf-8").split("\n")[citation["line"] - 1]


def test_edited_or_deleted_file_is_marked_stale(small_index: Path, tmp_path: Path) -> None:
    corpus, index_dir, env = copy_of(small_index, tmp_path)
    fresh = json.loads(run_wenda("ask", "--json", "-k", "1", QUESTION, env=env).stdout)["results"][0]
    assert fresh["citation"]["stale"] is False and EVIDENCE in cited_line(corpus, fresh["citation"])

    path = corpus / FILE
    path.write_text("插入的第一行\n" + path.read_text(encoding="utf-8"), encoding="utf-8")
    moved = json.loads(run_wenda("ask", "--json", "-k", "1", QUESTION, env=env).stdout)
    assert moved["results"][0]["citation"]["stale"] is True and moved["answer"]["citation"]["stale"] is True
    text = run_wenda("ask", "-k", "1", QUESTION, env=env).stdout.decode()
    assert "this file changed after indexing): run `wenda index`" in text

    assert run_wenda("index", "-q", env=env).returncode == 0
    updated = json.loads(run_wenda("ask", "--json", "-k", "1", QUESTION, env=env).stdout)["results"][0]
    assert updated["citation"]["stale"] is False
    assert updated["citation"]["line"] == fresh["citation"]["line"] + 1
    assert EVIDENCE in cited_line(corpus, updated["citation"])

    path.unlink()
    gone = json.loads(run_wenda("ask", "--json", "-k", "1", QUESTION, env=env).stdout)["results"][0]
    assert gone["citation"]["stale"] is True


def test_same_bytes_saved_again_are_not_stale(small_index: Path, tmp_path: Path) -> None:
    corpus, index_dir, _ = copy_of(small_index, tmp_path)
    path = corpus / FILE
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a new mtime, the same content: hashed
    freshness = Freshness(corpus, open_snapshot(index_dir).manifest)
    assert not freshness.stale(FILE)
    path.write_bytes(path.read_bytes().replace("清丰".encode(), "濮阳".encode(), 1))  # same size, new bytes
    assert freshness.stale(FILE)


def test_telegram_and_terminal_show_the_stale_mark(small_index: Path, tmp_path: Path, embedder: Embedder) -> None:
    corpus, index_dir, _ = copy_of(small_index, tmp_path)
    path = corpus / FILE
    path.write_text("插入的第一行\n" + path.read_text(encoding="utf-8"), encoding="utf-8")
    response = Retriever(Settings(corpus=corpus, index_dir=index_dir), embedder).ask(QUESTION, 2)
    assert response.results[0].stale
    assert "此文件在建立索引后已修改" in telegram_format.answer_html(response, response.results, 1)
    assert "this file changed after indexing" in render_response(response)


def test_watch_reindexes_a_changed_file_within_seconds(small_index: Path, tmp_path: Path, embedder: Embedder) -> None:
    corpus, index_dir, env = copy_of(small_index, tmp_path)
    watcher = subprocess.Popen(
        [sys.executable, "-m", "wenda.bot.cli", "index", "--watch", "-q"],
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        line = watcher.stderr.readline().decode()
        while "watching" not in line:
            assert line, "the watcher exited before watching"
            line = watcher.stderr.readline().decode()
        before = live_generation(index_dir)
        fact = "清丰县今年新建了一座名为启明的图书馆，藏书十二万册。"
        path = corpus / FILE
        path.write_text(path.read_text(encoding="utf-8") + f"\n{fact}\n", encoding="utf-8")
        changed_at = time.monotonic()
        while live_generation(index_dir) == before:
            assert time.monotonic() - changed_at < 60 and watcher.poll() is None, "no new generation within 60 s"
            time.sleep(0.2)
        seconds = time.monotonic() - changed_at
        settings = Settings(corpus=corpus, index_dir=index_dir)
        result = Retriever(settings, embedder).ask("启明图书馆藏书多少册?", 1).results[0]
        assert fact in result.record.text and not result.stale and seconds < 30
        lines = path.read_text(encoding="utf-8").split("\n")
        assert lines[result.record.line - 1] == fact  # verbatim at the cited line
    finally:
        watcher.terminate()
        watcher.wait(timeout=30)


def test_a_copied_corpus_and_index_read_the_copy(small_index: Path, tmp_path: Path) -> None:
    """The index copied beside the original, the corpus copied elsewhere, WENDA_CORPUS/WENDA_INDEX_DIR at the
    copies and the copy edited: `wenda show` prints the copy's lines and the citation is stale; the original
    corpus (which the index's recorded relative path leads back to) is never read."""
    corpus, index_dir, env = copy_of(small_index, tmp_path / "original")
    shutil.copytree(index_dir, index_dir.parent / "index-copy")
    shutil.copytree(corpus, tmp_path / "elsewhere" / "corpus")
    copied = {
        "WENDA_CORPUS": str(tmp_path / "elsewhere" / "corpus"),
        "WENDA_INDEX_DIR": str(index_dir.parent / "index-copy"),
    }
    cited = json.loads(run_wenda("ask", "--json", "-k", "1", QUESTION, env=copied).stdout)["results"][0]["citation"]
    assert cited["stale"] is False
    path = tmp_path / "elsewhere" / "corpus" / cited["source"]
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[cited["line"] - 1] = "这一行在副本里改过了。"
    path.write_text("\n".join(lines), encoding="utf-8")
    shown = run_wenda("show", f"{cited['source']}:{cited['locator']}", env=copied).stdout.decode()
    assert "这一行在副本里改过了" in shown and EVIDENCE not in shown
    again = json.loads(run_wenda("ask", "--json", "-k", "1", QUESTION, env=copied).stdout)["results"][0]
    assert again["citation"]["stale"] is True
    original = json.loads(run_wenda("ask", "--json", "-k", "1", QUESTION, env=env).stdout)["results"][0]
    assert original["citation"]["stale"] is False  # the original pair is untouched
