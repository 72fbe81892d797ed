"""retrieval.calibration: each index measures what right and best-wrong evidence look like in it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from conftest import build, copy_of, run_wenda
from wenda.index.config import Settings
from wenda.index.embeddings import Embedder
from wenda.index.store import live_generation
from wenda.retrieval import calibration
from wenda.retrieval.calibration import CALIBRATION_FILE, Calibration
from wenda.retrieval.retriever import Retriever

QUESTION = "清丰县技术合同交易额完成多少？"


def test_questions_are_made_from_sampled_passages_with_a_key_span_asked_for(small_index: Path, tmp_path: Path) -> None:
    corpus, index_dir, _ = copy_of(small_index, tmp_path)
    retriever = Retriever(Settings(corpus=corpus, index_dir=index_dir))
    records = calibration.sample_records(retriever)
    assert len(records) == calibration.SAMPLE == len({(r.source, r.paragraph, r.start) for r in records})
    made = [g for n, r in enumerate(records) if (g := calibration.question_from(r, n))]
    asked = [g for g in made if g.question.endswith("？")]
    assert len(made) >= calibration.MIN_QUESTIONS and asked
    for generated in asked:  # the span is gone, its question word is there, the rest comes from the passage
        word = next(w for w in calibration.ASK_WORD.values() if w in generated.question)
        stem = generated.question.split(word)[0]
        plain = calibration.CLAUSE.sub("", generated.sentence)  # two short clauses are joined without their comma
        assert stem and stem in plain and generated.sentence in generated.record.text
    assert calibration.sample_records(retriever) == records  # a fixed sample: the same index, the same levels


def test_levels_are_measured_on_the_index_and_read_monotonically(small_index: Path, tmp_path: Path) -> None:
    corpus, index_dir, _ = copy_of(small_index, tmp_path)
    (index_dir / CALIBRATION_FILE).unlink()
    measured = calibration.measure(Retriever(Settings(corpus=corpus, index_dir=index_dir)))
    assert measured.method == "measured" and measured.generation == live_generation(index_dir).name
    assert measured.questions >= calibration.MIN_QUESTIONS
    level = measured.dense
    assert level != calibration.DEFAULT_LEVELS["zh"] and all(0.5 < level[k][0] < 1 for k in ("right", "wrong"))
    wrong, right = level["wrong"][0], level["right"][0]
    assert measured.between(wrong, "zh") == 0.0
    default_en = calibration.DEFAULT_LEVELS["en"]["wrong"][0]
    assert measured.between(default_en, "en") == 0.0  # English: the training corpora's levels
    values = [measured.between(v, "zh") for v in np.linspace(0.7, 1, 20)]
    assert all(later > earlier for earlier, later in zip(values, values[1:], strict=False))
    assert -1.0 <= measured.between(right, "zh") <= 1.0


def test_an_index_without_calibration_is_measured_when_opened_without_embedding(
    small_index: Path, tmp_path: Path
) -> None:
    corpus, index_dir, env = copy_of(small_index, tmp_path)
    (index_dir / CALIBRATION_FILE).unlink()  # as an index built before calibration existed
    vectors = live_generation(index_dir) / "vectors.faiss"
    before = vectors.read_bytes()
    done = run_wenda("index", env=env)
    out = done.stdout.decode()
    assert done.returncode == 0 and "nothing embedded" in out and "confidence calibrated for this index" in out, out
    assert vectors.read_bytes() == before
    stored = json.loads((index_dir / CALIBRATION_FILE).read_text(encoding="utf-8"))
    assert stored["generation"] == live_generation(index_dir).name and stored["method"] == "measured"
    asked = run_wenda("ask", "--json", QUESTION, env=env)
    assert asked.returncode == 0 and json.loads(asked.stdout)["calibrated"] is True and asked.stderr == b""


def test_an_unwritable_calibration_is_used_from_memory_and_flagged(small_index: Path, tmp_path: Path) -> None:
    corpus, index_dir, env = copy_of(small_index, tmp_path)
    (index_dir / CALIBRATION_FILE).unlink()
    (index_dir / CALIBRATION_FILE).mkdir()  # cannot be written (root ignores permissions, not this)
    asked = run_wenda("ask", "--json", QUESTION, env=env)
    answer = json.loads(asked.stdout)
    assert asked.returncode == 0 and answer["results"] and answer["calibrated"] is False
    assert b"in memory: the index folder is not writable" in asked.stderr and b"Traceback" not in asked.stderr


def test_a_calibration_of_another_generation_or_a_damaged_one_is_measured_again(
    small_index: Path, tmp_path: Path
) -> None:
    corpus, index_dir, _ = copy_of(small_index, tmp_path)
    target = index_dir / CALIBRATION_FILE
    good = json.loads(target.read_text(encoding="utf-8"))
    broken = json.loads(json.dumps(good))
    broken["dense"]["right"] = [float("nan"), 0.1]
    for content in (
        json.dumps({**good, "generation": "gen-999999"}),
        json.dumps(broken),
        json.dumps({**good, "dense": "x"}),
        "\xff\x00 not json",
    ):
        target.write_text(content, encoding="utf-8")
        assert calibration.load(index_dir, live_generation(index_dir).name) is None
        retriever = Retriever(Settings(corpus=corpus, index_dir=index_dir))
        assert retriever.calibration.calibrated and retriever.calibration.dense == good["dense"]
        assert json.loads(target.read_text(encoding="utf-8")) == good  # written again, the same


def test_a_corpus_too_small_to_question_gets_the_default_levels_and_says_so(tmp_path: Path, embedder: Embedder) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "note.txt").write_text("会议纪要\n本周五下午三点在二楼会议室开会，请准时参加。\n", encoding="utf-8")
    index_dir = tmp_path / "index"
    build(corpus, index_dir, embedder)
    env = {"WENDA_CORPUS": str(corpus), "WENDA_INDEX_DIR": str(index_dir)}
    done = run_wenda("index", env=env)
    assert done.returncode == 0 and "not calibrated for this index (only" in done.stdout.decode()
    assert calibration.load(index_dir, live_generation(index_dir).name).method == "default"
    assert Calibration().dense == calibration.DEFAULT_LEVELS["zh"]
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"q": "周五几点开会？", "ev": ["三点"]}, ensure_ascii=False) + "\n", "utf-8")
    evaluated = run_wenda("eval", str(questions), env=env)
    assert evaluated.returncode == 0 and b"not calibrated for this index (only" in evaluated.stderr
    asked = run_wenda("ask", "--json", "周五几点开会？", env=env)
    assert json.loads(asked.stdout)["calibrated"] is False and json.loads(asked.stdout)["results"]
