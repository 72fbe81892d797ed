"""`wenda serve` against an attacker and a careless client (issue 29), each attack reproduced on the real server
over 127.0.0.1: DNS rebinding, a forged X-Forwarded-For, chunked bodies past the limit, loose types, an index
folder deleted under the server, a Dify endpoint saved with a trailing slash, and documentation pages that
must load nothing from another host."""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import copy_of, run_wenda, serve_env, serving
from wenda.index.config import Settings

QUESTION = "安阳2022年老旧小区改造项目的开工率是多少？"
DIFY = {"knowledge_id": "wenda", "query": QUESTION, "retrieval_setting": {"top_k": 2, "score_threshold": 0.0}}


@pytest.fixture(scope="module")
def server(seed_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A keyless server on the seed index that also answers to one more name."""
    env = serve_env(seed_settings, tmp_path_factory.mktemp("hardening"), WENDA_SERVE_ALLOWED_HOSTS="wenda.internal")
    with serving(env) as url:
        yield url


def test_a_rebound_dns_name_gets_no_answer_without_keys(server: str) -> None:
    """A page on attacker.example whose name resolves to 127.0.0.1 sends its own name as Host."""
    for host in ("attacker.example", "attacker.example:8000", "127.0.0.1.attacker.example", ""):
        reply = httpx.post(f"{server}/v1/ask", json={"question": QUESTION}, headers={"Host": host})
        assert reply.status_code == 421, host
        assert "WENDA_SERVE_ALLOWED_HOSTS" in reply.json()["error"]["message"] and "results" not in reply.json()
    dify = httpx.post(f"{server}/retrieval", json=DIFY, headers={"Host": "attacker.example"})
    assert dify.status_code == 421 and dify.json()["error_code"] == 421  # in Dify's shape on Dify's route
    port = server.rsplit(":", 1)[1]
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", "[::1]", "wenda.internal:80", "WENDA.INTERNAL"):
        assert httpx.get(f"{server}/healthz", headers={"Host": host}).status_code == 200, host


def test_a_forged_x_forwarded_for_does_not_dodge_the_rate_limit(seed_settings: Settings, tmp_path: Path) -> None:
    """Without WENDA_SERVE_TRUSTED_PROXIES the peer's own address counts, whatever the header says."""
    with serving(serve_env(seed_settings, tmp_path, WENDA_SERVE_RATE_LIMIT="3")) as url:
        forged = [{"X-Forwarded-For": f"10.0.0.{n}", "X-Real-IP": f"10.1.0.{n}"} for n in range(5)]
        statuses = [httpx.get(f"{url}/v1/sources", headers=headers).status_code for headers in forged]
        assert statuses == [200, 200, 200, 429, 429]
        late = httpx.get(f"{url}/v1/sources", headers={"Forwarded": "for=10.9.9.9"})
        assert late.status_code == 429 and 1 <= int(late.headers["retry-after"]) <= 60


def chunked(url: str, path: str, size: int, host: str = "127.0.0.1") -> tuple[int, bytes]:
    """POST a body of `size` bytes with Transfer-Encoding: chunked (no Content-Length), by hand."""
    address, port = url.removeprefix("http://").split(":")
    with socket.create_connection((address, int(port)), timeout=30) as conn:
        head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        conn.sendall((head + "Transfer-Encoding: chunked\r\n\r\n").encode())
        body = b'{"question": "' + b"a" * size + b'"}'
        try:
            for start in range(0, len(body), 16384):
                piece = body[start : start + 16384]
                conn.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            conn.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the whole body was sent
        reply = b""
        while b"\r\n\r\n" not in reply or len(reply.split(b"\r\n\r\n", 1)[1]) < 10:
            data = conn.recv(65536)
            if not data:
                break
            reply += data
    status = int(reply.split(b" ", 2)[1])
    return status, reply.split(b"\r\n\r\n", 1)[1]


def test_chunked_bodies_over_the_limit_are_413_in_the_routes_shape(seed_settings: Settings, tmp_path: Path) -> None:
    with serving(serve_env(seed_settings, tmp_path)) as url:
        status, body = chunked(url, "/v1/ask", 100_000)
        assert status == 413 and b"WENDA_SERVE_MAX_BODY_KB" in body and b'"too_large"' in body
        status, body = chunked(url, "/retrieval", 100_000)
        assert status == 413 and json.loads(body)["error_code"] == 413
        status, _ = chunked(url, "/v1/ask", 10)  # a small chunked body is read as any other
        assert status == 200
        declared = httpx.post(f"{url}/v1/chat/completions", content=b"x" * 70_000)
        assert declared.status_code == 413 and declared.json()["error"]["type"] == "too_large"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/ask", {"question": QUESTION, "k": "5"}, "k"),
        ("/v1/ask", {"question": QUESTION, "k": True}, "k"),
        ("/v1/ask", {"question": QUESTION, "k": 5.5}, "k"),
        ("/v1/ask", {"question": 42}, "question"),
        ("/v1/ask", {"question": QUESTION, "history": "安阳"}, "history"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": QUESTION}], "stream": "yes"}, "stream"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": QUESTION}], "n": "1"}, "n"),
    ],
)
def test_loose_types_are_refused_naming_the_field(server: str, path: str, body: dict, field: str) -> None:
    reply = httpx.post(f"{server}{path}", json=body)
    assert reply.status_code == 422 and reply.json()["error"]["field"].startswith(field), reply.text


