"""bot.cli: the `wenda` command's text output, JSON contract, batch mode and error messages."""

import fcntl
import json
import os
import re
import subprocess
import sys
import threading
import time
import unicodedata
from pathlib import Path

from wenda.index.config import Settings

from tests.conftest import RAW_CORPUS, ROOT, SEED_CORPUS, run_wenda

QUESTION = "安阳市区营运出租车中有多少台纯电动车?"


def index_env(settings: Settings) -> dict:
    return {"WENDA_CORPUS": str(settings.corpus), "WENDA_INDEX_DIR": str(settings.index_dir)}


def check_contract(answer: dict) -> None:
    """The documented JSON fields, with `text` found verbatim (after NFKC) at the cited line."""
    assert set(answer) >= {"query", "results"}
    for rank, result in enumerate(answer["results"], start=1):
        assert result["rank"] == rank and isinstance(result["score"], float)
        citation = result["citation"]
        assert {"source", "line", "paragraph", "title", "section"} <= set(citation)
        lines = (SEED_CORPUS / citation["source"]).read_text(encoding="utf-8").split("\n")
        line = unicodedata.normalize("NFKC", lines[citation["line"] - 1])
        assert unicodedata.normalize("NFKC", result["text"]) in line


def test_ask_json_contract(seed_settings: Settings) -> None:
    done = run_wenda("ask", "--json", "-k", "3", QUESTION, env=index_env(seed_settings))
    assert done.returncode == 0, done.stderr.decode()
    answer = json.loads(done.stdout)
    assert answer["query"] == QUESTION and len(answer["results"]) == 3
    check_contract(answer)
    assert "纯电动车辆856台" in answer["results"][0]["text"]


def test_ask_prints_rank_score_passage_and_citation(seed_settings: Settings) -> None:
    done = run_wenda("ask", "-k", "2", QUESTION, env=index_env(seed_settings))
    out = done.stdout.decode()
    assert done.returncode == 0 and out.startswith("答案: ") and "856台" in out.split("\n")[0]
    assert re.search(r"^\[1\] -?\d+\.\d{3}  《", out, re.M)
    assert "《6.以人为核心的新型城镇化战略》 · 绿色交通改变生活 · 000_e771e9061456cf36.txt:55" in out
    assert "[2]" in out and "[3]" not in out


def test_batch_mode_writes_one_json_line_per_input_line(seed_settings: Settings) -> None:
    lines = [QUESTION.encode(), b"", b"   ", b"\xff\xfe broken", "運城市嵌入式養老機構".encode(), b"x" * 5000]
    done = run_wenda("ask", "--json", "-k", "2", stdin=b"\n".join(lines) + b"\n", env=index_env(seed_settings))
    assert done.returncode == 1, "a batch with unanswerable lines exits 1 after answering every line"
    answers = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert len(answers) == len(lines)
    assert [bool(a.get("error")) for a in answers] == [False, True, True, True, False, True]
    for answer in answers:
        check_contract(answer)
        assert (answer["results"] == []) == bool(answer.get("error"))


