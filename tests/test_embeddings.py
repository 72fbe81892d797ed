"""index.embeddings: the built-in e5 model and the sentence-transformers backend, both for real."""

import time
from pathlib import Path

import numpy as np
import pytest
from wenda.index import store
from wenda.index.config import Settings
from wenda.index.embeddings import BuiltinE5, SentenceTransformerEmbedder, create_embedder
from wenda.index.errors import IndexMismatchError, ModelLoadError
from wenda.retrieval.retriever import Retriever

from tests.conftest import build


def test_builtin_vectors_are_normalized_and_rank_the_right_passage(embedder) -> None:
    passages = embedder.embed_passages(["清丰县机关负责人出庭率达100%。", "运城市建成嵌入式养老机构。"])
    query = embedder.embed_queries(["清丰县机关负责人出庭率是多少？"])[0]
    assert passages.shape == (2, 384) and passages.dtype == np.float32
    assert np.allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-4)
    assert passages[0] @ query > passages[1] @ query


def test_builtin_is_cross_lingual(embedder) -> None:
    passages = embedder.embed_passages(["市区营运出租车1359台，其中纯电动车辆856台。", "全年共执结各类案件3390件。"])
    query = embedder.embed_queries(["How many electric taxis are there?"])[0]
    assert passages[0] @ query > passages[1] @ query


def test_remembered_question_vectors_are_the_bits_of_a_new_pass_and_the_memory_is_bounded() -> None:
    model = BuiltinE5(query_memory=3)
    questions = ["安阳新建了多少所中小学？", "How many schools did Anyang build?", "襄阳茶叶", "运城农田"]
    first = model.embed_queries([*questions, questions[0]])  # a repeat within one call too
    assert first.shape == (5, 384) and np.array_equal(first[0], first[4])
    assert len(model._remembered) == 3  # the oldest forgotten
    again = model.embed_queries(questions)  # the forgotten one embedded anew: the same bits
    assert np.array_equal(again, first[:4])
    assert np.array_equal(BuiltinE5().embed_queries(questions[::-1]), first[:4][::-1])  # alone or in a batch
    assert model.embed_queries([]).shape == (0, 384)
    off = BuiltinE5(query_memory=0)  # WENDA_QUERY_MEMORY=0
    assert np.array_equal(off.embed_queries(questions), first[:4]) and not off._remembered


def test_builtin_refuses_custom_prefixes() -> None:
    with pytest.raises(ModelLoadError, match="built-in model always uses"):
        BuiltinE5(query_prefix="Query: ")


def test_sentence_transformers_backend_indexes_and_answers(minilm, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "en.txt").write_text(
        "Harbour news\nThe new harbour opened in May and handles 40,000 containers a year.\n"
        "Schools\nThe city built three new primary schools for 2,400 pupils.\n",
        encoding="utf-8",
    )
    report = build(corpus, tmp_path / "index", minilm)
    assert report.total_chunks == 2 and minilm.dim == 384
    retriever = Retriever(Settings(corpus=corpus, index_dir=tmp_path / "index"), minilm)
    best = retriever.ask("How many containers does the port handle?", 2).results[0]
    assert (best.record.line, best.record.section) == (2, "Harbour news")


def test_sentence_transformers_prefixes_come_from_model_config(minilm) -> None:
    assert (minilm.query_prefix, minilm.passage_prefix) == ("", "")  # all-MiniLM-L6-v2 declares no prompts
    assert minilm.identity()["name"].startswith("model@")


def test_custom_prefixes_change_the_vectors(minilm_path: Path, minilm) -> None:
    prefixed = SentenceTransformerEmbedder(str(minilm_path), query_prefix="query: ", passage_prefix="passage: ")
    assert prefixed.identity() != minilm.identity()
    assert not np.allclose(prefixed.embed_queries(["harbour"]), minilm.embed_queries(["harbour"]))


def test_index_of_another_model_is_refused(minilm, small_corpus: Path, tmp_path: Path, embedder) -> None:
    build(small_corpus, tmp_path / "index", embedder)
    with pytest.raises(IndexMismatchError, match="rebuild"):
        Retriever(Settings(corpus=small_corpus, index_dir=tmp_path / "index"), minilm)
    with pytest.raises(IndexMismatchError, match="rebuild"):
        build(small_corpus, tmp_path / "index", minilm)
    assert len(store.open_snapshot(tmp_path / "index")) > 0  # refusal left the index alone


@pytest.mark.parametrize(
    "name, message", [("./no/such/model", "not found"), ("org/not-cached-model", "not in the local cache")]
)
def test_missing_model_fails_fast_with_a_clear_message(name: str, message: str, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # tests never touch the network
    started = time.perf_counter()
    with pytest.raises(ModelLoadError, match=message):
        create_embedder(name)
    assert time.perf_counter() - started < 60
