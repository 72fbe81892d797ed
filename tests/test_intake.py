"""index.intake and `wenda add`: untrusted documents are named safely, checked before they are saved, and a
refused one leaves corpus and index as they were; a web page is fetched (from a real local server) with its URL."""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import copy_of, run_wenda
from wenda.index.errors import WendaError
from wenda.index.formats.html import saved_from
from wenda.index.intake import admit, fetch, fresh_path, remove, safe_name

DOCUMENTS = Path(__file__).parent / "fixtures" / "documents"


@pytest.mark.parametrize(
    "name, safe",
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\boot.ini", "boot.ini"),
        (".bashrc", "bashrc"),
        ("/abs/path/报告.pdf", "报告.pdf"),
        ("a\x00b\x1b[2J.txt", "a_b_[2J.txt"),
        ("evil\u202etxt.exe", "evil_txt.exe"),
        ("...", "document"),
        ("", "document"),
        ("名" * 200 + ".pdf", "名" * 58 + ".pdf"),
    ],
)
def test_names_stay_inside_and_in_sight(name: str, safe: str) -> None:
    assert safe_name(name) == safe


def test_a_new_file_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / "报告.pdf").write_bytes(b"x")
    (tmp_path / "报告 (2).pdf").write_bytes(b"y")
    assert fresh_path(tmp_path, "报告.pdf").name == "报告 (3).pdf"
    assert fresh_path(tmp_path, "新.pdf").name == "新.pdf"


