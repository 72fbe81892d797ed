"""bot.cli with bad or hostile input: terminal escapes in the corpus, invalid questions, usage errors, exit codes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, copy_of, run_wenda

ESCAPES = "\x1b[2J\x1b]0;HACKED\x07\u202e"


def test_escape_sequences_in_the_corpus_never_reach_the_terminal(small_index: Path, tmp_path: Path) -> None:
    corpus, _, env = copy_of(small_index, tmp_path)
    (corpus / "evil.txt").write_text(
        f"恶意文件{ESCAPES}\n\n桃源镇的水库蓄水量为三千万立方米{ESCAPES}。\n", encoding="utf-8"
    )
    assert run_wenda("index", "-q", env=env).returncode == 0
    question = "桃源镇水库蓄水量是多少"
    for done in (
        run_wenda("ask", "-k", "2", question, env=env),
        run_wenda("ask", "--json", "-k", "2", question, env=env),
        run_wenda("chat", stdin=f"{question}\n".encode(), env={**env, "WENDA_HISTORY": str(tmp_path / "h")}),
    ):
        out = done.stdout
        assert done.returncode == 0 and "三千万立方米".encode() in out
        assert not re.search(rb"[\x00-\x08\x0b-\x1f\x7f]", out) and "\u202e".encode() not in out
        assert b"\\x1b[2J" in out or b"\\u001b[2J" in out  # visible, so the user sees something was there
    answer = json.loads(run_wenda("ask", "--json", "-k", "1", question, env=env).stdout)
    assert ESCAPES in answer["results"][0]["text"]  # the data itself is kept verbatim, only the display escapes


def test_an_invalid_question_exits_1_and_says_why(small_index: Path, tmp_path: Path) -> None:
    _, _, env = copy_of(small_index, tmp_path)
    for question in ("", "问" * 1001):
        done = run_wenda("ask", question, env=env)
        assert done.returncode == 1 and done.stdout == b"" and done.stderr.startswith(b"wenda: error: ")
    not_utf8 = subprocess.run(
        [sys.executable, "-m", "wenda.bot.cli", "ask", b"\xff\xfe\xe6\x96"],
        capture_output=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", **env},
    )
    assert not_utf8.returncode == 1 and not_utf8.stderr == b"wenda: error: the question is not UTF-8 text\n"


def test_usage_errors_exit_2_with_the_subcommand_usage(tmp_path: Path) -> None:
    done = run_wenda("ask", "-k", "0", "问题")
    assert done.returncode == 2 and b"usage: wenda ask" in done.stderr and b"at least 1, not '0'" in done.stderr
    assert b"answer a question" in run_wenda("ask", "--help").stdout  # each command's help says what it does
    threads = run_wenda("ask", "问题", env={"WENDA_QUERY_THREADS": "many"})
    assert threads.returncode == 2 and b"WENDA_QUERY_THREADS" in threads.stderr


def test_corpus_naming_a_file_and_asking_outside_a_project(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("内容\n", encoding="utf-8")
    done = run_wenda("index", "--corpus", str(tmp_path / "a.txt"), "--index-dir", str(tmp_path / "i"))
    assert done.returncode == 1 and b"is a file; WENDA_CORPUS or --corpus takes the folder" in done.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    outside = run_wenda("ask", "问题", cwd=elsewhere, env={"WENDA_CORPUS": "", "WENDA_INDEX_DIR": ""})
    assert outside.returncode == 1 and b"corpus folder corpus does not exist" in outside.stderr
    assert list(elsewhere.iterdir()) == []  # nothing left behind by a failed first run


def test_progress_bar_counts_only_chunks_that_are_embedded(small_index: Path, tmp_path: Path) -> None:
    corpus, _, env = copy_of(small_index, tmp_path)
    (corpus / "new.txt").write_text(
        "新文件\n\n第一段新内容，关于桃源镇。\n\n第二段新内容，关于杏花村。\n", encoding="utf-8"
    )
    done = run_wenda("index", env=env)
    embedded = int(re.search(rb"\((\d+) chunks embedded", done.stdout).group(1))
    assert 0 < embedded < 10 and f"{embedded}/{embedded}".encode() in done.stderr


def test_eval_refuses_a_file_without_questions(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("", encoding="utf-8")
    done = run_wenda("eval", str(tmp_path / "empty.jsonl"), "--index-dir", str(tmp_path / "i"))
    assert done.returncode == 1 and b"holds no questions" in done.stderr and b"Error" not in done.stderr