def test_batch_mode_answers_a_line_before_the_next_is_written(seed_settings: Settings) -> None:
    """Lines waiting together share a model pass, but a program that writes one question and waits for its
    answer (a co-process) gets it without writing more; answers are those of one question at a time."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **index_env(seed_settings)}
    command = [sys.executable, "-m", "wenda.bot.cli", "ask", "--json", "-k", "1"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    watchdog = threading.Timer(120, process.kill)  # an answer that waits for more input ends as an empty line
    watchdog.start()
    try:
        answers = []
        for question in (QUESTION, "How many pure electric taxis are there in Anyang's urban area?"):
            process.stdin.write(question.encode() + b"\n")
            process.stdin.flush()
            answers.append(json.loads(process.stdout.readline()))  # blocks until answered: no second line yet
        process.stdin.close()
        assert process.wait(timeout=60) == 0
    finally:
        watchdog.cancel()
        process.kill()
    together = run_wenda("ask", "--json", "-k", "1", stdin=f"{QUESTION}\n".encode() * 3, env=index_env(seed_settings))
    for line in together.stdout.decode().splitlines():
        answer = json.loads(line)
        assert answer["confidence"] == answers[0]["confidence"]
        assert answer["results"][0]["text"] == answers[0]["results"][0]["text"]
    assert "856台" in answers[0]["results"][0]["text"] and "856台" in answers[1]["results"][0]["text"]


def test_ask_without_index_builds_one_first(tmp_path: Path, small_corpus: Path) -> None:
    env = {"WENDA_CORPUS": str(small_corpus), "WENDA_INDEX_DIR": str(tmp_path / "fresh")}
    done = run_wenda("ask", "--json", "-k", "1", "清丰县机关负责人出庭率", env=env)
    assert done.returncode == 0
    assert "building it now" in done.stderr.decode()
    assert json.loads(done.stdout)["results"][0]["citation"]["source"] == "003_71e5a5211310dfa3.txt"
    second = run_wenda("index", env=env)
    assert "nothing embedded" in second.stdout.decode()


def test_errors_are_one_clear_line_without_traceback(tmp_path: Path) -> None:
    done = run_wenda("index", "--corpus", str(tmp_path / "missing"), "--index-dir", str(tmp_path / "i"))
    assert done.returncode == 1
    assert done.stderr.decode().startswith("wenda: error: corpus folder") and "Traceback" not in done.stderr.decode()
    done = run_wenda("ask", "--index-dir", str(tmp_path / "i"), "--model", "./no/model", "hi")
    assert done.returncode == 1 and "not found" in done.stderr.decode() and "Traceback" not in done.stderr.decode()


def test_chat_answers_until_end_of_input(seed_settings: Settings, tmp_path: Path) -> None:
    env = {**index_env(seed_settings), "WENDA_HISTORY": str(tmp_path / "history")}
    done = run_wenda("chat", stdin=f"{QUESTION}\n\n".encode(), env=env)
    out = done.stdout.decode()
    assert done.returncode == 0 and "纯电动车辆856台" in out and "Ctrl-D" in out


def test_json_carries_answer_and_answerable(seed_settings: Settings) -> None:
    answer = json.loads(run_wenda("ask", "--json", QUESTION, env=index_env(seed_settings)).stdout)
    assert answer["answerable"] is True and "856" in answer["answer"]["text"]
    assert {"source", "line", "paragraph", "title", "section", "start", "end"} <= set(answer["answer"]["citation"])
    refused = json.loads(run_wenda("ask", "--json", "红烧肉怎么做才好吃？", env=index_env(seed_settings)).stdout)
    assert refused["answerable"] is False and refused["answer"] is None and refused["results"]


def test_eval_on_passages_with_distractors(tmp_path: Path) -> None:
    passages = tmp_path / "passages.jsonl"
    rows = [
        {"pid": "p1", "title": "长江", "text": "长江全长6300公里，是中国第一长河。"},
        {"pid": "p2", "title": "黄河", "text": "黄河全长5464公里，被称为中华民族的母亲河。"},
    ]
    passages.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    distractors = tmp_path / "distractors.jsonl"
    distractors.write_text(
        "\n".join(json.dumps({"pid": f"d{i}", "title": "新闻", "text": f"今天的第{i}条新闻。"}) for i in range(5)),
        encoding="utf-8",
    )
    questions = tmp_path / "questions.jsonl"
    questions.write_text(json.dumps({"qid": "q1", "question": "黄河有多长？", "gold_pids": ["p2"]}), encoding="utf-8")
    done = run_wenda(
        "eval",
        str(questions),
        "--passages",
        str(passages),
        "--distractors",
        str(distractors),
        "--n-distractors",
        "3",
        "--mode",
        "all",
        "--json",
        "-q",
        "--cache",
        str(tmp_path / "cache.sqlite"),
    )
    assert done.returncode == 0, done.stderr.decode()
    summary = json.loads(done.stdout)
    assert set(summary) == {"hybrid", "dense", "bm25"}
    assert summary["hybrid"]["all"]["recall@1"] == 1.0 and summary["hybrid"]["all"]["questions"] == 1
    assert "5 added" in done.stderr.decode()  # 2 passages + the first 3 distractors


def test_second_index_run_on_the_same_folder_is_refused(tmp_path: Path, small_corpus: Path) -> None:
    index_dir = tmp_path / "index"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "wenda.bot.cli", "index", "-q", "--corpus", str(small_corpus), "--index-dir"]
    first = subprocess.Popen([*command, str(index_dir)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:  # wait until the first run holds the lock
        assert time.monotonic() < deadline and first.poll() is None
        if (index_dir / ".lock").exists():
            with open(index_dir / ".lock") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    fcntl.flock(handle, fcntl.LOCK_UN)
                except BlockingIOError:
                    break
        time.sleep(0.05)
    second = run_wenda("index", "--corpus", str(small_corpus), "--index-dir", str(index_dir))
    assert second.returncode == 1 and "another `wenda index` is writing" in second.stderr.decode()
    assert first.wait(timeout=120) == 0
    assert (
        "nothing embedded"
        in run_wenda("index", "--corpus", str(small_corpus), "--index-dir", str(index_dir)).stdout.decode()
    )


def test_line_separators_in_corpus_text_are_escaped_in_json_lines(tmp_path: Path) -> None:
    """U+2028 inside a paragraph: valid JSON raw, but JSON Lines readers that split on it would break the line."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    text = "清河市有轨电车\n\n清河市首条有轨电车线路全长18.6公里\u2028设站21座，西起火车站。\n"
    (corpus / "tram.txt").write_text(text, encoding="utf-8")
    where = ["--corpus", str(corpus), "--index-dir", str(tmp_path / "index")]
    done = run_wenda("ask", "--json", *where, stdin="清河市有轨电车线路有多长\n".encode())
    assert "\u2028".encode() not in done.stdout and b"\\u2028" in done.stdout
    lines = done.stdout.decode("utf-8").splitlines()  # splitlines() splits on U+2028 too
    assert len(lines) == 1 and "18.6公里\u2028设站" in json.loads(lines[0])["results"][0]["text"]


def test_every_outcome_of_json_is_a_json_object_on_stdout(tmp_path: Path) -> None:
    """No usable generation (CURRENT names one that is gone): the error as JSON, not only a line on stderr."""
    index_dir = tmp_path / "index"
    index_dir.mkdir()
    (index_dir / "CURRENT").write_text("gen-000009\n")
    env = {"WENDA_CORPUS": str(RAW_CORPUS), "WENDA_INDEX_DIR": str(index_dir)}
    done = run_wenda("ask", "--json", "安阳的老旧小区改造", env=env)
    reply = json.loads(done.stdout)
    assert done.returncode == 1 and reply["type"] == "index_unavailable" and "gen-000009" in reply["error"]
    assert "wenda index" in reply["error"] and "gen-000009" in done.stderr.decode()
    done = run_wenda("sources", "--json", env={**env, "WENDA_CORPUS": str(tmp_path / "nowhere")})
    assert done.returncode != 0 and json.loads(done.stdout)["error"]