def test_admit_saves_a_readable_document_and_refuses_the_rest(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    known: dict[str, str] = {}
    report = (DOCUMENTS / "report.pdf").read_bytes()
    admitted = admit(corpus, report, "../report.pdf", known)
    assert admitted.source == "report.pdf" and admitted.title == "清河市二〇二四年政府工作报告"
    assert (corpus / "report.pdf").read_bytes() == report
    for name, reason in [
        ("report.pdf", "already in the corpus as report.pdf"),
        ("bomb.docx", "decompression bomb"),
        ("encrypted.pdf", "encrypted"),
        ("truncated.pdf", "truncated"),
    ]:
        with pytest.raises(WendaError, match=reason):
            admit(corpus, (DOCUMENTS / name).read_bytes(), name, known)
    with pytest.raises(WendaError, match="empty"):
        admit(corpus, b" \n", "blank.txt", known)
    assert sorted(p.name for p in corpus.iterdir()) == ["report.pdf"]  # nothing else written, no part files
    scanned = (DOCUMENTS / "scanned.pdf").read_bytes()
    scan = admit(corpus, scanned, "scanned.pdf", known, ocr_cache=tmp_path / "ocr.sqlite")
    assert scan.source == "scanned.pdf" and scan.blocks > 0  # read by OCR, as the build will read it


def test_remove_deletes_only_corpus_documents(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (tmp_path / "outside.txt").write_text("x", encoding="utf-8")
    (corpus / "a.txt").write_text("x", encoding="utf-8")
    (corpus / "link.txt").symlink_to(corpus / "a.txt")
    for bad in ("../outside.txt", ".hidden", "missing.txt"):
        with pytest.raises(WendaError):
            remove(corpus, bad)
    remove(corpus, "link.txt")
    assert (corpus / "a.txt").exists() and not (corpus / "link.txt").exists()


@pytest.fixture
def web(tmp_path: Path) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 serving the fixture documents."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(DOCUMENTS))
    handler.log_message = lambda *args: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_fetched_page_keeps_its_url(tmp_path: Path, web: str) -> None:
    data, name, url = fetch(f"{web}/article.html")
    admitted = admit(tmp_path, data, name, {}, url=url)
    assert saved_from((tmp_path / admitted.source).read_bytes()) == f"{web}/article.html"
    with pytest.raises(WendaError, match="cannot fetch"):
        fetch(f"{web}/missing.html")
    with pytest.raises(WendaError, match="only http"):
        fetch("file:///etc/passwd")


def test_wenda_add_indexes_files_and_pages_and_refuses_bad_ones(small_index: Path, tmp_path: Path, web: str) -> None:
    corpus, _, env = copy_of(small_index, tmp_path)
    before = sorted(p.name for p in corpus.iterdir())
    done = run_wenda(
        "add", "-q", str(DOCUMENTS / "report.pdf"), f"{web}/article.html", str(DOCUMENTS / "bomb.docx"), env=env
    )
    out, err = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 1 and "bomb" in err and "Traceback" not in err
    assert "added report.pdf: 《清河市二〇二四年政府工作报告》" in out and "added article.html" in out
    assert sorted(p.name for p in corpus.iterdir()) == sorted([*before, "article.html", "report.pdf"])
    asked = run_wenda("ask", "--json", "-k", "3", "清河新区的地下综合管廊一共有多长？", env=env)
    top = json.loads(asked.stdout)["results"][0]["citation"]
    assert (top["source"], top["page"], top["locator"].startswith("p2:")) == ("report.pdf", 2, True)
    asked = run_wenda("ask", "--json", "-k", "3", "清河第一条有轨电车线路有多长？", env=env)
    top = json.loads(asked.stdout)["results"][0]["citation"]
    assert top["source"] == "article.html" and top["url"] == f"{web}/article.html"
    # the same again: a duplicate, refused, nothing written; the web page too (its saved copy has its address)
    again = run_wenda("add", "-q", str(DOCUMENTS / "report.pdf"), f"{web}/article.html", env=env)
    assert again.returncode == 1 and "already in the corpus as report.pdf" in again.stderr.decode()
    assert "already in the corpus as article.html" in again.stderr.decode()
    assert sorted(p.name for p in corpus.iterdir()) == sorted([*before, "article.html", "report.pdf"])
    shutil.rmtree(tmp_path / "copy")


def test_wenda_add_folder_never_follows_links_out_of_it(small_index: Path, tmp_path: Path) -> None:
    """`ln -s /etc/passwd drop/x.txt; wenda add drop`, the same two folders deep, and a hard link to a file
    outside: refused and named; what is really in the folder is added."""
    corpus, _, env = copy_of(small_index, tmp_path)
    outside = tmp_path / "secret.txt"
    outside.write_text("机密：服务器口令是 hunter2，不得外传。\n" * 3, encoding="utf-8")
    drop = tmp_path / "drop"
    (drop / "sub").mkdir(parents=True)
    shutil.copy(DOCUMENTS / "report.pdf", drop / "report.pdf")
    (drop / "x.txt").symlink_to("/etc/passwd")
    (drop / "sub" / "deep.txt").symlink_to(outside)
    os.link(outside, drop / "hard.txt")
    done = run_wenda("add", "-q", str(drop), env=env)
    err = done.stderr.decode()
    assert done.returncode == 1 and "Traceback" not in err
    assert f"refused {drop / 'x.txt'}: it is a link to a file outside the folder" in err
    assert f"refused {drop / 'sub' / 'deep.txt'}: it is a link to a file outside the folder" in err
    assert f"refused {drop / 'hard.txt'}: it is a hard link" in err
    assert "added report.pdf" in done.stdout.decode()
    texts = "".join(path.read_bytes().decode("latin-1") for path in corpus.rglob("*") if path.is_file())
    assert "root:" not in texts and "hunter2" not in texts
    asked = json.loads(run_wenda("ask", "--json", "服务器口令是什么？", env=env).stdout)
    assert all("hunter2" not in result["text"] for result in asked["results"])


@pytest.fixture
def dripping() -> Iterator[str]:
    """A server that answers with headers, then one byte of body a second, for a minute."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100000\r\n\r\n")
            for _ in range(60):
                if stop.wait(1):
                    return
                try:
                    conn.sendall(b"<")
                except OSError:
                    return

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/page.html"
    finally:
        stop.set()
        listener.close()


def test_a_server_that_drips_is_given_up_on_at_the_deadline(dripping: str, monkeypatch) -> None:
    from wenda.index import intake

    monkeypatch.setattr(intake, "FETCH_DEADLINE", 3.0)
    started = time.monotonic()
    with pytest.raises(WendaError, match=r"did not arrive within 3 s .*WENDA_FETCH_DEADLINE"):
        fetch(dripping)
    assert time.monotonic() - started < 6
