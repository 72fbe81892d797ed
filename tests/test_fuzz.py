"""A second adversarial pass (issue 29), by Hypothesis: random JSON and random bytes as request bodies to every
route of the real server, random paths and query strings, and random file names for uploads. Whatever comes in,
the server answers in its own error shape (never a 500, never a non-JSON body) and keeps serving; an upload's
name never leaves the corpus folder or hides in it."""

from __future__ import annotations

import json
import os
import unicodedata
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import serve_env, serving
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wenda.index.config import Settings
from wenda.index.intake import MAX_NAME_BYTES, safe_name, write_new

ROUTES = ("/v1/ask", "/v1/chat/completions", "/retrieval", "/v1/feedback")
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
# bodies shaped like the routes' own, with fields of any type: what reaches the validators and the retriever
SHAPED = st.fixed_dictionaries(
    {},
    optional={
        "question": JSON,
        "k": JSON,
        "history": JSON,
        "messages": st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "system"]), "content": JSON})),
        "stream": JSON,
        "knowledge_id": st.sampled_from(["wenda", "other"]) | JSON,
        "query": JSON,
        "retrieval_setting": st.fixed_dictionaries({"top_k": JSON, "score_threshold": JSON}) | JSON,
        "metadata_condition": JSON,
        "vote": JSON,
        "sources": JSON,
    },
)
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def server(seed_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = serve_env(seed_settings, tmp_path_factory.mktemp("fuzz"), WENDA_SERVE_RATE_LIMIT="100000")
    with serving(env) as url:
        yield url


def answered_in_shape(reply: httpx.Response) -> None:
    assert reply.status_code < 500 or reply.status_code == 503, reply.text
    assert reply.headers["content-type"].startswith("application/json"), reply.text
    body = reply.json()
    if reply.status_code >= 400:
        assert body.get("error") or body.get("error_code"), body


@FUZZ
@given(route=st.sampled_from(ROUTES), body=SHAPED | JSON)
def test_any_json_body_gets_an_answer_or_an_error_in_shape(server: str, route: str, body: object) -> None:
    answered_in_shape(httpx.post(f"{server}{route}", json=body, timeout=60))


NASTY = [
    b'{"question": "x", "k": Infinity}',
    b'{"question": NaN}',
    b'{"question": "\\ud800"}',
    b'{"question": "x", "question": 1}',
    b"[" * 5000 + b"]" * 5000,
    b'{"retrieval_setting": {"top_k": 1e309, "score_threshold": -0.0}, "knowledge_id": "wenda", "query": "x"}',
    '{"question": "安阳"}'.encode("gb18030"),
]


@FUZZ
@given(route=st.sampled_from(ROUTES), body=st.binary(max_size=300) | st.sampled_from(NASTY))
def test_any_bytes_as_a_body_get_an_error_in_shape(server: str, route: str, body: bytes) -> None:
    answered_in_shape(httpx.post(f"{server}{route}", content=body, headers={"content-type": "application/json"}))


@FUZZ
@given(
    source=st.text(max_size=40) | st.sampled_from(["../../etc/passwd", "/etc/passwd", "..%2f..%2fetc/passwd"]),
    line=st.text(max_size=6),
    page=st.text(max_size=4),
)
def test_any_passage_request_gets_an_answer_or_an_error_in_shape(
    server: str, source: str, line: str, page: str
) -> None:
    path = urllib.parse.quote(source, safe="/.")  # "../" stays as it is: a traversal try, as an attacker sends it
    reply = httpx.get(f"{server}/v1/passages/{path}", params={"line": line, "page": page})
    if reply.status_code == 404 and "error" not in reply.text:  # an empty path segment: no such route
        return
    answered_in_shape(reply)
    assert "root:x:0:0" not in reply.text  # never a file outside the corpus, whatever the path


@FUZZ
@given(name=st.text(max_size=300))
def test_any_upload_name_stays_inside_the_folder_and_in_sight(tmp_path: Path, name: str) -> None:
    safe = safe_name(name)
    assert safe and "/" not in safe and "\\" not in safe and not safe.startswith(".")
    assert len(safe.encode()) <= MAX_NAME_BYTES + 11  # the stem is cut; a suffix of up to 10 characters stays
    hidden = (
        "\u200b" <= char <= "\u200f" or "\u2028" <= char <= "\u202e" or "\u2066" <= char <= "\u2069" for char in safe
    )
    assert not any(unicodedata.category(char) == "Cc" for char in safe) and not any(hidden)
    written = write_new(tmp_path, safe, b"x")
    assert written.parent == tmp_path and os.path.realpath(written).startswith(os.path.realpath(tmp_path))
    written.unlink()


def test_the_server_still_answers_after_the_fuzzing(server: str) -> None:
    reply = httpx.post(f"{server}/v1/ask", json={"question": "安阳老旧小区改造开工率是多少？"})
    assert reply.status_code == 200 and json.loads(reply.text)["results"]
