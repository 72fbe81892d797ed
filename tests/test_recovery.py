"""What `wenda` says and does when the index folder is damaged, full or read-only: one sentence, the right exit
status (0 ok, 1 failure or damage, 2 usage), nothing left behind, and a plain `wenda index` that repairs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import wenda.index.store
from wenda.index.builder import build_index, scan_corpus
from wenda.index.config import Settings
from wenda.index.embeddings import Embedder
from wenda.index.errors import WendaError
from wenda.index.store import CURRENT, generations, live_generation
from wenda.retrieval.retriever import Retriever

from tests.conftest import ROOT, build, copy_of, run_wenda

QUESTION = "清丰县技术合同交易额完成了多少?"
EVIDENCE = "技术合同交易额完成2.2亿元"


def answers(env: dict) -> subprocess.CompletedProcess:
    done = run_wenda("ask", "--json", "-k", "1", QUESTION, env=env)
    assert b"internal error" not in done.stderr and b"Traceback" not in done.stderr
    return done


@pytest.mark.parametrize("content", [b"\xff\xfe\x00gen", b"gen-0\n", b"gen-000042\n", b""])
def test_damaged_current_is_served_around_and_repaired(small_index: Path, tmp_path: Path, content: bytes) -> None:
    corpus, index_dir, env = copy_of(small_index, tmp_path)
    (index_dir / CURRENT).write_bytes(content)
    done = answers(env)
    assert done.returncode == 0 and EVIDENCE in json.loads(done.stdout)["results"][0]["text"]
    assert "answering from gen-000001" in done.stderr.decode() and "wenda index" in done.stderr.decode()
    check = run_wenda("index", "--check", env=env)
    assert check.returncode == 1 and "DAMAGED" in check.stdout.decode() and CURRENT in check.stdout.decode()
    if content:  # the repair does not depend on what the pointer held: walked through once, for the empty one
        return
    repair = run_wenda("index", env=env)
    assert repair.returncode == 0 and "repaired:" in repair.stdout.decode()
    assert not list(index_dir.glob("*.tmp")) and live_generation(index_dir).name == "gen-000001"
    assert run_wenda("index", "--check", env=env).returncode == 0
    assert answers(env).stderr == b""


def test_rebuild_works_whatever_current_holds(small_index: Path, tmp_path: Path) -> None:
    corpus, index_dir, env = copy_of(small_index, tmp_path)
    (index_dir / CURRENT).write_bytes(b"\xff\xfe\xfd")
    done = run_wenda("index", "--rebuild", "-q", env=env)
    assert done.returncode == 0, done.stderr.decode()
    assert not list(index_dir.glob("*.tmp")) and live_generation(index_dir).name == "gen-000002"


def test_check_names_the_damaged_file_and_index_repairs_it(small_index: Path, tmp_path: Path) -> None:
    corpus, index_dir, env = copy_of(small_index, tmp_path)
    assert run_wenda("index", "--check", env=env).returncode == 0
    vectors = live_generation(index_dir) / "vectors.faiss"
    data = bytearray(vectors.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)  # same size: only a checksum can tell
    vectors.write_bytes(bytes(data))
    check = run_wenda("index", "--check", env=env)
    assert (
        check.returncode == 1
        and f"DAMAGED: index file {vectors} is damaged (checksum mismatch)" in check.stdout.decode()
    )
    refused = answers(env)  # the only generation is damaged: refused, with the repair command
    assert refused.returncode == 1 and "run `wenda index` to repair it" in refused.stderr.decode()
    repair = run_wenda("index", "-q", env=env)
    assert repair.returncode == 0 and "no intact generation left, rebuilt from the corpus" in repair.stdout.decode()
    assert "0 chunks embedded" in repair.stdout.decode()  # every vector came from the (intact) cache
    assert EVIDENCE in json.loads(answers(env).stdout)["results"][0]["text"]


def test_injected_disk_full_cleans_up_and_says_so(
    small_index: Path, tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus, index_dir, _ = copy_of(small_index, tmp_path)
    (corpus / "new.txt").write_text("新增文件\n\n这一段让索引需要新的一代。\n", encoding="utf-8")

    def full(*args: object) -> None:
        raise RuntimeError("Error in faiss::write_index: fwrite failed: No space left on device")

    monkeypatch.setattr(wenda.index.store.faiss, "write_index", full)
    with pytest.raises(WendaError, match="no space left on the device holding .* MB are free.*previous index still"):
        build_index(Settings(corpus=corpus, index_dir=index_dir), embedder, progress=False)
    assert not list(index_dir.glob("gen-*.tmp")) and live_generation(index_dir).name == "gen-000001"


def _unshare(script: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run `script` as root of a private mount namespace (to mount a small or read-only tmpfs)."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"]).returncode != 0:
        pytest.skip("needs `unshare -rm` (user and mount namespaces) to mount a tmpfs")
    prelude = f"export PYTHONPATH={ROOT}; wenda='{sys.executable} -m wenda.bot.cli'\n"
    return subprocess.run(
        ["unshare", "-rm", "sh", "-c", prelude + script], capture_output=True, cwd=tmp_path, timeout=300
    )


def test_real_disk_full_on_a_small_tmpfs(small_index: Path, tmp_path: Path) -> None:
    corpus, index_dir, _ = copy_of(small_index, tmp_path)
    (corpus / "new.txt").write_text("新增文件\n\n这一段让索引需要新的一代。\n", encoding="utf-8")
    size = sum(p.stat().st_size for p in index_dir.rglob("*") if p.is_file()) + 200_000
    script = f"""
        mkdir -p disk && mount -t tmpfs -o size={size} tmpfs disk && cp -r {index_dir} disk/index || exit 99
        export WENDA_CORPUS={corpus} WENDA_INDEX_DIR=disk/index WENDA_EMBEDDING_CACHE={tmp_path}/cache.sqlite
        $wenda index -q 2> index.err; echo $? > index.rc
        ls disk/index > after.ls
        $wenda ask --json -k 1 '{QUESTION}' > ask.out 2> ask.err; echo $? > ask.rc
    """
    done = _unshare(script, tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    error = (tmp_path / "index.err").read_text()
    assert (tmp_path / "index.rc").read_text().strip() == "1", error
    assert "wenda: error: no space left on the device holding disk/index" in error and "MB are free" in error
    assert ".tmp" not in (tmp_path / "after.ls").read_text()  # the partial generation is gone
    assert (tmp_path / "ask.rc").read_text().strip() == "0"  # the previous generation still answers
    assert EVIDENCE in json.loads((tmp_path / "ask.out").read_text())["results"][0]["text"]


def test_read_only_index_folder(small_index: Path, tmp_path: Path) -> None:
    corpus, index_dir, _ = copy_of(small_index, tmp_path)
    (corpus / "new.txt").write_text("新增文件\n\n这一段让索引需要新的一代。\n", encoding="utf-8")
    script = f"""
        mkdir -p ro && mount -t tmpfs tmpfs ro && cp -r {index_dir} ro/index && mount -o remount,ro ro || exit 99
        export WENDA_CORPUS={corpus} WENDA_INDEX_DIR=ro/index
        $wenda index -q 2> index.err; echo $? > index.rc
        $wenda ask --json -k 1 '{QUESTION}' > ask.out 2> ask.err; echo $? > ask.rc
    """
    done = _unshare(script, tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    assert (tmp_path / "index.rc").read_text().strip() == "1"
    error = "wenda: error: cannot write the index folder ro/index: it is on a read-only file system"
    assert error in (tmp_path / "index.err").read_text()
    assert (tmp_path / "ask.rc").read_text().strip() == "0", (tmp_path / "ask.err").read_text()


def test_a_file_deleted_during_the_build_is_not_committed(small_index: Path, tmp_path: Path, embedder) -> None:
    corpus, index_dir, _ = copy_of(small_index, tmp_path)
    (corpus / "new.txt").write_text("新增文件\n\n这一段在建立索引时被删除。\n", encoding="utf-8")
    warnings: list[str] = []
    files, _ = scan_corpus(corpus, warnings.append)  # read…
    (corpus / "new.txt").unlink()  # …then deleted before the generation is committed
    report = build_index(Settings(corpus=corpus, index_dir=index_dir), embedder, False, False, warnings.append, files)
    assert "warning: skipped new.txt: it was deleted while it was being indexed: left out" in warnings
    snapshot = wenda.index.store.open_snapshot(index_dir)
    assert "new.txt" not in snapshot.manifest["files"] and report.generation == "gen-000002"
    assert [row[0] for row in snapshot.documents()] == sorted(p.name for p in corpus.glob("*.txt"))
    assert len(generations(index_dir)) == 2


def test_a_fallback_is_reported_once_per_generation(small_index: Path, tmp_path: Path, embedder: Embedder) -> None:
    corpus, index_dir, _ = copy_of(small_index, tmp_path)
    (corpus / "new.txt").write_text("新增文件\n\n这一段让索引有第二代。\n", encoding="utf-8")
    build(corpus, index_dir, embedder)
    (live_generation(index_dir) / "vectors.faiss").write_bytes(b"damaged")
    retriever = Retriever(Settings(corpus=corpus, index_dir=index_dir), embedder)
    assert "answering from gen-000001, the newest intact generation" in retriever.unreported_problem()
    assert EVIDENCE in retriever.ask(QUESTION, 1).results[0].record.text
    assert retriever.unreported_problem() is None  # said once, not on every question