def test_dify_refuses_wrong_types_and_ignores_unknown_fields(seed_settings: Settings, tmp_path: Path) -> None:
    with serving(serve_env(seed_settings, tmp_path)) as url:
        wrong = {**DIFY, "retrieval_setting": {"top_k": "2", "score_threshold": 0.0}}
        reply = httpx.post(f"{url}/retrieval", json=wrong)
        assert reply.status_code == 422 and reply.json()["error_code"] == 422 and "top_k" in reply.json()["error_msg"]
        lenient = {**DIFY, "retrieval_setting": {"top_k": 2, "score_threshold": 0}, "extra": {"anything": 1}}
        assert httpx.post(f"{url}/retrieval", json=lenient).status_code == 200


def test_repeated_slashes_reach_the_route(server: str) -> None:
    """Dify saved with `http://host/` as its endpoint calls `http://host//retrieval`."""
    reply = httpx.post(f"{server}//retrieval", json=DIFY)
    assert reply.status_code == 200 and reply.json()["records"]
    assert httpx.get(f"{server}//healthz").status_code == 200
    trailing = httpx.post(f"{server}/v1/ask/", json={"question": QUESTION})  # answered, not an empty redirect
    assert trailing.status_code == 200 and trailing.json()["results"]
    assert httpx.post(f"{server}/retrieval/", json=DIFY).json()["records"]


def test_api_documentation_loads_nothing_from_another_host(server: str) -> None:
    page = httpx.get(f"{server}/docs")
    assert page.status_code == 200 and "http" not in page.text.replace("http-equiv", "")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "http" not in policy and "cdn" not in policy
    for asset in ("/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css", "/static/docs.js"):
        assert httpx.get(f"{server}{asset}").status_code == 200, asset
    assert httpx.get(f"{server}/redoc").status_code == 404
    assert httpx.get(f"{server}/openapi.json").json()["paths"]["/v1/ask"]


def test_an_index_deleted_under_the_server_is_503_until_rebuilt(small_index: Path, tmp_path: Path) -> None:
    corpus, index_dir, env = copy_of(small_index, tmp_path)
    with serving({**env, "WENDA_DATA_DIR": str(tmp_path / "data")}) as url:
        assert httpx.get(f"{url}/healthz").status_code == 200
        shutil.rmtree(index_dir)
        health = httpx.get(f"{url}/healthz")
        assert health.status_code == 503 and health.json()["status"] == "unavailable" and health.json()["reason"]
        ask = httpx.post(f"{url}/v1/ask", json={"question": QUESTION})
        assert ask.status_code == 503 and ask.json()["error"]["type"] == "unavailable"
        chat = {"messages": [{"role": "user", "content": QUESTION}]}
        assert httpx.post(f"{url}/v1/chat/completions", json=chat).status_code == 503
        dify = httpx.post(f"{url}/retrieval", json=DIFY)
        assert dify.status_code == 503 and dify.json()["error_code"] == 503
        assert run_wenda("index", "-q", env=env).returncode == 0
        assert httpx.get(f"{url}/healthz").status_code == 200
        assert httpx.post(f"{url}/v1/ask", json={"question": QUESTION}).json()["results"]
