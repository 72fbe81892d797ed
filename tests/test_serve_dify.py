"""Dify's external knowledge API (`POST /retrieval`) on the real `wenda serve` process: records with scores
and citations, top_k and score_threshold, metadata conditions, Dify's error codes and malformed requests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from conftest import serving_copy
from wenda.retrieval.filters import holds

KEY = "dify-secret"
AUTH = {"Authorization": f"Bearer {KEY}"}
QUESTION = "运城市委书记是谁？"
QINGFENG = "003_71e5a5211310dfa3.txt"


@pytest.fixture(scope="module")
def server(small_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server on a copy of the small index that wants a key and serves two knowledge ids."""
    root = tmp_path_factory.mktemp("serve-dify")
    with serving_copy(small_index, root, WENDA_API_KEYS=KEY, WENDA_DIFY_KNOWLEDGE_IDS="wenda, 政策库") as url:
        yield url


def retrieve(url: str, query: str = QUESTION, top_k: int = 3, threshold: float = 0.0, **more: object) -> httpx.Response:
    body = {
        "knowledge_id": "wenda",
        "query": query,
        "retrieval_setting": {"top_k": top_k, "score_threshold": threshold},
    }
    return httpx.post(f"{url}/retrieval", json={**body, **more}, headers=AUTH, timeout=60)


def test_records_carry_the_passage_its_score_and_its_citation(server: str) -> None:
    response = retrieve(server, top_k=3)
    assert response.status_code == 200
    records = response.json()["records"]
    native = httpx.post(f"{server}/v1/ask", json={"question": QUESTION, "k": 3}, headers=AUTH).json()
    assert [record["content"] for record in records] == [result["text"] for result in native["results"]]
    assert records[0]["score"] == native["confidence"] > 0.5  # the top passage: the calibrated confidence
    scores = [record["score"] for record in records]
    assert scores == sorted(scores, reverse=True) and all(0 <= score <= 1 for score in scores)
    first = records[0]
    assert first["title"] == "改革风帆劲 奋楫新征程——运城市全面深化改革综述" and "丁小强" in first["content"]
    assert (
        first["metadata"] | {"rank": 1, "source": "004_253b461cd30454f2.txt", "locator": "6", "line": 6}
        == first["metadata"]
    )
    assert first["metadata"]["section"] == "谋篇定向 高位推动" and None not in first["metadata"].values()


def test_top_k_and_score_threshold_are_honoured(server: str) -> None:
    assert len(retrieve(server, top_k=5).json()["records"]) == 5
    assert len(retrieve(server, top_k=1).json()["records"]) == 1
    kept = retrieve(server, top_k=5, threshold=0.5).json()["records"]
    assert len(kept) == 1 and kept[0]["score"] >= 0.5
    # A question the corpus does not answer: every passage is below the answerable line (0.35).
    assert retrieve(server, "火星上有多少个湖泊？", top_k=5, threshold=0.35).json() == {"records": []}
    assert len(retrieve(server, "火星上有多少个湖泊？", top_k=5).json()["records"]) == 5  # threshold off: 0.0


def test_metadata_conditions_filter_the_records(server: str) -> None:
    condition = {
        "logical_operator": "and",
        "conditions": [{"name": "source", "comparison_operator": "is", "value": QINGFENG}],
    }
    records = retrieve(server, "改革", top_k=4, metadata_condition=condition).json()["records"]
    assert len(records) == 4 and {record["metadata"]["source"] for record in records} == {QINGFENG}
    either = {
        "logical_operator": "or",
        "conditions": [
            {"name": "place", "comparison_operator": "contains", "value": "运城"},
            {"name": "source", "comparison_operator": "start with", "value": "003_"},
        ],
    }
    assert len(retrieve(server, "改革", top_k=6, metadata_condition=either).json()["records"]) == 6


def test_each_configured_knowledge_id_answers_and_others_do_not_exist(server: str) -> None:
    body = {"knowledge_id": "政策库", "query": QUESTION, "retrieval_setting": {"top_k": 2, "score_threshold": 0}}
    assert len(httpx.post(f"{server}/retrieval", json=body, headers=AUTH, timeout=60).json()["records"]) == 2
    missing = httpx.post(f"{server}/retrieval", json={**body, "knowledge_id": "AAA-BBB-CCC"}, headers=AUTH)
    assert missing.status_code == 404 and missing.json()["error_code"] == 2001 and "AAA-BBB-CCC" in missing.text


