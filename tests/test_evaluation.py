"""`wenda eval` input checks and its table, on real question files and summaries of real retrieval."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import DEV_SET, dev_questions, run_wenda
from wenda.index.config import Settings
from wenda.index.errors import WendaError
from wenda.retrieval.evaluation import COLUMNS, evaluate, format_table, load_questions, summarize
from wenda.retrieval.retriever import Retriever


def write_jsonl(path: Path, *items: dict, text: str = "") -> Path:
    """A question file holding `items`, one JSON object a line, then `text` as is."""
    path.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items) + text, encoding="utf-8")
    return path


def test_load_questions_reads_both_formats_up_to_the_limit(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "q.jsonl",
        {"q": "安阳市区营运出租车中有多少台纯电动车？", "ev": ["856"]},
        {"qid": "2", "question": "运城建成了多少个嵌入式养老机构？", "gold_pids": ["p1"]},
        {"q": "第三个问题？"},
    )
    assert [q.get("q") or q["question"] for q in load_questions(path, 2, with_passages=True)] == [
        "安阳市区营运出租车中有多少台纯电动车？",
        "运城建成了多少个嵌入式养老机构？",
    ]
    assert len(load_questions(path, None, with_passages=True)) == 3


@pytest.mark.parametrize("text", ["", "\n  \n"])
def test_load_questions_refuses_a_file_without_questions(tmp_path: Path, text: str) -> None:
    path = write_jsonl(tmp_path / "empty.jsonl", text=text)
    with pytest.raises(WendaError, match=f"^{path} holds no questions$"):
        load_questions(path, None, with_passages=False)


def test_load_questions_names_the_line_without_a_question(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "q.jsonl", {"q": "第一个问题？"}, {"qid": "2", "ev": ["x"]}, {"q": "第三个？"})
    with pytest.raises(WendaError) as error:
        load_questions(path, None, with_passages=False)
    assert str(error.value) == f'{path}:2: no "q" or "question" field'
    for bad in ({"q": ""}, {"question": 7}, ["q"]):
        with pytest.raises(WendaError, match=r':1: no "q" or "question" field$'):
            load_questions(write_jsonl(tmp_path / "bad.jsonl", bad), None, with_passages=False)


def test_load_questions_with_gold_pids_needs_passages(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "q.jsonl", {"qid": "1", "question": "谁？", "gold_pids": ["p1"]})
    with pytest.raises(WendaError) as error:
        load_questions(path, None, with_passages=False)
    message = str(error.value)
    assert message.startswith(f"{path}:1: ") and "--passages PASSAGES_FILE" in message and "\n" not in message
    assert load_questions(path, None, with_passages=True)[0]["gold_pids"] == ["p1"]


def test_load_questions_reports_bad_json_and_missing_files_with_the_file(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "q.jsonl", {"q": "问题？"}, text="{not json\n")
    with pytest.raises(WendaError, match=f"^{path}:2: not valid JSON"):
        load_questions(path, None, with_passages=False)
    with pytest.raises(WendaError, match="cannot read"):
        load_questions(tmp_path / "missing.jsonl", None, with_passages=False)
    with pytest.raises(WendaError, match="--limit must be at least 1"):
        load_questions(path, 0, with_passages=False)


def test_table_shows_every_header_in_full_above_its_values(tmp_path: Path, retriever: Retriever) -> None:
    path = write_jsonl(
        tmp_path / "q.jsonl",
        {"q": "安阳市区营运出租车中有多少台纯电动车？", "ev": ["856"], "answers": ["856"], "type": "answerable_type"},
        {"q": "2024年巴黎奥运会中国队获得了多少枚金牌？", "type": "unanswerable"},
    )
    summary = summarize(evaluate(retriever, load_questions(path, None, with_passages=False)))
    table, report = format_table({"hybrid": summary}).split("\n\n")
    header, *rows, latency = table.split("\n")
    assert header.split() == ["mode", "type", *COLUMNS]
    assert [row.split()[1:3] for row in rows] == [["all", "2"], ["answerable_type", "1"], ["unanswerable", "1"]]
    for row in rows:  # every value ends where its header ends: right-aligned under the full name
        for column in COLUMNS:
            end = header.index(column) + len(column)
            assert row[end - 1] != " " and (end == len(row) or row[end] == " ")
    assert latency.startswith("hybrid") and "latency p50" in latency
    assert report.startswith("hybrid: answerable questions refused") and "flagged" in report and "ECE" in report


def test_eval_reports_refusals_flags_and_reliability_and_draws_it(seed_settings: Settings, tmp_path: Path) -> None:
    """The CLI on the real dev set: the reliability table's counts add up to the questions, the rates match
    the table, and --plot writes a PNG; a plot without matplotlib's mode is refused before any question."""
    env = {"WENDA_CORPUS": str(seed_settings.corpus), "WENDA_INDEX_DIR": str(seed_settings.index_dir)}
    png = tmp_path / "reliability.png"
    done = run_wenda("eval", str(DEV_SET), "--json", "--plot", str(png), env=env)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    row = json.loads(done.stdout)["hybrid"]["all"]
    questions = dev_questions()
    unanswerable = sum(1 for q in questions if not q.get("ev"))
    assert row["refused_of"][1] == len(questions) - unanswerable and row["flagged_of"] == [unanswerable, unanswerable]
    assert sum(b["count"] for b in row["reliability"]) == len(questions)
    assert row["refused_of"][0] / row["refused_of"][1] == pytest.approx(row["false_abstention"])
    ece = sum(abs(b["mean_confidence"] - b["accuracy"]) * b["count"] for b in row["reliability"]) / len(questions)
    assert ece == pytest.approx(row["ece"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    refused = run_wenda("eval", str(DEV_SET), "--mode", "bm25", "--plot", str(tmp_path / "x.png"), env=env)
    assert refused.returncode == 2 and b"--mode hybrid" in refused.stderr and b"Traceback" not in refused.stderr
