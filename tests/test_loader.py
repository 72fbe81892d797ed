"""index.loader and index.formats.text: encodings, line ends, discovery and files that must be skipped."""

import json
import os
from pathlib import Path

import pytest
from conftest import run_wenda
from wenda.index.formats import SkippedFile
from wenda.index.formats.text import decode
from wenda.index.loader import discover, read_document

TEXT = "第一段。\n第二段：改革。\n"


@pytest.mark.parametrize(
    "data, encoding",
    [
        (TEXT.encode("utf-8"), "utf-8"),
        (b"\xef\xbb\xbf" + TEXT.encode("utf-8"), "utf-8"),
        (TEXT.encode("gb18030"), "gb18030"),
        (TEXT.replace("\n", "\r\n").encode("utf-8"), "utf-8"),
        (TEXT.replace("\n", "\r").encode("gb18030"), "gb18030"),
        (b"\xff\xfe" + TEXT.encode("utf-16-le"), "utf-16-le"),
        (b"\xfe\xff" + TEXT.encode("utf-16-be"), "utf-16-be"),
        (TEXT.encode("utf-16-le"), "utf-16-le"),
        (TEXT.encode("utf-16-be"), "utf-16-be"),
    ],
)
def test_decodes_utf8_bom_gb18030_and_line_ends(data: bytes, encoding: str) -> None:
    assert decode(data) == (TEXT, encoding)


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty"),
        (b" \n\r\n\t", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        (bytes([0x81, 0x30, 0xFF, 0xFE, 0x80]) * 10, "not UTF-8 or GB18030"),
    ],
)
def test_unusable_files_are_skipped_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(SkippedFile, match=reason):
        decode(data)


def test_discover_skips_hidden_and_non_text(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / ".hidden").mkdir()
    for name in ("a.txt", "sub/b.md", ".hidden/c.txt", ".d.txt", "e.pdf", "f.DOCX", "sources.toml", "g.exe"):
        (tmp_path / name).write_text("x", encoding="utf-8")
    found = [p.relative_to(tmp_path).as_posix() for p in discover(tmp_path)]
    assert found == ["a.txt", "e.pdf", "f.DOCX", "sub/b.md"]


def test_document_source_is_relative_posix_path(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.txt").write_bytes(TEXT.encode("gb18030"))
    document = read_document(tmp_path / "sub" / "a.txt", tmp_path)
    assert (document.source, document.reader) == ("sub/a.txt", "text")
    assert len(document.sha256) == 64 and document.extract().encoding == "gb18030"


def test_symlink_loop_huge_and_unreadable_files_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "loop_a.txt").symlink_to(tmp_path / "loop_b.txt")
    (tmp_path / "loop_b.txt").symlink_to(tmp_path / "loop_a.txt")
    with open(tmp_path / "huge.txt", "wb") as handle:
        handle.truncate(100 * 1024 * 1024)  # 100 MB
    with pytest.raises(SkippedFile, match="cannot read"):
        read_document(tmp_path / "loop_a.txt", tmp_path)
    with pytest.raises(SkippedFile, match="too large \\(100 MB"):
        read_document(tmp_path / "huge.txt", tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "secret.txt"
    path.write_text("x", encoding="utf-8")
    path.chmod(0)
    with pytest.raises(SkippedFile, match="cannot read"):
        read_document(path, tmp_path)


def test_zero_width_and_control_characters_are_kept_verbatim() -> None:
    text = "清丰\u200b县\u0007改革。\n"
    assert decode(text.encode("utf-8"))[0] == text


def test_link_to_a_file_outside_the_corpus_is_skipped(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (tmp_path / "private.txt").write_text("秘密。", encoding="utf-8")
    (corpus / "inside.txt").write_text("公开。", encoding="utf-8")
    (corpus / "leak.txt").symlink_to(tmp_path / "private.txt")
    (corpus / "alias.txt").symlink_to(corpus / "inside.txt")
    with pytest.raises(SkippedFile, match="outside the corpus"):
        read_document(corpus / "leak.txt", corpus)
    assert read_document(corpus / "alias.txt", corpus).extract().blocks[0].text == "公开。"
    # a link to a file of the corpus is that file: found once, under the file's own name
    assert [p.name for p in discover(corpus)] == ["inside.txt", "leak.txt"]


def test_links_out_of_the_corpus_are_indexed_only_when_the_owner_opts_in(tmp_path: Path) -> None:
    """`wenda index --follow-symlinks` (or WENDA_FOLLOW_SYMLINKS=1); without it `wenda sources` names the link."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (tmp_path / "shared.txt").write_text("共享文件夹里的年度报告：全年完成投资120亿元。\n", encoding="utf-8")
    (corpus / "inside.txt").write_text("本地报告：全年新增就业岗位3000个。\n", encoding="utf-8")
    (corpus / "report.txt").symlink_to(tmp_path / "shared.txt")
    env = {"WENDA_CORPUS": str(corpus), "WENDA_INDEX_DIR": str(tmp_path / "index")}

    def linked() -> dict:  # the link's entry in the build account
        entries = json.loads(run_wenda("sources", "--json", env=env).stdout)
        return next(entry for entry in entries if entry["source"] == "report.txt")

    assert run_wenda("index", "-q", env=env).returncode == 0
    entry = linked()
    assert entry["status"] == "skipped" and "--follow-symlinks" in entry["reason"]
    assert run_wenda("index", "-q", "--follow-symlinks", env=env).returncode == 0
    assert linked()["status"] == "indexed"
    following = {**env, "WENDA_FOLLOW_SYMLINKS": "1"}
    asked = json.loads(run_wenda("ask", "--json", "全年完成投资多少？", env=following).stdout)
    assert "120亿元" in asked["results"][0]["text"]
