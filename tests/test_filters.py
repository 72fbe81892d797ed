"""retrieval.filters: a metadata filter is applied inside the search, so `k` matching passages come back when
that many exist, however low they would rank unfiltered; on the real seed index and through every route of the
real server (native `filter`, OpenAI's extra body field, Dify's `metadata_condition`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import serve_env, serving
from wenda.index.config import Settings
from wenda.retrieval import filters
from wenda.retrieval.retriever import Retriever

ANYANG_Q = "安阳2022年老旧小区改造项目的开工率是多少？"
QINGFENG = "003_71e5a5211310dfa3.txt"  # the 清丰县 article: it says nothing about 安阳's old housing estates
ONLY_QINGFENG = {"conditions": [{"name": "source", "comparison_operator": "is", "value": QINGFENG}]}


def test_a_filter_inside_the_search_returns_k_matches_that_rank_low(retriever: Retriever) -> None:
    unfiltered = retriever.ask(ANYANG_Q, 5)
    assert unfiltered.results and all(r.record.source != QINGFENG for r in unfiltered.results)  # after: none
    where = filters.predicate("and", [("source", "is", QINGFENG)])
    filtered = retriever.ask(ANYANG_Q, 5, where=where)
    assert len(filtered.results) == 5 and {r.record.source for r in filtered.results} == {QINGFENG}
    assert filtered.confidence < 0.6 and not filtered.answerable  # judged on what it may return: no answer
    nothing = retriever.ask(ANYANG_Q, 5, where=filters.predicate("and", [("source", "is", "nowhere.txt")]))
    assert nothing.results == [] and not nothing.answerable and nothing.error is None


def test_operators_and_fields(retriever: Retriever) -> None:
    either = filters.predicate("or", [("source", "start with", "003_"), (["title", "place"], "contains", "襄阳")])
    allowed = filters.allowed_ids(retriever.snapshot, either)
    kept = {record.source for record in retriever.snapshot.records(allowed.tolist()).values()}
    places = {fields["source"]: fields["place"] or "" for _, fields in filters.chunk_metadata(retriever.snapshot)}
    assert QINGFENG in kept and any("襄阳" in places[s] for s in kept)  # both rules let files in
    assert all(s == QINGFENG or "襄阳" in places[s] for s in kept)  # and nothing else
    for r in retriever.ask("襄阳的改革取得了哪些成效？", 10, where=either).results:
        assert r.record.source in kept
    assert filters.holds("2024-03-01", "after", "2023-12-31") and not filters.holds(None, "=", 1)
    assert filters.holds(3, "≤", 3) and filters.holds("", "empty", None) and filters.holds("a", "not in", ["b"])


@pytest.fixture(scope="module")
def server(seed_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serving(serve_env(seed_settings, tmp_path_factory.mktemp("filters"))) as url:
        yield url


def test_every_route_filters_inside_the_search(server: str, tmp_path: Path) -> None:
    native = httpx.post(f"{server}/v1/ask", json={"question": ANYANG_Q, "k": 4, "filter": ONLY_QINGFENG}).json()
    assert [r["citation"]["source"] for r in native["results"]] == [QINGFENG] * 4
    chat = {"messages": [{"role": "user", "content": ANYANG_Q}], "filter": ONLY_QINGFENG}
    reply = httpx.post(f"{server}/v1/chat/completions", json=chat).json()
    assert reply["citations"] and {c["citation"]["source"] for c in reply["citations"]} == {QINGFENG}
    dify = {
        "knowledge_id": "wenda",
        "query": ANYANG_Q,
        "retrieval_setting": {"top_k": 3, "score_threshold": 0.0},
        "metadata_condition": ONLY_QINGFENG,
    }
    records = httpx.post(f"{server}/retrieval", json=dify).json()["records"]
    assert [r["metadata"]["source"] for r in records] == [QINGFENG] * 3
    wrong = {**ONLY_QINGFENG, "conditions": [{"name": "source", "comparison_operator": "like", "value": "x"}]}
    refused = httpx.post(f"{server}/v1/ask", json={"question": ANYANG_Q, "filter": wrong})
    assert refused.status_code == 422 and "comparison_operator" in refused.json()["error"]["field"]