@pytest.mark.parametrize(
    "headers, code",
    [
        ({}, 1001),
        ({"Authorization": "Basic ZGlmeTpzZWNyZXQ="}, 1001),
        ({"Authorization": "Bearer"}, 1001),
        ({"Authorization": "Bearer wrong-key"}, 1002),
    ],
)
def test_auth_errors_in_difys_format(server: str, headers: dict, code: int) -> None:
    body = {"knowledge_id": "wenda", "query": QUESTION, "retrieval_setting": {"top_k": 2, "score_threshold": 0}}
    response = httpx.post(f"{server}/retrieval", json=body, headers=headers)
    assert response.status_code == 403 and response.json()["error_code"] == code
    if code == 1001:
        assert (
            response.json()["error_msg"] == "Invalid Authorization header format. Expected 'Bearer <api-key>' format."
        )
    # Dify checks a new external knowledge API with a bare POST: a wrong key must be refused (403), not the body.
    assert httpx.post(f"{server}/retrieval", headers=headers).status_code == 403


def test_difys_registration_check_passes_with_the_right_key(server: str) -> None:
    probe = httpx.post(f"{server}/retrieval", headers=AUTH)  # no body: what Dify sends when the API is added
    assert probe.status_code not in (403, 404, 502) and probe.json()["error_msg"].startswith("body:")


@pytest.mark.parametrize(
    "body, field",
    [
        ({"knowledge_id": "wenda", "retrieval_setting": {"top_k": 2, "score_threshold": 0}}, "query"),
        ({"knowledge_id": "wenda", "query": QUESTION}, "retrieval_setting"),
        (
            {"knowledge_id": "wenda", "query": QUESTION, "retrieval_setting": {"top_k": 0, "score_threshold": 0}},
            "retrieval_setting.top_k",
        ),
        (
            {"knowledge_id": "wenda", "query": QUESTION, "retrieval_setting": {"top_k": 2, "score_threshold": 1.5}},
            "retrieval_setting.score_threshold",
        ),
        (
            {
                "knowledge_id": "wenda",
                "query": QUESTION,
                "retrieval_setting": {"top_k": 2, "score_threshold": 0},
                "metadata_condition": {"conditions": [{"name": "source", "comparison_operator": "like", "value": "x"}]},
            },
            "metadata_condition.conditions.0.comparison_operator",
        ),
        (
            {"knowledge_id": "wenda", "query": "？？？", "retrieval_setting": {"top_k": 2, "score_threshold": 0}},
            "query",
        ),
        ("{not json", "body"),
    ],
)
def test_malformed_requests_name_the_field(server: str, body: dict | str, field: str) -> None:
    if isinstance(body, str):
        response = httpx.post(f"{server}/retrieval", content=body, headers={**AUTH, "content-type": "application/json"})
    else:
        response = httpx.post(f"{server}/retrieval", json=body, headers=AUTH, timeout=60)
    assert response.status_code == 422
    error = response.json()
    assert error["error_code"] == 422 and error["error_msg"].startswith(f"{field}:"), error


def test_no_key_is_asked_for_without_api_keys(small_index: Path, tmp_path: Path) -> None:
    with serving_copy(small_index, tmp_path) as url:
        assert len(retrieve(url, top_k=2).json()["records"]) == 2  # Dify always sends its key: ignored
        body = {"knowledge_id": "wenda", "query": QUESTION, "retrieval_setting": {"top_k": 1, "score_threshold": 0}}
        assert httpx.post(f"{url}/retrieval", json=body, timeout=60).status_code == 200


@pytest.mark.parametrize(
    "field, operator, value, expected",
    [
        ("运城市", "contains", "运城", True),
        ("运城市", "not contains", "运城", False),
        ("a.txt", "end with", ".txt", True),
        (3, "is", "3", True),
        ("a.txt", "in", ["a.txt", "b.txt"], True),
        ("a.txt", "not in", ["b.txt"], True),
        (None, "empty", None, True),
        ("", "not empty", None, False),
        (3, "≥", 3, True),
        (3, ">", "4", False),
        ("第3页", "<", 4, False),  # not a number: no numeric comparison holds
        ("2023-05-01", "before", "2023-06-01", True),
        ("2023-05-01", "after", datetime(2023, 6, 1).timestamp(), False),
        (None, "before", "2023-06-01", False),
        (None, "≠", 3, True),
    ],
)
def test_comparison_operators(field: object, operator: str, value: object, expected: bool) -> None:
    assert holds(field, operator, value) is expected
